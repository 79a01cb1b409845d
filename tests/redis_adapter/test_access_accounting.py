"""Access accounting is counted in the process and flushed in batches (CONTRACT.md "Adapter
semantics"): an instance's ``get_stats()`` shows its own reads exactly, at once (it flushes first);
another instance's reads show once that instance flushed, within 2 s with the default 1 s interval.
"""

from __future__ import annotations

import asyncio
from typing import Any

from support.factories import MakeAdapter
from support.redis_servers import RedisServer

from rediscache import CacheKey, RedisCacheAdapter

HITS = 37
MISSES = 11
DEADLINE = 2.0  # seconds: twice the default flush interval


async def _reads(cache: RedisCacheAdapter) -> None:
    """HITS hits and MISSES misses, some of them in a get_many."""
    for i in range(HITS - 5):
        assert await cache.get(CacheKey(key=f"k{i % 3}")) is not None
    for i in range(MISSES - 5):
        assert await cache.get(CacheKey(key=f"missing{i}")) is None
    cached, absent = [CacheKey(key=f"k{i % 3}") for i in range(5)], [CacheKey(key=f"m{i}") for i in range(5)]
    many = await cache.get_many(cached + absent)
    assert [entry is not None for entry in many] == [True] * 5 + [False] * 5


async def test_get_stats_shows_this_instances_own_hits_and_misses_exactly(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: Any
) -> None:
    # No background flush in this test: only get_stats()'s own flush can bring the reads in.
    cache = await make_adapter(redis_server.url, flush_interval=3600)
    await cache.set_many([(CacheKey(key=f"k{i}"), i) for i in range(3)])
    await _reads(cache)

    stats = await cache.get_stats()

    assert (stats.total_hits, stats.total_misses) == (HITS, MISSES)
    assert stats.hit_rate == HITS / (HITS + MISSES)


async def test_another_instances_hits_and_misses_show_within_2_s(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: Any
) -> None:
    watcher = await make_adapter(redis_server.url)
    reader = await make_adapter(redis_server.url)  # the default flush interval
    await watcher.set_many([(CacheKey(key=f"k{i}"), i) for i in range(3)])
    loop = asyncio.get_running_loop()

    await _reads(reader)
    read_at = loop.time()

    seen = []
    while loop.time() < read_at + DEADLINE:  # bounded: polls every 50 ms for at most 2 s
        stats = await watcher.get_stats()
        seen.append((stats.total_hits, stats.total_misses))
        if seen[-1] == (HITS, MISSES):
            break
        await asyncio.sleep(0.05)
    assert seen[-1] == (HITS, MISSES), f"within {DEADLINE} s the watcher saw {seen[-1]} ({len(seen)} polls)"
