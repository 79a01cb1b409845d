-- Shared helpers, prepended by rediscache/redis/scripts.py to every script below.
--
-- The keys of a shard and the stored formats (entry header, ledger row, invalidation message) are
-- in one table, in docs/redis-layout.md ("Stored formats", "The keys of a shard"); the Python side
-- decodes them in rediscache/redis/layout.py only. In short (P = key prefix, {T} = the shard's hash
-- tag, L = layout version):
--   P:{T}:L:e:<full_key>  entry string: 38-byte header (created us, expiry us or 0, generation: i8;
--                         hit count: u4; last access ms: i8; meta length: u2, all big-endian), the
--                         meta (cmsgpack {namespace|false, {tags}}, absent without either), the payload
--   P:{T}:L:m             ledger hash: full_key -> cmsgpack {size, namespace|false, {tags}}, or just
--                         the size for an entry with neither
--   P:{T}:L:k             zset: full_key -> expiry ms (+inf: none): every entry, and when it expires
--   P:{T}:L:t / n         zsets, scores 0: <len(tag)>:<tag><full_key> / <len(ns)>:<ns><full_key>
--   P:{T}:L:s             stats hash: hits, misses, bytes, gen (a floor for the next generation)
--   P:{T}:L:g             the shard's generation: entries of another generation read as misses
-- The length prefix makes a tag's range exact: tag "a" never matches members of tag "ab" or "a:b".
-- Every bookkeeping key holds a SENTINEL member (field), so it exists as long as Redis did not evict
-- it: a script that finds one missing knows the bookkeeping was evicted and starts a new generation.
--
-- Scripts that maintain the indexes receive the six shard keys first, in this order: M K T N S G,
-- and call bind_shard() and open_shard() before using the helpers below.

local M, K, T, N, S, G
-- The shard's current generation, set by open_shard().
local GEN

local function bind_shard()
    M, K, T, N, S, G = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
end

-- No full_key, tag or namespace member can be this: UTF-8 never contains the byte 0xff. In K it
-- scores +inf (it never expires); live entries are counted as K's members less it.
local SENTINEL = '\255\255'

local function now_us()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function now_ms()
    return math.floor(now_us() / 1000)
end

-- A stopwatch reading, in microseconds: the difference of two readings is the server time a script
-- spent between them, to end a time slice. Valkey freezes TIME for the length of a script (it answers the time the script started), so a script
-- cannot see its own duration there; Valkey has os.clock (the server's CPU time), Redis 7 has no os
-- library but its TIME moves. rawget: reading a missing global raises an error in a Redis script.
local lua_os = rawget(_G, 'os')
local cpu_clock = type(lua_os) == 'table' and lua_os.clock or nil
local function stopwatch_us()
    if cpu_clock then
        return math.floor(cpu_clock() * 1000000)
    end
    return now_us()
end

-- Redis treats a key as expired once now > its expiry. Our clock is read with TIME while Redis
-- froze its own at the start of the script, so leave a small margin before calling an entry dead
-- in the indexes: an entry is never unindexed while Redis may still serve it.
local DEAD_MARGIN_MS = 2

-- The entry header (see above): its size, and where (0-based) the generation and the hit count start.
local HEADER, GEN_AT, HITS_AT = 38, 16, 24

local function pack_header(created, expiry, hits, last, meta_len)
    return struct.pack('>i8>i8>i8>I4>i8>I2', created, expiry, GEN, hits, last, meta_len)
end

-- Whether every key of the shard's bookkeeping is there; if not (Redis evicted one, or the shard
-- is new), drop what is left of it and start a new generation: every older entry then reads as a
-- miss, so none can outlive an invalidation whose index was lost. Sets GEN; true if it is new.
local function open_shard()
    if redis.call('EXISTS', M, K, T, N, S, G) == 6 then
        GEN = tonumber(redis.call('GET', G))
        return false
    end
    -- A generation never comes back: microseconds, and above both the generation key's and the
    -- floor the stats hash keeps, whichever of them survived the eviction.
    GEN = math.max(now_us(), tonumber(redis.call('GET', G) or '0') + 1, tonumber(redis.call('HGET', S, 'gen') or '0') + 1)
    -- The first write grows memory, so that at maxmemory under noeviction Redis refuses the script
    -- before it changed anything (it lets a script go on once it has written).
    redis.call('SET', G, string.format('%d', GEN))
    redis.call('HSET', S, 'gen', string.format('%d', GEN))
    redis.call('DEL', M, K, T, N)
    redis.call('HSET', M, SENTINEL, '')
    redis.call('ZADD', K, '+inf', SENTINEL)
    redis.call('ZADD', T, 0, SENTINEL)
    redis.call('ZADD', N, 0, SENTINEL)
    redis.call('HSET', S, 'bytes', 0)
    return true
