-- repair: rebuild the bookkeeping of some entries of one shard from the entries themselves, and
-- drop stray index members (fsck --repair, rediscache/redis/introspect.py). Atomic per call, so a
-- concurrent write of the same entry is either wholly before or wholly after it.
-- KEYS[1..6] shard keys M K T N S G
-- ARGV[1] entry key prefix 'P:{T}:L:e:'   ARGV[2] n: how many full_keys follow
-- ARGV[3..2+n] full_keys to rebuild   ARGV[3+n..] pairs: index letter ('t' or 'n'), member to drop
--   unless the ledger row of its full_key names it
-- Returns {entries reindexed, entries unindexed (gone, unreadable or of another generation), members dropped}.
--
-- An entry of the current generation is the truth: its ledger row, key-index member (with its
-- expiry) and tag and namespace members are written anew from its header and meta. One that is
-- gone or of another generation is unindexed (its string, if any, reads as a miss and is left to
-- its TTL). The entry strings are named from ARGV[1], which carries this shard's hash tag (as in
-- invalidate). A shard whose bookkeeping is incomplete is left alone: its next write starts a new
-- generation, which is the repair.
bind_shard()
if not shard_intact() then
    return {0, 0, 0}
end
GEN = tonumber(redis.call('GET', G))
local entry_prefix, n = ARGV[1], tonumber(ARGV[2])
local rebuilt, dropped, removed = 0, 0, 0

for i = 3, 2 + n do
    local fk = ARGV[i]
    local raw = redis.call('GET', entry_prefix .. fk)
    unindex_many({fk})
    redis.call('ZREM', K, fk)
    local ok = false
    if raw and #raw >= HEADER then
        local _, expiry_us, gen, _, _, meta_len = struct.unpack('>i8>i8>i8>I4>i8>I2', raw)
        if gen == GEN and #raw >= HEADER + meta_len then
            local ns, tags = false, {}
            local good, meta = true, nil
            if meta_len > 0 then
                good, meta = pcall(cmsgpack.unpack, string.sub(raw, HEADER + 1, HEADER + meta_len))
                if good then
                    ns, tags = meta[1] or false, meta[2] or {}
                end
            end
            if good then
                local size = #raw - HEADER - meta_len
                local expiry = expiry_us == 0 and '+inf' or math.ceil(expiry_us / 1000)
                redis.call('HSET', M, fk, ledger_row(size, ns, tags))
                redis.call('ZADD', K, expiry, fk)
                if ns then
                    redis.call('ZADD', N, 0, member_prefix(ns) .. fk)
                end
                for j = 1, #tags do
                    redis.call('ZADD', T, 0, member_prefix(tags[j]) .. fk)
                end
                redis.call('HINCRBY', S, 'bytes', size)
                ok = true
            end
        end
    end
    if ok then
        rebuilt = rebuilt + 1
    else
        dropped = dropped + 1
    end
end

-- Whether the ledger row of fk names `name` under index `which`.
local function row_names(fk, which, name)
    local row = redis.call('HGET', M, fk)
    if not row then
        return false
    end
    local _, ns, tags = read_row(row)
    if which == 'n' then
        return ns == name
    end
    for j = 1, #tags do
        if tags[j] == name then
            return true
        end
    end
    return false
end

for i = 3 + n, #ARGV, 2 do
    local which, member = ARGV[i], ARGV[i + 1]
    local colon = string.find(member, ':', 1, true)
    local length = colon and tonumber(string.sub(member, 1, colon - 1))
    local keep = false
    if length then
        local name = string.sub(member, colon + 1, colon + length)
        local fk = string.sub(member, colon + length + 1)
        keep = row_names(fk, which, name)
    end
    if not keep then
        removed = removed + redis.call('ZREM', which == 'n' and N or T, member)
    end
end
return {rebuilt, dropped, removed}
