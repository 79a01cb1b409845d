-- cleanup: one bounded step of maintenance: unindex up to one batch of expired entries (Redis
-- already dropped their entry strings), then reconcile up to one batch of the key index with the
-- entries: a member whose entry string is gone (evicted under maxmemory, or deleted behind the
-- cache's back) is unindexed. The reconciliation resumes where the last call stopped (a cursor in
-- the stats hash), so repeated calls walk the whole index and start over.
-- KEYS[1..8] shard keys M K X C T N S G
-- ARGV[1] batch size   ARGV[2] entry key prefix 'P:{T}:L:e:'
-- Returns {expired entries unindexed, more expired left (1/0), vanished entries unindexed, walk done (1/0)}.
--
-- The entry strings checked are named from ARGV[2], which carries this shard's hash tag (as in invalidate).
bind_shard()
local now = now_ms()
open_shard(now)
local batch, entry_prefix = tonumber(ARGV[1]), ARGV[2]
local removed, more = trim_expired(now, batch)
if more then
    -- Expired entries first: the walk below would otherwise find them gone and count them as evicted.
    return {removed, 1, 0, 0}
end

local cursor = redis.call('HGET', S, 'cursor')
local low = cursor and ('(' .. cursor) or '-'
local page = redis.call('ZRANGEBYLEX', K, low, '(' .. SENTINEL, 'LIMIT', 0, batch)
local gone, vanished = {}, 0
for i = 1, #page do
    if redis.call('EXISTS', entry_prefix .. page[i]) == 0 then
        gone[#gone + 1] = page[i]
        -- Gone before its expiry (or without one): evicted. Otherwise it just expired.
        local expiry = redis.call('ZSCORE', X, page[i])
        if expiry and tonumber(expiry) <= now then
            removed = removed + 1
        else
            vanished = vanished + 1
        end
    end
end
local strays = unindex_many(gone)
if #strays > 0 then
    call_sliced('ZREM', K, strays)
end
local done = #page < batch
if done then
    redis.call('HDEL', S, 'cursor')
else
    redis.call('HSET', S, 'cursor', page[#page])
end
return {removed, 0, vanished, done and 1 or 0}
