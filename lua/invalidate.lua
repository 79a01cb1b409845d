-- invalidate: remove up to one batch of the entries listed under some index ranges, atomically.
-- Used by delete_by_tags (index t), delete_by_namespace (index n), clear and prefix-only patterns (index k).
-- KEYS[1..8] shard keys M K X C T N S G
-- ARGV[1] entry key prefix 'P:{T}:L:e:'   ARGV[2] batch size   ARGV[3] index: 'k', 't' or 'n'
-- ARGV[4] invalidation channel ('' : none)   ARGV[5] origin
-- ARGV[6..] member prefixes: each names one range (a tag's or namespace's '<len>:<name>', or a key prefix)
-- Returns {live entries removed, more left (1/0)}.
--
-- The entry strings found in the index are the one kind of key not passed in KEYS: they are only known
-- once the index is read, and reading first would cost a second round trip per batch. Each is named
-- from ARGV[1], which carries this shard's hash tag, so every key touched sits in this script's slot.
-- A shard whose bookkeeping Redis evicted starts a new generation here: its older entries all read
-- as misses from then on, so none survives this invalidation, and the ranges below are empty.
bind_shard()
open_shard(now_ms())
local entry_prefix, budget, which = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local index = ({k = K, t = T, n = N})[which]
local channel, origin = ARGV[4], ARGV[5]
local live = 0
local removed = {}
for i = 6, #ARGV do
    local prefix = ARGV[i]
    local members = redis.call('ZRANGEBYLEX', index, '[' .. prefix, '(' .. prefix .. '\255', 'LIMIT', 0, budget)
    -- In the key index the member is the full_key itself; elsewhere it follows the range's prefix.
    local fks, entries = {}, {}
    for j = 1, #members do
        local fk = members[j]
        if which ~= 'k' then
            fk = string.sub(fk, #prefix + 1)
        end
        fks[j] = fk
        entries[j] = entry_prefix .. fk
        removed[#removed + 1] = fk
    end
    live = live + call_sliced('DEL', false, entries)
    local strays = unindex_many(fks)
    if #strays > 0 then
        -- Members with no ledger row cannot come from our own writes; drop them so they can't loop.
        local stray_members = {}
        for j = 1, #strays do
            stray_members[j] = which == 'k' and strays[j] or prefix .. strays[j]
        end
        call_sliced('ZREM', index, stray_members)
    end
    budget = budget - #members
    if budget <= 0 then
        -- Say "more" only if something is left, so a range of exactly one batch is one call.
        for k = i, #ARGV do
            local left = redis.call('ZRANGEBYLEX', index, '[' .. ARGV[k], '(' .. ARGV[k] .. '\255', 'LIMIT', 0, 1)
            if #left > 0 then
                announce(channel, origin, removed)
                return {live, 1}
            end
        end
        break
    end
end
announce(channel, origin, removed)
return {live, 0}
