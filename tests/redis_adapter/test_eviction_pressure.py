"""Correct under every evicting ``maxmemory-policy`` (issue 10, "Done when"): a second writer fills a
small server, Redis evicts part of the cache (entries, and under ``allkeys-*`` possibly its
bookkeeping: indexes, ledger, stats, generation), and still

* no entry is readable after an invalidation that covered it, and
* after one maintenance cycle (``cleanup_expired()``), ``total_entries`` is within 5% of the
  entries that are actually readable.

The second writer is raw keys of this test's prefix, with a TTL so that ``volatile-lru`` may evict
them too. In a test this short, Redis's LRU clock (1 s resolution) sees every key as equally old,
so ``allkeys-lru`` evicts nearly at random and often takes some of the bookkeeping; ``allkeys-lfu``
spares the bookkeeping (every write of the cache touched it) and ``volatile-lru`` can't evict it
(no TTL). The cache has eight shards, so that under ``allkeys-*`` some usually lose part of their
bookkeeping while others keep all of it. What was evicted is reported in the assertion messages.

The last test reproduces, with a transaction, a timing that eviction makes possible: a shard's
bookkeeping vanishing within the millisecond in which its generation started.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
import redis.asyncio
from support.factories import MakeAdapter
from support.redis_servers import RedisServer

from rediscache import CacheKey, RedisCacheAdapter
from rediscache.redis.scripts import script

ENTRIES = 3000  # about 4 MB with their indexes
HEADROOM = 6 * 1024 * 1024  # maxmemory above what the empty server uses
VALUE = "v" * 200
PRESSURE_KEYS = 3000  # 1 KB each: with the cache, 1 MB or more over the headroom (on Redis)
PRESSURE_ROUNDS = 4  # more rounds of as many, until the server evicts
PRESSURE_VALUE = b"p" * 1000
PIPELINE = 500
SHARDS = 8
POLICIES = ["allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru"]


def _key(i: int) -> CacheKey:
    return CacheKey(key=f"k{i}", namespace=f"ns{i % 6}", tags=[f"t{i % 10}", "all"])


KEYS = [_key(i) for i in range(ENTRIES)]
# What the tests invalidate: every entry under tag t3 or in namespace ns5 (about 800 of 3000).
COVERED = [key for key in KEYS if "t3" in key.tags or key.namespace == "ns5"]


@pytest_asyncio.fixture
async def admin(private_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(private_server.url)
    try:
        yield client
    finally:
        await client.aclose()


async def _small_server(admin: redis.asyncio.Redis, policy: str) -> None:
    await admin.config_set("maxmemory-policy", policy)
    used = (await admin.info("memory"))["used_memory"]
    await admin.config_set("maxmemory", used + HEADROOM)


def _has_ttl(i: int) -> bool:
    # 4 entries in 7: independent of the tag (i % 10) and the namespace (i % 6), so every tag and
    # namespace has entries that volatile-* may evict and entries it may not.
    return i % 7 < 4


async def _fill(cache: RedisCacheAdapter) -> None:
    """The first cache: most entries with a TTL (evictable under volatile-*), the others without."""
    for start in range(0, ENTRIES, PIPELINE):
        numbers = range(start, min(start + PIPELINE, ENTRIES))
        await cache.set_many([(KEYS[i], VALUE) for i in numbers if _has_ttl(i)], ttl=timedelta(hours=1))
        await cache.set_many([(KEYS[i], VALUE) for i in numbers if not _has_ttl(i)])


async def _press(admin: redis.asyncio.Redis, key_prefix: str, count: int, start: int = 0) -> None:
    """The second writer: ``count`` 1 KB keys of this test's prefix (so the fixtures' clean-up finds them)."""
    for first in range(start, start + count, PIPELINE):
        pipe = admin.pipeline(transaction=False)
        for i in range(first, min(first + PIPELINE, start + count)):
            pipe.set(f"{key_prefix}-pressure:{i}", PRESSURE_VALUE, ex=3600)
        await pipe.execute()


async def _release_pressure(admin: redis.asyncio.Redis, key_prefix: str) -> None:
    """The second writer goes away: from here on nothing is evicted, so what one step of a test
    sees is what the next sees (the tests check that no eviction happened in between)."""
    pressure = [key async for key in admin.scan_iter(match=f"{key_prefix}-pressure:*", count=1000)]
    for start in range(0, len(pressure), 1000):
        await admin.delete(*pressure[start : start + 1000])


async def _evicted(admin: redis.asyncio.Redis) -> int:
    return int((await admin.info("stats"))["evicted_keys"])


async def _missing_bookkeeping(admin: redis.asyncio.Redis, cache: RedisCacheAdapter) -> list[bytes]:
    return [key for shard in cache.layout.shards for key in shard.index_keys if not await admin.exists(key)]


async def _readable(cache: RedisCacheAdapter, keys: list[CacheKey]) -> list[CacheKey]:
    return [key for key, entry in zip(keys, await cache.get_many(keys), strict=True) if entry is not None]


async def _pressed_cache(
    make_adapter: MakeAdapter, server: RedisServer, admin: redis.asyncio.Redis, key_prefix: str, policy: str
) -> RedisCacheAdapter:
    """A full cache on a small server, part of which the second writer made Redis evict. Eight
    shards, so that under allkeys-* some shards usually lose part of their bookkeeping while others
    keep all of it: both cases in one cache."""
    await _small_server(admin, policy)
    cache = await make_adapter(server.url, shards=SHARDS)
    await _fill(cache)
    # Servers differ in what a key costs (Valkey's are smaller than Redis's): press until the
    # server evicts, a bounded number of times.
    for round_ in range(PRESSURE_ROUNDS):
        await _press(admin, key_prefix, PRESSURE_KEYS, start=round_ * PRESSURE_KEYS)
        if await _evicted(admin) > 0:
            break
    assert await _evicted(admin) > 0, "the second writer did not make the server evict anything"
    return cache


@pytest.mark.parametrize("policy", POLICIES)
async def test_no_invalidated_entry_is_readable_after_eviction_pressure(
    make_adapter: MakeAdapter, private_server: RedisServer, admin: redis.asyncio.Redis, key_prefix: str, policy: str
) -> None:
    cache = await _pressed_cache(make_adapter, private_server, admin, key_prefix, policy)
    readable = await _readable(cache, KEYS)
    assert len(readable) < ENTRIES, "the pressure evicted none of the cache's entries"
    missing = await _missing_bookkeeping(admin, cache)

    await cache.delete_by_tags(["t3"])
    await cache.delete_by_namespace("ns5")

    still = await _readable(cache, COVERED)
    assert still == [], (
        f"{len(still)} of {len(COVERED)} invalidated entries readable under {policy} "
        f"({len(readable)} of {ENTRIES} readable before; bookkeeping evicted: {missing})"
    )


@pytest.mark.parametrize("policy", POLICIES)
async def test_total_entries_is_the_readable_count_after_one_cleanup(
    make_adapter: MakeAdapter, private_server: RedisServer, admin: redis.asyncio.Redis, key_prefix: str, policy: str
) -> None:
    cache = await _pressed_cache(make_adapter, private_server, admin, key_prefix, policy)
    missing = await _missing_bookkeeping(admin, cache)
    await _release_pressure(admin, key_prefix)
    evicted = await _evicted(admin)

    await cache.cleanup_expired()

    readable = len(await _readable(cache, KEYS))
    stats = await cache.get_stats()
    assert await _evicted(admin) == evicted, "Redis evicted more during the measurement"
    assert readable < ENTRIES, "the pressure evicted none of the cache's entries"
    assert abs(stats.total_entries - readable) <= 0.05 * readable, (
        f"total_entries {stats.total_entries} against {readable} readable under {policy} "
        f"(bookkeeping evicted: {missing}; reconciled: {cache.reconciled})"
    )


async def test_an_invalidation_under_volatile_lru_pressure_counts_exactly_the_readable_entries_it_removed(
    make_adapter: MakeAdapter, private_server: RedisServer, admin: redis.asyncio.Redis, key_prefix: str
) -> None:
    # volatile-* never evicts the bookkeeping (it has no TTL): the indexes are whole, so the count is exact.
    cache = await _pressed_cache(make_adapter, private_server, admin, key_prefix, "volatile-lru")
    await _release_pressure(admin, key_prefix)
    evicted = await _evicted(admin)
    tagged = [key for key in KEYS if "t3" in key.tags]
    readable = await _readable(cache, tagged)
    assert len(readable) < len(tagged), "the pressure evicted none of the tag's entries"

    removed = await cache.delete_by_tags(["t3"])

    assert await _evicted(admin) == evicted, "Redis evicted more during the measurement"
    assert removed == len(readable)


PRESS_ROUND = 200  # pressure keys per round: about 200 KB
MAX_ROUNDS = 40  # 8 MB in all: more than the whole server holds


async def test_entries_whose_index_was_evicted_are_not_readable_after_their_invalidation(
    make_adapter: MakeAdapter, private_server: RedisServer, admin: redis.asyncio.Redis, key_prefix: str
) -> None:
    # allkeys-random takes any key: pressure is added a little at a time until Redis evicted an
    # index of a shard while that shard's generation and some of its entries under the tag survive:
    # those entries are still readable (no invalidation has happened yet), and the index that
    # would find them is gone. Each shard is one more chance per round.
    await _small_server(admin, "allkeys-random")
    cache = await make_adapter(private_server.url, shards=SHARDS, flush_interval=3600)
    await _fill(cache)
    tagged = [key for key in KEYS if "t3" in key.tags]
    for round_ in range(MAX_ROUNDS):
        await _press(admin, key_prefix, PRESS_ROUND, start=round_ * PRESS_ROUND)
        orphaned = await _orphaned(admin, cache, tagged)
        if orphaned:
            break
    else:
        pytest.fail(f"no shard lost an index with tagged entries still readable after {MAX_ROUNDS} rounds")

    await cache.delete_by_tags(["t3"])

    still = await _readable(cache, tagged)
    assert still == [], f"{len(still)} invalidated entries readable; orphaned before: {len(orphaned)}"


async def _orphaned(admin: redis.asyncio.Redis, cache: RedisCacheAdapter, tagged: list[CacheKey]) -> list[CacheKey]:
    """The readable tagged entries of shards that lost an index (or the ledger, or the stats) but
    not their generation."""
    broken = set()
    for shard in cache.layout.shards:
        gone = [key for key in shard.index_keys if not await admin.exists(key)]
        if gone and shard.generation not in gone:
            broken.add(shard.number)
    if not broken:
        return []
    candidates = [key for key in tagged if cache.layout.shard_of(key.full_key.encode()).number in broken]
    return await _readable(cache, candidates)


_SET = script("set")


async def _set_call(cache: RedisCacheAdapter, key: CacheKey, value: object) -> tuple[object, ...]:
    """The arguments of the set script for ``key`` (see the header of ``lua/set.lua``)."""
    fk = key.full_key.encode()
    shard = cache.layout.shard_of(fk)
    keys = (*shard.index_keys, shard.entry_key(fk))
    args = (fk, cache.codec.encode(value, key.full_key), 0, b"", 10, b"", cache.origin, *[t.encode() for t in key.tags])
    return (_SET.sha, len(keys), *keys, *args)


ATTEMPTS = 5  # each is caught unless the transaction straddles a millisecond boundary


async def test_an_entry_is_not_readable_after_its_invalidation_when_its_shard_was_reset_within_the_same_millisecond(
    make_adapter: MakeAdapter, private_server: RedisServer, admin: redis.asyncio.Redis
) -> None:
    # A shard starts a new generation when it finds its bookkeeping evicted; every older entry must
    # then read as a miss, since the indexes that named it are dropped. Here Redis "evicts" the
    # generation and the tag index (deleted, as eviction does: whole keys) right after the shard was
    # created, and the next write comes within the same millisecond: a transaction makes that
    # timing certain, where real eviction makes it merely possible.
    cache = await make_adapter(private_server.url, flush_interval=3600)
    await cache.set(CacheKey(key="warm-up"), 0)  # loads the scripts
    shard = cache.layout.shards[0]
    survivors = []
    for attempt in range(ATTEMPTS):
        await admin.delete(*shard.index_keys)  # the next write opens a new shard
        old = CacheKey(key=f"old{attempt}", tags=["t"])
        pipe = admin.pipeline(transaction=True)
        pipe.execute_command("EVALSHA", *await _set_call(cache, old, "old"))
        pipe.delete(shard.generation, shard.tags)
        pipe.execute_command("EVALSHA", *await _set_call(cache, CacheKey(key=f"new{attempt}"), "new"))
        await pipe.execute()

        await cache.delete_by_tags(["t"])

        if await cache.get(old) is not None:
            survivors.append(old.key)
    assert survivors == [], f"entries readable after the invalidation of their tag: {survivors}"
