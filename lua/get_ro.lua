-- get_ro: read one entry without writing anything (no hit count, last access or stats), for
-- replicas and for servers at maxmemory under noeviction.
-- KEYS[1] entry string   KEYS[2] ledger hash (M)
-- ARGV[1] full_key
-- Returns false on a miss, else {entry string, hit count before this read, now ms, ledger row}.
local raw = redis.call('GET', KEYS[1])
if not raw then
    return false
end
return {raw, struct.unpack('>i8', raw, HITS_AT + 1), now_ms(), redis.call('HGET', KEYS[2], ARGV[1])}
