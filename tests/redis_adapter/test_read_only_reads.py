"""Reads are plain read commands: they write nothing, so they keep working on a server at maxmemory
under noeviction; their accounting is flushed apart, and a flush that fails is dropped quietly.
``read_only_reads`` keeps an instance's accounting in the process altogether."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio
from support.factories import MakeAdapter
from support.redis_servers import RedisServer

from rediscache import CacheError, CacheKey


async def test_read_only_reads_count_in_the_process_and_never_flush(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: Any
) -> None:
    writer = await make_adapter(redis_server.url)
    reader = await make_adapter(redis_server.url, read_only_reads=True, flush_interval=0.01)
    await writer.set(CacheKey(key="k"), "v")

    first = await reader.get(CacheKey(key="k"))
    second = await reader.get(CacheKey(key="k"))
    assert await reader.get(CacheKey(key="missing")) is None
    await reader.flush()

    assert first is not None and second is not None
    assert (first.hit_count, second.hit_count) == (1, 2)
    stats = await writer.get_stats()
    assert (stats.total_hits, stats.total_misses) == (0, 0)


async def test_reads_hit_and_writes_fail_cleanly_on_a_server_that_refuses_writes(
    make_adapter: MakeAdapter, private_server: RedisServer
) -> None:
    cache = await make_adapter(private_server.url)
    await cache.set_many([(CacheKey(key=f"k{i}"), i) for i in range(3)])
    admin = redis.asyncio.Redis.from_url(private_server.url)
    # Below what it already uses: every write is refused with OOM from here on.
    await admin.config_set("maxmemory", 1)
    await admin.config_set("maxmemory-policy", "noeviction")
    try:
        entry = await cache.get(CacheKey(key="k1"))
        many = await cache.get_many([CacheKey(key="k0"), CacheKey(key="k2"), CacheKey(key="nope")])
        exists = await cache.exists(CacheKey(key="k0"))
        await cache.flush()  # the accounting of those reads is refused, and dropped
        with pytest.raises(CacheError, match="OutOfMemoryError"):
            await cache.set(CacheKey(key="new"), "x")
        with pytest.raises(CacheError, match="OutOfMemoryError"):
            await cache.set(CacheKey(key="k1"), "overwritten")
    finally:
        await admin.config_set("maxmemory", 0)
        await admin.aclose()

    assert entry is not None and entry.value == 1
    assert [e.value if e else None for e in many] == [0, 2, None]
    assert exists is True
    assert cache.flush_failures == 1
    assert await cache.get(CacheKey(key="new")) is None  # nothing was written
    after = await cache.get(CacheKey(key="k1"))
    assert after is not None and after.value == 1
