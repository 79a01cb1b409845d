-- get_many: get for many entries of one shard in one call: read, touch, count hits and misses.
-- KEYS[1] ledger hash (M)   KEYS[2] stats hash (S)   KEYS[3..] entry strings
-- ARGV[1] '1' to touch the entries and count the reads, '0' to write nothing (read-only reads)
-- ARGV[2..] full_keys, in the order of their entry strings
-- Returns one reply per key: false for a miss, else {entry string as read, hit count (after this read
-- when touching, before it otherwise), now ms, ledger row}.
local M_, S_ = KEYS[1], KEYS[2]
local touch = ARGV[1] == '1'
local now = now_ms()
local out, hits, misses = {}, 0, 0
for i = 2, #ARGV do
    local E = KEYS[i + 1]
    local raw = redis.call('GET', E)
    if not raw then
        misses = misses + 1
        out[#out + 1] = false
    else
        local count = struct.unpack('>i8', raw, HITS_AT + 1)
        if touch then
            count = count + 1
            hits = hits + 1
            redis.call('SETRANGE', E, HITS_AT, struct.pack('>i8>i8', count, now))
        end
        out[#out + 1] = {raw, count, now, redis.call('HGET', M_, ARGV[i])}
    end
end
if touch and hits > 0 then
    redis.call('HINCRBY', S_, 'hits', hits)
end
if touch and misses > 0 then
    redis.call('HINCRBY', S_, 'misses', misses)
end
return out
