-- delete: remove the given entries and every index trace of them, in one call (one shard).
-- KEYS[1..6] shard keys M K T N S G   KEYS[7..] entry strings, one per full_key
-- ARGV[1] invalidation channel (see announce in _lib.lua; '' : none)   ARGV[2] origin
-- ARGV[3..] full_keys, in the same order as their entry strings
-- Returns how many of them were live (present, of the shard's current generation, not past their
-- logical expiry: an entry kept for fail-safe is removed, but not counted).
bind_shard()
local now = now_us()
open_shard()
local entries, full_keys = {}, {}
local live = 0
for i = 3, #ARGV do
    local E = KEYS[4 + i]
    entries[#entries + 1] = E
    full_keys[#full_keys + 1] = ARGV[i]
    if is_live(E, now) then
        live = live + 1
    end
end
call_sliced('DEL', false, entries)
unindex_many(full_keys)
announce(ARGV[1], ARGV[2], full_keys)
return live
