-- get_ro: read one entry without writing anything (no hit count, last access or stats), for
-- replicas and for servers at maxmemory under noeviction.
-- KEYS[1] entry hash   KEYS[2] ledger hash (M)
-- ARGV[1] full_key
-- Returns false on a miss, else {payload, created ms, expiry ms|false, hit count before this read,
-- now ms, ledger row}.
local row = redis.call('HMGET', KEYS[1], 'v', 'c', 'x', 'h')
if not row[1] then
    return false
end
return {row[1], row[2], row[3], tonumber(row[4]), now_ms(), redis.call('HGET', KEYS[2], ARGV[1])}
