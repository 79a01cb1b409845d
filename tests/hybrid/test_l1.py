"""What the L1 hands out, and how it is counted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest_asyncio
from support.redis_servers import RedisServer

from rediscache import CacheKey, HybridCacheAdapter
from rediscache.adapters.hybrid import _ReadTracker


@pytest_asyncio.fixture
async def cache(redis_server: RedisServer, redis_client: Any, key_prefix: str) -> AsyncIterator[HybridCacheAdapter]:
    async with HybridCacheAdapter(redis_server.url, key_prefix=key_prefix) as adapter:
        assert await adapter.wait_until_coherent()
        yield adapter


async def _l1_hits(cache: HybridCacheAdapter) -> int:
    return int((await cache.get_stats()).model_extra["l1_hits"])


async def test_a_second_read_is_served_from_l1(cache: HybridCacheAdapter) -> None:
    await cache.set(CacheKey(key="k"), {"a": 1})
    await cache.get(CacheKey(key="k"))

    entry = await cache.get(CacheKey(key="k"))

    assert entry is not None and entry.value == {"a": 1}
    assert await _l1_hits(cache) == 1


async def test_an_l1_hit_returns_the_touched_copy(cache: HybridCacheAdapter) -> None:
    await cache.set(CacheKey(key="k", tags=["t"]), 1)
    first = await cache.get(CacheKey(key="k"))
    second = await cache.get(CacheKey(key="k"))

    assert first is not None and second is not None
    assert (first.hit_count, second.hit_count) == (1, 2)
    assert second.last_accessed >= first.last_accessed
    assert second.created_at == first.created_at and second.key.tags == ["t"]


async def test_a_mutated_value_does_not_change_what_the_next_caller_gets(cache: HybridCacheAdapter) -> None:
    await cache.set(CacheKey(key="k"), {"items": [1, 2]})
    await cache.get(CacheKey(key="k"))
    first = await cache.get(CacheKey(key="k"))
    assert first is not None
    first.value["items"].append(3)

    second = await cache.get(CacheKey(key="k"))

    assert second is not None and second.value == {"items": [1, 2]}
    assert await _l1_hits(cache) == 2


async def test_shared_object_mode_hands_out_the_same_object(
    redis_server: RedisServer, redis_client: Any, key_prefix: str
) -> None:
    async with HybridCacheAdapter(redis_server.url, key_prefix=key_prefix, l1_shared_objects=True) as cache:
        assert await cache.wait_until_coherent()
        await cache.set(CacheKey(key="k"), {"a": 1})
        await cache.get(CacheKey(key="k"))

        first = await cache.get(CacheKey(key="k"))
        second = await cache.get(CacheKey(key="k"))

        assert first is not None and second is not None and first.value is second.value


async def test_stats_give_the_shared_figures_and_l1_hits_apart(cache: HybridCacheAdapter) -> None:
    await cache.set(CacheKey(key="k"), 1)
    await cache.get(CacheKey(key="k"))  # L2 hit, promoted
    await cache.get(CacheKey(key="k"))  # L1 hit
    await cache.get(CacheKey(key="k"))  # L1 hit
    await cache.get(CacheKey(key="nope"))  # miss

    stats = await cache.get_stats()
    l2 = await cache.l2.get_stats()
    l1 = await cache.get_l1_stats()

    assert (stats.total_hits, stats.total_misses) == (l2.total_hits, l2.total_misses) == (3, 1)
    assert stats.hit_rate == 0.75
    assert stats.model_extra is not None and stats.model_extra["l1_hits"] == 2
    assert (l1.total_entries, l1.total_hits) == (1, 2)


async def test_an_own_write_replaces_the_l1_copy_before_returning(cache: HybridCacheAdapter) -> None:
    await cache.set(CacheKey(key="k", tags=["t"], namespace="n"), "old")
    await cache.get(CacheKey(key="k", namespace="n"))

    await cache.set(CacheKey(key="k", namespace="n"), "new")
    entry = await cache.get(CacheKey(key="k", namespace="n"))
    assert entry is not None and entry.value == "new"

    await cache.get(CacheKey(key="k", namespace="n"))
    assert await cache.delete_by_namespace("n") == 1
    assert await cache.get(CacheKey(key="k", namespace="n")) is None


async def test_l1_is_bounded_by_its_size(redis_server: RedisServer, redis_client: Any, key_prefix: str) -> None:
    async with HybridCacheAdapter(redis_server.url, key_prefix=key_prefix, l1_max_size=10) as cache:
        assert await cache.wait_until_coherent()
        keys = [CacheKey(key=f"k{i}") for i in range(50)]
        await cache.set_many([(key, i) for i, key in enumerate(keys)])
        for key in keys:
            await cache.get(key)

        l1 = await cache.get_l1_stats()
        assert l1.total_entries == 10 and l1.model_extra["evictions"] == 40


async def test_get_stale_serves_a_recent_l1_copy_without_asking_redis(cache: HybridCacheAdapter) -> None:
    await cache.set(CacheKey(key="k"), "v")
    await cache.get(CacheKey(key="k"))

    fresh = await cache.get_stale(CacheKey(key="k"), max_age=timedelta(seconds=60))
    too_old = await cache.get_stale(CacheKey(key="k"), max_age=timedelta(microseconds=1))

    assert fresh is not None and fresh.value == "v"
    assert too_old is None
    assert await cache.get_stale(CacheKey(key="never-read"), max_age=timedelta(seconds=60)) is None


def test_a_read_whose_key_was_invalidated_in_flight_may_not_promote() -> None:
    tracker = _ReadTracker()
    token = tracker.begin("k")
    tracker.invalidate("k")
    assert tracker.end("k", token) is False


def test_a_read_during_a_flush_may_not_promote() -> None:
    tracker = _ReadTracker()
    token = tracker.begin("k")
    tracker.invalidate_all()
    assert tracker.end("k", token) is False


def test_a_read_untouched_in_flight_may_promote_and_leaves_nothing_behind() -> None:
    tracker = _ReadTracker()
    first = tracker.begin("k")
    second = tracker.begin("k")
    tracker.invalidate("other")
    assert tracker.end("k", first) and tracker.end("k", second)
    tracker.invalidate("k")  # nothing in flight: nothing to remember
    assert tracker.end("k", tracker.begin("k"))


async def _until(condition: Any, seconds: float = 3.0) -> bool:
    import asyncio

    for _ in range(int(seconds / 0.01)):
        if await condition():
            return True
        await asyncio.sleep(0.01)
    return False


async def test_another_instances_change_drops_the_l1_copy_with_classic_pub_sub_too(
    redis_server: RedisServer, redis_client: Any, key_prefix: str
) -> None:
    # Servers before Redis 7 have no sharded pub/sub: the same coherence over the one classic channel.
    async with (
        HybridCacheAdapter(redis_server.url, key_prefix=key_prefix, sharded_pubsub=False) as reader,
        HybridCacheAdapter(redis_server.url, key_prefix=key_prefix, sharded_pubsub=False) as writer,
    ):
        assert await reader.wait_until_coherent() and await writer.wait_until_coherent()
        await writer.set(CacheKey(key="k"), "old")

        async def served_from_l1() -> bool:
            # A read racing the set's own message is not promoted: keep reading until one is.
            before = await _l1_hits(reader)
            await reader.get(CacheKey(key="k"))
            return await _l1_hits(reader) > before

        assert await _until(served_from_l1)

        await writer.set(CacheKey(key="k"), "new")

        async def sees_new() -> bool:
            entry = await reader.get(CacheKey(key="k"))
            return entry is not None and entry.value == "new"

        assert await _until(sees_new)
