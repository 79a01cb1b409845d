-- delete: remove the given entries and every index trace of them, in one call (one shard).
-- KEYS[1..6] shard keys M K T N S G   KEYS[7..] entry strings, one per full_key
-- ARGV[1] invalidation channel ('' : none)   ARGV[2] origin
-- ARGV[3..] full_keys, in the same order as their entry strings
-- Returns how many of them were live (present, and of the shard's current generation).
bind_shard()
open_shard()
local entries, full_keys = {}, {}
local live = 0
for i = 3, #ARGV do
    local E = KEYS[4 + i]
    entries[#entries + 1] = E
    full_keys[#full_keys + 1] = ARGV[i]
    if is_current(E) then
        live = live + 1
    end
end
call_sliced('DEL', false, entries)
unindex_many(full_keys)
announce(ARGV[1], ARGV[2], full_keys)
return live
