"""Stats that add up across processes: every hybrid instance on a prefix reports the same shared
figures (every instance's hits, L1 hits included, counted once), and its own L1 apart."""

from __future__ import annotations

from typing import Any

from support.redis_servers import RedisServer

from rediscache import CacheKey, HybridCacheAdapter

SHARED = ("total_entries", "total_hits", "total_misses", "hit_rate", "memory_usage_bytes")


async def test_two_instances_on_one_prefix_report_the_same_shared_totals(
    redis_server: RedisServer, redis_client: Any, key_prefix: str
) -> None:
    async with (
        HybridCacheAdapter(redis_server.url, key_prefix=key_prefix) as one,
        HybridCacheAdapter(redis_server.url, key_prefix=key_prefix) as two,
    ):
        assert await one.wait_until_coherent() and await two.wait_until_coherent()
        await one.set(CacheKey(key="a"), 1)
        await one.set(CacheKey(key="b"), 2)
        for cache in (one, two):  # the same traffic on each
            for _ in range(5):
                await cache.get(CacheKey(key="a"))  # 1 L2 hit, then 4 L1 hits
            await cache.get(CacheKey(key="b"))
            await cache.get(CacheKey(key="missing"))
        await one.l2.flush()
        await two.l2.flush()

        first, second = await one.get_stats(), await two.get_stats()

    assert {name: getattr(first, name) for name in SHARED} == {name: getattr(second, name) for name in SHARED}
    # Every hit of both, L1 hits included, once: (1 + 4 + 1) each; 1 miss each.
    assert (first.total_hits, first.total_misses, first.total_entries) == (12, 2, 2)
    assert first.model_extra is not None and second.model_extra is not None
    assert first.model_extra["l1_hits"] == second.model_extra["l1_hits"] == 4
