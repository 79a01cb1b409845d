-- stats: one shard's figures, read in one consistent view. Writes nothing (safe on replicas).
-- KEYS[1..7] shard keys M K X C T N S
-- ARGV[1] how many dead members to skip at most when looking for the oldest/newest live entry
-- Returns {entries in index, of which expired, hits, misses, bytes, oldest created ms|false, newest|false}.
bind_shard()
local now = now_ms()
local horizon = '(' .. (now - DEAD_MARGIN_MS)
local total = redis.call('ZCARD', K)
local expired = redis.call('ZCOUNT', X, '-inf', horizon)
local s = redis.call('HMGET', S, 'hits', 'misses', 'bytes')

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
            local expiry = redis.call('ZSCORE', X, page[i])
            if not expiry or tonumber(expiry) >= now - DEAD_MARGIN_MS then
                return page[i + 1]
            end
        end
        offset = offset + 32
    end
    return false
end

return {total, expired, s[1] or '0', s[2] or '0', s[3] or '0', first_live(false), first_live(true)}
