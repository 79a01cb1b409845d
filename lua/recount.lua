-- recount: set the shard's stats 'bytes' to the sum of its ledger's payload sizes (fsck --repair).
-- KEYS[1..6] shard keys M K T N S G
-- ARGV[1] the most ledger rows to sum in one call (a larger shard is left as it is)
-- Returns {bytes before, bytes after} (equal when nothing changed or the shard is too large).
--
-- One call reads the whole ledger, so the sum is exact against concurrent writes; ARGV[1] keeps
-- such a call from blocking the server for long.
bind_shard()
local before = tonumber(redis.call('HGET', S, 'bytes') or '0')
if not shard_intact() or redis.call('HLEN', M) > tonumber(ARGV[1]) then
    return {before, before}
end
local rows = redis.call('HGETALL', M)
local total = 0
for i = 1, #rows, 2 do
    if rows[i] ~= SENTINEL then
        local size = read_row(rows[i + 1])
        total = total + size
    end
end
if total ~= before then
    redis.call('HSET', S, 'bytes', total)
end
return {before, total}
