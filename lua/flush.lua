-- flush: write one process's access accounting of one shard, counted since its last flush: the
-- reads themselves write nothing (CONTRACT.md "Reads never write").
-- KEYS[1..6] shard keys M K T N S G   KEYS[7..] entry strings, one per entry read
-- ARGV[1] hits   ARGV[2] misses
-- ARGV[3..] per entry, in the order of the entry strings: created us as read, hits, last access ms
-- Returns how many entries' hit counts were updated.
--
-- An entry's count is updated only if it is still the version that was read (same created time and
-- generation): a read of an entry since replaced does not count for its successor. The shard's
-- bookkeeping keys are touched, so LRU and LFU eviction find them recently used and evict cold
-- entries long before them. A shard whose bookkeeping is incomplete is left alone: the next write
-- starts its new generation (the shared hit and miss counters are counted all the same).
bind_shard()
if ARGV[1] ~= '0' then
    redis.call('HINCRBY', S, 'hits', ARGV[1])
end
if ARGV[2] ~= '0' then
    redis.call('HINCRBY', S, 'misses', ARGV[2])
end
if not shard_intact() then
    return 0
end
GEN = tonumber(redis.call('GET', G))
redis.call('TOUCH', M, K, T, N, G)
local updated = 0
local e = 7
for a = 3, #ARGV, 3 do
    local E = KEYS[e]
    e = e + 1
    local head = redis.call('GETRANGE', E, 0, HEADER - 1)
    if #head == HEADER then
        local created, _, gen, hits, last = struct.unpack('>i8>i8>i8>I4>i8', head)
        if created == tonumber(ARGV[a]) and gen == GEN then
            local seen = math.max(last, tonumber(ARGV[a + 2]))
            redis.call('SETRANGE', E, HITS_AT, struct.pack('>I4>i8', hits + tonumber(ARGV[a + 1]), seen))
            updated = updated + 1
        end
    end
end
return updated
