-- stats: one shard's figures, read in one consistent view. Writes nothing (safe on replicas).
-- KEYS[1..6] shard keys M K T N S G
-- ARGV[1] entry key prefix 'P:{T}:L:e:'   ARGV[2] how many entries to sample for oldest/newest
-- Returns {live entries, hits, misses, bytes, oldest created us|false, newest created us|false}.
-- A shard whose bookkeeping is incomplete (new, or partly evicted) counts no entry: every entry of
-- it reads as a miss until a write starts a new generation.
--
-- oldest/newest: the created times of a random sample of ARGV[2] live entries (all of them when the
-- shard holds no more), read from their headers; the entry strings are named from ARGV[1], which
-- carries this shard's hash tag (as in invalidate). Exact for small shards, an estimate beyond.
-- `live` leaves out entries kept past their logical expiry for fail-safe, estimated from the same
-- sample (see below).
bind_shard()
local now = now_ms()
local s = redis.call('HMGET', S, 'hits', 'misses', 'bytes')
if not shard_intact() then
    return {0, s[1] or '0', s[2] or '0', '0', false, false}
end
GEN = tonumber(redis.call('GET', G))
-- Members of K, less the sentinel, less those whose expiry passed (not trimmed yet).
local live = redis.call('ZCARD', K) - 1 - redis.call('ZCOUNT', K, '-inf', '(' .. (now - DEAD_MARGIN_MS))

local oldest, newest = false, false
local entry_prefix = ARGV[1]
local now_us_ = now * 1000
-- Entries kept past their logical expiry for fail-safe are in K until their physical expiry: the
-- sample counts them, and their share of it is taken off `live` (exact when the sample is the whole
-- shard, an estimate beyond, as oldest/newest are).
local sample = redis.call('ZRANDMEMBER', K, tonumber(ARGV[2]))
local seen, stale = 0, 0
for _, fk in ipairs(sample) do
    if fk ~= SENTINEL then
        local head = redis.call('GETRANGE', entry_prefix .. fk, 0, GEN_AT + 7)
        if #head == GEN_AT + 8 then
            local created, expiry, gen = struct.unpack('>i8>i8>i8', head)
            if gen == GEN then
                seen = seen + 1
                if expiry ~= 0 and expiry <= now_us_ then
                    stale = stale + 1
                else
                    if not oldest or created < oldest then
                        oldest = created
                    end
                    if not newest or created > newest then
                        newest = created
                    end
                end
            end
        end
    end
end
if stale > 0 then
    if #sample >= redis.call('ZCARD', K) then
        live = live - stale
    else
        live = live - math.floor(live * stale / seen + 0.5)
    end
end
return {live, s[1] or '0', s[2] or '0', s[3] or '0', oldest and string.format('%d', oldest), newest and string.format('%d', newest)}
