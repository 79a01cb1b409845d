-- invalidate: remove up to one batch of the entries listed under some index ranges, atomically.
-- Used by delete_by_tags (index t), delete_by_namespace (index n) and clear (index k: every entry).
-- KEYS[1..6] shard keys M K T N S G
-- ARGV[1] entry key prefix 'P:{T}:L:e:'   ARGV[2] batch size   ARGV[3] index: 'k', 't' or 'n'
-- ARGV[4] invalidation channel (see announce in _lib.lua; '' : none)   ARGV[5] origin   ARGV[6] time slice (us): stop once
-- this much server time is spent (a long invalidation leaves room for other clients between calls); or, for the first
-- call of an invalidation, 'CAP/SLICE': CAP when no range holds more than one batch (such an invalidation is then
-- one call), SLICE when one does (it takes several calls anyway: a first call of a whole batch would hold the server
-- for one long stretch, ~5 ms for 500 entries, where the slices leave other clients room every SLICE)
-- ARGV[7..] member prefixes, for t and n: each names one range (a tag's or namespace's '<len>:<name>')
-- Returns {live entries removed, more left (1/0)}.
--
-- The entry strings found in the index are the one kind of key not passed in KEYS: they are only known
-- once the index is read, and reading first would cost a second round trip per batch. Each is named
-- from ARGV[1], which carries this shard's hash tag, so every key touched sits in this script's slot.
-- A shard whose bookkeeping Redis evicted starts a new generation here: its older entries all read
-- as misses from then on, so none survives this invalidation, and the ranges below are empty.
bind_shard()
local started = stopwatch_us()
open_shard()
local entry_prefix, budget, which = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local channel, origin = ARGV[4], ARGV[5]
local cap, short = string.match(ARGV[6], '^(%d+)/(%d+)$')
local slice = tonumber(ARGV[6])
-- Entries removed between looks at the clock: small, so that a slice ends close to its budget (each
-- entry costs ~7-10 us; with 64 a 0.5 ms slice ran ~1.1 ms), cheap to look (TIME is ~0.2 us).
local CHUNK = 16
local live = 0
local removed = {}

-- Delete the entries, and every index trace of them; `stray` turns a full_key that had no ledger
-- row into its member of the index walked, which is dropped so it cannot come back every batch.
local function remove(fks, index, stray)
    local entries = {}
    for j = 1, #fks do
        entries[j] = entry_prefix .. fks[j]
        removed[#removed + 1] = fks[j]
    end
    live = live + call_sliced('DEL', false, entries)
    local strays = unindex_many(fks)
    if #strays > 0 then
        local members = {}
        for j = 1, #strays do
            members[j] = stray(strays[j])
        end
        call_sliced('ZREM', index, members)
    end
end

-- Whether this call spent its time slice.
local function spent()
    return stopwatch_us() - started >= slice
end

local index = ({t = T, n = N})[which]
if cap then
    -- The largest range (ZLEXCOUNT is O(log n)). Not their sum: ranges share entries (an entry with
    -- both tags is removed once), and several ranges of up to a batch each are still one batch's work.
    local held = 0
    if which == 'k' then
        held = redis.call('ZCARD', K) - 1 -- less the sentinel
    else
        for k = 7, #ARGV do
            held = math.max(held, redis.call('ZLEXCOUNT', index, '[' .. ARGV[k], '(' .. ARGV[k] .. '\255'))
            if held > budget then
                break
            end
        end
    end
    slice = tonumber(held > budget and short or cap)
end

if which == 'k' then
    -- Every entry, in rank order: the sentinel sorts last (+inf, and 0xff in lexical order).
    while budget > 0 do
        local fks = redis.call('ZRANGE', K, 0, math.min(CHUNK, budget) - 1)
        if fks[#fks] == SENTINEL then
            fks[#fks] = nil
        end
        if #fks == 0 then
            break
        end
        remove(fks, K, function(fk) return fk end)
        budget = budget - #fks
        if spent() then
            break
        end
    end
    announce(channel, origin, removed)
    return {live, redis.call('ZCARD', K) > 1 and 1 or 0}
end

local function left_in(first)
    for k = first, #ARGV do
        local left = redis.call('ZRANGEBYLEX', index, '[' .. ARGV[k], '(' .. ARGV[k] .. '\255', 'LIMIT', 0, 1)
        if #left > 0 then
            return true
        end
    end
    return false
end

for i = 7, #ARGV do
    local prefix = ARGV[i]
    while true do
        local want = math.min(CHUNK, budget)
        local members = redis.call('ZRANGEBYLEX', index, '[' .. prefix, '(' .. prefix .. '\255', 'LIMIT', 0, want)
        local fks = {}
        for j = 1, #members do
            fks[j] = string.sub(members[j], #prefix + 1)
        end
        remove(fks, index, function(fk) return prefix .. fk end)
        budget = budget - #members
        if budget <= 0 or spent() then
            -- Say "more" only if something is left, so a range of exactly one batch is one call.
            announce(channel, origin, removed)
            return {live, left_in(i) and 1 or 0}
        end
        if #members < want then
            break
        end
    end
end
announce(channel, origin, removed)
return {live, 0}
