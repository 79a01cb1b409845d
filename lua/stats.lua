-- stats: one shard's figures, read in one consistent view. Writes nothing (safe on replicas).
-- KEYS[1..8] shard keys M K X C T N S G
-- ARGV[1] how many dead members to skip at most when looking for the oldest/newest live entry
-- Returns {entries in index, of which expired, hits, misses, bytes, oldest created ms|false, newest|false}.
-- A shard whose bookkeeping is incomplete (new, or partly evicted) counts no entry: every entry of
-- it reads as a miss until a write starts a new generation.
bind_shard()
local now = now_ms()
local horizon = '(' .. (now - DEAD_MARGIN_MS)
local s = redis.call('HMGET', S, 'hits', 'misses', 'bytes')
if redis.call('EXISTS', M, K, X, C, T, N, S, G) ~= 8 then
    return {0, 0, s[1] or '0', s[2] or '0', '0', false, false}
end
local total = redis.call('ZCARD', K) - 1  -- the sentinel
local expired = redis.call('ZCOUNT', X, '-inf', horizon)

-- Walk the created-time order from one end, skipping entries that are dead but not yet trimmed.
local function first_live(reverse)
    local limit = tonumber(ARGV[1])
    local offset = 0
    while offset <= limit do
        local page
        if reverse then
            page = redis.call('ZREVRANGE', C, offset, offset + 31, 'WITHSCORES')
        else
            page = redis.call('ZRANGE', C, offset, offset + 31, 'WITHSCORES')
        end
        if #page == 0 then
            return false
        end
        for i = 1, #page, 2 do
            if page[i] ~= SENTINEL then
                local expiry = redis.call('ZSCORE', X, page[i])
                if not expiry or tonumber(expiry) >= now - DEAD_MARGIN_MS then
                    return page[i + 1]
                end
            end
        end
        offset = offset + 32
    end
    return false
end

return {total, expired, s[1] or '0', s[2] or '0', s[3] or '0', first_live(false), first_live(true)}
