-- delete: remove the given entries and every index trace of them, in one call (one shard).
-- KEYS[1..7] shard keys M K X C T N S   KEYS[8..] entry strings, one per full_key
-- ARGV[1] invalidation channel ('' : none)   ARGV[2] origin
-- ARGV[3..] full_keys, in the same order as their entry strings
-- Returns how many of them were live.
bind_shard()
local entries, full_keys = {}, {}
for i = 3, #ARGV do
    entries[#entries + 1] = KEYS[5 + i]
    full_keys[#full_keys + 1] = ARGV[i]
end
local live = call_sliced('DEL', false, entries)
unindex_many(full_keys)
announce(ARGV[1], ARGV[2], full_keys)
return live
