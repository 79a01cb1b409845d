-- get: read one entry, touch it, and count the hit or the miss, in one call.
-- KEYS[1] entry hash   KEYS[2] ledger hash (M)   KEYS[3] stats hash (S)
-- ARGV[1] full_key
-- Returns false on a miss, else {payload, created ms, expiry ms|false, hit count, now ms, ledger row}.
local E, M_, S_ = KEYS[1], KEYS[2], KEYS[3]
local row = redis.call('HMGET', E, 'v', 'c', 'x', 'h')
if not row[1] then
    redis.call('HINCRBY', S_, 'misses', 1)
    return false
end
local now = now_ms()
-- One HSET for both fields: the script is atomic, so read-then-write cannot lose an increment.
local hits = tonumber(row[4]) + 1
redis.call('HSET', E, 'h', hits, 'a', now)
redis.call('HINCRBY', S_, 'hits', 1)
return {row[1], row[2], row[3], hits, now, redis.call('HGET', M_, ARGV[1])}
