-- flush: write one process's access accounting of one shard, counted since its last flush: the
-- reads themselves write nothing (CONTRACT.md "Reads never write").
-- KEYS[1..6] shard keys M K T N S G   KEYS[7..] entry strings, one per entry read
-- ARGV[1] hits   ARGV[2] misses
-- ARGV[3..] one per entry string, in their order: big-endian created us as read (i8), hits (u4),
-- last access ms (i8), 20 bytes (one packed string each: a flush carries one per entry read, and
-- every argument costs the server a conversion)
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
local gen = struct.pack('>i8', GEN)
for e = 7, #KEYS do
    local E, row = KEYS[e], ARGV[e - 4]
    local head = redis.call('GETRANGE', E, 0, HEADER - 1)
    -- The same version (created time) and generation, compared as bytes: a missing entry reads as ''.
    if string.sub(head, 1, 8) == string.sub(row, 1, 8) and string.sub(head, GEN_AT + 1, GEN_AT + 8) == gen then
        local hits, last = struct.unpack('>I4>i8', head, HITS_AT + 1)
        local add, seen = struct.unpack('>I4>i8', row, 9)
        if last > seen then
            seen = last
        end
        redis.call('SETRANGE', E, HITS_AT, struct.pack('>I4>i8', hits + add, seen))
        updated = updated + 1
    end
end
return updated