end

-- Whether all of the shard's bookkeeping is there (for scripts that only read it).
local function shard_intact()
    return redis.call('EXISTS', M, K, T, N, S, G) == 6
end

-- Whether the entry string E is a live entry: of the current generation, and not past its logical
-- expiry (an entry kept for fail-safe is stored past it). `now` in us.
local function is_live(E, now)
    local raw = redis.call('GETRANGE', E, 0, GEN_AT + 7)
    if #raw ~= GEN_AT + 8 then
        return false
    end
    local _, expiry, gen = struct.unpack('>i8>i8>i8', raw)
    return gen == GEN and (expiry == 0 or expiry > now)
end

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

-- A ledger row: {size, namespace|false, {tags}}, or just the size (a number) for an entry with neither.
local function ledger_row(size, ns, tags)
    if ns or #tags > 0 then
        return cmsgpack.pack({size, ns, tags})
    end
    return tostring(size)
end

local NO_TAGS = {}

local function read_row(row)
    local size = tonumber(row)
    if size then
        return size, false, NO_TAGS
    end
    local meta = cmsgpack.unpack(row)
    return meta[1], meta[2], meta[3]
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
            local size, ns, tags = read_row(rows[i])
            bytes = bytes + size
            known[#known + 1] = fk
            if ns then
                ns_members[#ns_members + 1] = member_prefix(ns) .. fk
            end
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
    local dead = redis.call('ZRANGEBYSCORE', K, '-inf', '(' .. (now - DEAD_MARGIN_MS), 'LIMIT', 0, limit)
    unindex_many(dead)
    return #dead, #dead == limit
end

-- Tell every instance's in-process L1 that these full_keys changed: a msgpack array {origin,
-- {full_key, ...}}. `channel` is '' (nobody listens), or a command letter and the channel: 'S' and
-- the shard's own channel (SPUBLISH: sharded pub/sub, Redis 7+; on a cluster the message goes to
-- the shard's own nodes only, not over the whole cluster bus), or 'P' and the cache's one channel
-- (PUBLISH: older servers). `origin` names the instance that made the change, which already dropped
-- its own copies. Expired entries are not announced: an L1 copy carries its own expiry.
local function announce(channel, origin, full_keys)
    if channel ~= '' and #full_keys > 0 then
        local command = string.sub(channel, 1, 1) == 'S' and 'SPUBLISH' or 'PUBLISH'
        redis.call(command, string.sub(channel, 2), cmsgpack.pack({origin, full_keys}))
    end
end

-- Write one entry whole (value, TTL, namespace, tags) with every index, at server time `now` (ms);
-- `created` (us) names this version of the entry: the access accounting of a read applies to it only.
-- `ns` is false for none. An overwrite with the same namespace and tags (the common refresh) keeps
-- its memberships: only the size, created time and expiry change. Anything else is unindexed and
-- indexed anew. `keep` (ms, optional) keeps the entry stored that long past its expiry, for
-- fail-safe reads: the header holds the logical expiry (reads treat a past one as a miss), Redis's
-- own expiry and the K score are the physical one, so every invalidation still finds the entry.
local function write_entry(E, fk, payload, ttl, ns, tags, now, created, keep)
    -- The entry is written first: a write that grows memory, so that at maxmemory under noeviction
    -- Redis refuses the script before it changed anything (it lets a script go on once it wrote).
    local meta = ''
    if ns or #tags > 0 then
        meta = cmsgpack.pack({ns, tags})
    end
    local expiry = '+inf'
    if ttl > 0 then
        -- The entry expires exactly `ttl` after it was created (us); Redis's own expiry, in ms, is
        -- rounded up, so the entry never goes early.
        local expiry_us = created + ttl * 1000
        expiry = math.ceil(expiry_us / 1000) + (keep or 0)
        redis.call('SET', E, pack_header(created, expiry_us, 0, now, #meta) .. meta .. payload, 'PXAT', expiry)
    else
        redis.call('SET', E, pack_header(created, 0, 0, now, #meta) .. meta .. payload)
    end

    local row = ledger_row(#payload, ns, tags)
    local old = redis.call('HGET', M, fk)
    local kept = false
    if old then
        local size, old_ns, old_tags = read_row(old)
        if old_ns == ns and #old_tags == #tags then
            kept = true
            for i = 1, #tags do
                if old_tags[i] ~= tags[i] then
                    kept = false
                    break
                end
            end
        end
        if kept then
            if size ~= #payload then
                redis.call('HINCRBY', S, 'bytes', #payload - size)
            end
        else
            unindex_many({fk})
        end
    end
    redis.call('ZADD', K, expiry, fk)
    if not kept then
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
