-- cleanup: one bounded step of maintenance: unindex up to one batch of expired entries (Redis
-- already dropped their entry strings), then reconcile up to one batch of the key index with the
-- entries: a member whose entry string is gone (evicted under maxmemory, or deleted behind the
-- cache's back) is unindexed. The walk is a ZSCAN whose cursor the caller passes from one call to
-- the next, so it advances even where Redis refuses writes (at maxmemory under noeviction).
-- KEYS[1..6] shard keys M K T N S G
-- ARGV[1] batch size   ARGV[2] entry key prefix 'P:{T}:L:e:'   ARGV[3] ZSCAN cursor ('0' to start)
-- Returns {expired entries unindexed, more expired left (1/0), vanished entries unindexed, next cursor
-- ('0': the walk is done)}.
--
-- The entry strings checked are named from ARGV[2], which carries this shard's hash tag (as in invalidate).
bind_shard()
local now = now_ms()
open_shard()
local batch, entry_prefix = tonumber(ARGV[1]), ARGV[2]
local removed, more = trim_expired(now, batch)
if more then
    -- Expired entries first: the walk below would otherwise find them gone and count them as evicted.
    return {removed, 1, 0, ARGV[3]}
end

local step = redis.call('ZSCAN', K, ARGV[3], 'COUNT', batch)
local cursor, page = step[1], step[2]
local gone, vanished = {}, 0
for i = 1, #page, 2 do
    local fk = page[i]
    if fk ~= SENTINEL and redis.call('EXISTS', entry_prefix .. fk) == 0 then
        gone[#gone + 1] = fk
        -- Gone before its expiry (or without one): evicted. Otherwise it just expired.
        if (tonumber(page[i + 1]) or math.huge) <= now then
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
return {removed, 0, vanished, cursor}
