-- cleanup: unindex up to one batch of expired entries (Redis already dropped their entry strings).
-- KEYS[1..7] shard keys M K X C T N S
-- ARGV[1] batch size
-- Returns {entries unindexed, more left (1/0)}.
bind_shard()
local removed, more = trim_expired(now_ms(), tonumber(ARGV[1]))
return {removed, more and 1 or 0}
