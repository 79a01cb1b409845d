-- Shared helpers, prepended by rediscache._scripts to every script below.
--
-- Shard layout (one shard = one hash slot; P = key prefix, s = shard number, L = layout version):
--   P:{P:s}:L:e:<full_key>  entry hash: v payload, c created ms, h hit count, a last access ms, x expiry ms
--   P:{P:s}:L:m             ledger hash: full_key -> cmsgpack {size, namespace|false, {tags}}; it outlives
--                           an entry that Redis expired, so its index memberships can still be undone
--   P:{P:s}:L:k             zset, all scores 0: every full_key (lexical order: prefix walks, counts)
--   P:{P:s}:L:x             zset: full_key -> expiry ms (entries with a TTL only)
--   P:{P:s}:L:c             zset: full_key -> created ms (oldest/newest)
--   P:{P:s}:L:t             zset, all scores 0: <len(tag)>:<tag><full_key> (a tag's members are one lex range)
--   P:{P:s}:L:n             zset, all scores 0: <len(ns)>:<ns><full_key>
--   P:{P:s}:L:s             stats hash: hits, misses, bytes
-- The length prefix makes a tag's range exact: tag "a" never matches members of tag "ab" or "a:b".
--
-- Scripts that maintain the indexes receive the seven shard keys first, in this order:
-- M K X C T N S, and call bind_shard() before using the helpers below.

local M, K, X, C, T, N, S

local function bind_shard()
    M, K, X, C, T, N, S = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
end

local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Redis treats a key as expired once now > its expiry. Our clock is read with TIME while Redis
-- froze its own at the start of the script, so leave a small margin before calling an entry dead
-- in the indexes: an entry is never unindexed while Redis may still serve it.
local DEAD_MARGIN_MS = 2

local function member_prefix(name)
    return #name .. ':' .. name
end

-- Remove every index trace of one full_key, as recorded in its ledger row. Returns the ledger
-- row's size, or false when the key had no row.
local function unindex(fk)
    local raw = redis.call('HGET', M, fk)
    if not raw then
        return false
    end
    local meta = cmsgpack.unpack(raw)
    local size, ns, tags = meta[1], meta[2], meta[3]
    redis.call('HDEL', M, fk)
    redis.call('ZREM', K, fk)
    redis.call('ZREM', X, fk)
    redis.call('ZREM', C, fk)
    if ns then
        redis.call('ZREM', N, member_prefix(ns) .. fk)
    end
    for i = 1, #tags do
        redis.call('ZREM', T, member_prefix(tags[i]) .. fk)
    end
    if size ~= 0 then
        redis.call('HINCRBY', S, 'bytes', -size)
    end
    return size
end

-- Unindex up to `limit` entries whose expiry has passed. Their entry keys are already gone
-- (Redis expired them), so this only touches the shard's own index keys.
local function trim_expired(now, limit)
    if limit <= 0 then
        return 0, false
    end
    local dead = redis.call('ZRANGEBYSCORE', X, '-inf', '(' .. (now - DEAD_MARGIN_MS), 'LIMIT', 0, limit)
    for i = 1, #dead do
        unindex(dead[i])
    end
    return #dead, #dead == limit
end

-- Tell every instance's in-process L1 that these full_keys changed: a msgpack array {origin,
-- {full_key, ...}} on the cache's channel. `channel` '' means nobody listens; `origin` names the
-- instance that made the change, which already dropped its own copies. Expired entries are not
-- announced: an L1 copy carries its own expiry.
local function announce(channel, origin, full_keys)
    if channel ~= '' and #full_keys > 0 then
        redis.call('PUBLISH', channel, cmsgpack.pack({origin, full_keys}))
    end
end
