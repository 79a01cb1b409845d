-- set: replace one entry whole (value, TTL, namespace, tags) and every index with it, in one call;
-- then unindex a bounded number of expired entries, so the indexes never pile up dead members.
-- KEYS[1..6] shard keys M K T N S G   KEYS[7] entry string
-- ARGV[1] full_key   ARGV[2] payload   ARGV[3] ttl ms (0: never expires)   ARGV[4] namespace ('' : none)
-- ARGV[5] how many expired entries to trim   ARGV[6] invalidation channel (see announce in _lib.lua; '' : none)   ARGV[7] origin
-- ARGV[8] ms to keep the entry past its expiry, for fail-safe reads (0: none)   ARGV[9..] tags
-- Returns the server time (ms) used as created_at.
bind_shard()
local E = KEYS[7]
local fk, payload, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ns = ARGV[4] ~= '' and ARGV[4] or false
local created = now_us()
local now = math.floor(created / 1000)
open_shard()

local tags = {}
for i = 9, #ARGV do
    tags[#tags + 1] = ARGV[i]
end

write_entry(E, fk, payload, ttl, ns, tags, now, created, tonumber(ARGV[8]))

trim_expired(now, tonumber(ARGV[5]))
announce(ARGV[6], ARGV[7], {fk})
return now
