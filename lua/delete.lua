-- delete: remove the given entries and every index trace of them, in one call (one shard).
-- KEYS[1..7] shard keys M K X C T N S   KEYS[8..] entry hashes, one per full_key
-- ARGV[1] invalidation channel ('' : none)   ARGV[2] origin
-- ARGV[3..] full_keys, in the same order as their entry hashes
-- Returns how many of them were live.
bind_shard()
local live = 0
local full_keys = {}
for i = 3, #ARGV do
    live = live + redis.call('DEL', KEYS[5 + i])
    unindex(ARGV[i])
    full_keys[#full_keys + 1] = ARGV[i]
end
announce(ARGV[1], ARGV[2], full_keys)
return live
