-- delete: remove the given entries and every index trace of them, in one call (one shard).
-- KEYS[1..7] shard keys M K X C T N S   KEYS[8..] entry hashes, one per full_key
-- ARGV[1..] full_keys, in the same order as their entry hashes
-- Returns how many of them were live.
bind_shard()
local live = 0
for i = 1, #ARGV do
    live = live + redis.call('DEL', KEYS[7 + i])
    unindex(ARGV[i])
end
return live
