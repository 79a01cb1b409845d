-- get: read one entry, touch it, and count the hit or the miss, in one call.
-- KEYS[1] entry string   KEYS[2] ledger hash (M)   KEYS[3] stats hash (S)
-- ARGV[1] full_key
-- Returns false on a miss, else {entry string as it was read, hit count, now ms, ledger row}.
local E, M_, S_ = KEYS[1], KEYS[2], KEYS[3]
local raw = redis.call('GET', E)
if not raw then
    redis.call('HINCRBY', S_, 'misses', 1)
    return false
end
local now = now_ms()
local hits = struct.unpack('>i8', raw, HITS_AT + 1) + 1
redis.call('SETRANGE', E, HITS_AT, struct.pack('>i8>i8', hits, now))
redis.call('HINCRBY', S_, 'hits', 1)
return {raw, hits, now, redis.call('HGET', M_, ARGV[1])}
