-- set_many: set for many entries of one shard in one call (each replaced whole, as by set).
-- KEYS[1..6] shard keys M K T N S G   KEYS[7..] entry strings, one per entry
-- ARGV[1] how many expired entries to trim   ARGV[2] invalidation channel ('' : none)   ARGV[3] origin
-- ARGV[4..] per entry, in the order of the entry strings: full_key, payload, ttl ms (0: never),
--           namespace ('' : none), tag count, then the tags
-- Returns the server time (ms) used as created_at. A full_key given twice ends with its last value.
bind_shard()
local created = now_us()
local now = math.floor(created / 1000)
open_shard()
local fks = {}
local a, e = 4, 7
while a <= #ARGV do
    local fk, payload, ttl, ns = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3]
    local count = tonumber(ARGV[a + 4])
    local tags = {}
    for j = 1, count do
        tags[j] = ARGV[a + 4 + j]
    end
    write_entry(KEYS[e], fk, payload, ttl, ns ~= '' and ns or false, tags, now, created + e)
    fks[#fks + 1] = fk
    a = a + 5 + count
    e = e + 1
end
trim_expired(now, tonumber(ARGV[1]))
announce(ARGV[2], ARGV[3], fks)
return now
