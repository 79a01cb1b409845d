-- Shared helpers, prepended by rediscache/redis/scripts.py to every script below.
--
-- The keys of a shard and the stored formats (entry header, ledger row, invalidation message) are
-- in one table, in docs/redis-layout.md ("Stored formats", "The keys of a shard"); the Python side
-- decodes them in rediscache/redis/layout.py only. In short (P = key prefix, {T} = the shard's hash
-- tag, L = layout version):
--   P:{T}:L:e:<full_key>  entry string: 32-byte header (created ms, expiry ms or 0, hit count, last
--                         access ms: big-endian 8-byte integers), then the payload
--   P:{T}:L:m             ledger hash: full_key -> cmsgpack {size, namespace|false, {tags}}
--   P:{T}:L:k / x / c     zsets: every full_key (scores 0) / expiry ms / created ms
--   P:{T}:L:t / n         zsets, scores 0: <len(tag)>:<tag><full_key> / <len(ns)>:<ns><full_key>
--   P:{T}:L:s             stats hash: hits, misses, bytes
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

-- The entry header (see above): where the hit count starts (for SETRANGE, 0-based), and its size.
local HITS_AT, HEADER = 16, 32

local function member_prefix(name)
    return #name .. ':' .. name
end

-- Lua's unpack() takes a few thousand values at most: send long lists in slices.
local SLICE = 1000

-- redis.call(cmd, key, ...list) in slices (key may be false for commands that take only the list);
-- returns the sum of the integer answers.
local function call_sliced(cmd, key, list)
    local total = 0
    for i = 1, #list, SLICE do
        local last = math.min(i + SLICE - 1, #list)
        if key then
            total = total + redis.call(cmd, key, unpack(list, i, last))
        else
            total = total + redis.call(cmd, unpack(list, i, last))
        end
    end
    return total
end

-- The ledger rows of many full_keys (false where there is none).
local function ledger_rows(fks)
    local rows = {}
    for i = 1, #fks, SLICE do
        local part = redis.call('HMGET', M, unpack(fks, i, math.min(i + SLICE - 1, #fks)))
        for j = 1, #part do
            rows[#rows + 1] = part[j]
        end
    end
    return rows
end

-- Remove every index trace of many full_keys, as recorded in their ledger rows, with one command
-- per index rather than one per entry. Returns the full_keys that had no ledger row.
local function unindex_many(fks)
    if #fks == 0 then
        return {}
    end
    local rows = ledger_rows(fks)
    local known, ns_members, tag_members, missing = {}, {}, {}, {}
    local bytes = 0
    for i = 1, #fks do
        local fk = fks[i]
        if rows[i] then
            local meta = cmsgpack.unpack(rows[i])
            bytes = bytes + meta[1]
            known[#known + 1] = fk
            if meta[2] then
                ns_members[#ns_members + 1] = member_prefix(meta[2]) .. fk
            end
            local tags = meta[3]
            for j = 1, #tags do
                tag_members[#tag_members + 1] = member_prefix(tags[j]) .. fk
            end
        else
            missing[#missing + 1] = fk
        end
    end
    if #known > 0 then
        call_sliced('HDEL', M, known)
        call_sliced('ZREM', K, known)
        call_sliced('ZREM', X, known)
        call_sliced('ZREM', C, known)
        call_sliced('ZREM', N, ns_members)
        call_sliced('ZREM', T, tag_members)
        if bytes ~= 0 then
            redis.call('HINCRBY', S, 'bytes', -bytes)
        end
    end
    return missing
end

-- Unindex up to `limit` entries whose expiry has passed. Their entry keys are already gone
-- (Redis expired them), so this only touches the shard's own index keys.
local function trim_expired(now, limit)
    if limit <= 0 then
        return 0, false
    end
    local dead = redis.call('ZRANGEBYSCORE', X, '-inf', '(' .. (now - DEAD_MARGIN_MS), 'LIMIT', 0, limit)
    unindex_many(dead)
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

-- Write one entry whole (value, TTL, namespace, tags) with every index, at server time `now`.
-- `ns` is false for none. An overwrite with the same namespace and tags (the common refresh) keeps
-- its memberships: only the size, created time and expiry change. Anything else is unindexed and
-- indexed anew.
local function write_entry(E, fk, payload, ttl, ns, tags, now)
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
            unindex_many({fk})
        end
    end

    if ttl > 0 then
        local expiry = now + ttl
        redis.call('SET', E, struct.pack('>i8>i8>i8>i8', now, expiry, 0, now) .. payload, 'PXAT', expiry)
        redis.call('ZADD', X, expiry, fk)
    else
        redis.call('SET', E, struct.pack('>i8>i8>i8>i8', now, 0, 0, now) .. payload)
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
end
