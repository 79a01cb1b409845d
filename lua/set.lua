-- set: replace one entry whole (value, TTL, namespace, tags) and every index with it, in one call;
-- then unindex a bounded number of expired entries, so the indexes never pile up dead members.
-- KEYS[1..7] shard keys M K X C T N S   KEYS[8] entry hash
-- ARGV[1] full_key   ARGV[2] payload   ARGV[3] ttl ms (0: never expires)   ARGV[4] namespace ('' : none)
-- ARGV[5] how many expired entries to trim   ARGV[6] invalidation channel ('' : none)   ARGV[7] origin
-- ARGV[8..] tags
-- Returns the server time (ms) used as created_at.
bind_shard()
local E = KEYS[8]
local fk, payload, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ns = ARGV[4] ~= '' and ARGV[4] or false
local now = now_ms()

local tags = {}
for i = 8, #ARGV do
    tags[#tags + 1] = ARGV[i]
end

-- An overwrite with the same namespace and tags (the common refresh) keeps its memberships:
-- only the size, created time and expiry change. Anything else is unindexed and indexed anew.
local row = cmsgpack.pack({#payload, ns, tags})
local old = redis.call('HGET', M, fk)
local kept = false
if old then
    local meta = cmsgpack.unpack(old)
    if meta[2] == ns and #meta[3] == #tags then
        kept = true
        for i = 1, #tags do
            if meta[3][i] ~= tags[i] then
                kept = false
                break
            end
        end
    end
    if kept then
        if meta[1] ~= #payload then
            redis.call('HINCRBY', S, 'bytes', #payload - meta[1])
        end
    else
        unindex(fk)
    end
end

redis.call('DEL', E)
if ttl > 0 then
    local expiry = now + ttl
    redis.call('HSET', E, 'v', payload, 'c', now, 'h', 0, 'a', now, 'x', expiry)
    redis.call('PEXPIREAT', E, expiry)
    redis.call('ZADD', X, expiry, fk)
else
    redis.call('HSET', E, 'v', payload, 'c', now, 'h', 0, 'a', now)
    if kept then
        redis.call('ZREM', X, fk)
    end
end
redis.call('ZADD', C, now, fk)
if not kept then
    redis.call('ZADD', K, 0, fk)
    if ns then
        redis.call('ZADD', N, 0, member_prefix(ns) .. fk)
    end
    for i = 1, #tags do
        redis.call('ZADD', T, 0, member_prefix(tags[i]) .. fk)
    end
    redis.call('HINCRBY', S, 'bytes', #payload)
end
if row ~= old then
    redis.call('HSET', M, fk, row)
end

trim_expired(now, tonumber(ARGV[5]))
announce(ARGV[6], ARGV[7], {fk})
return now
