"""read_only_reads: get writes nothing, so it works on replicas and on a full noeviction server."""

from __future__ import annotations

from typing import Any

import redis.asyncio
from support.factories import MakeAdapter
from support.redis_servers import RedisServer

from rediscache import CacheKey


async def test_read_only_gets_return_the_touched_entry_but_persist_nothing(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: Any
) -> None:
    writer = await make_adapter(redis_server.url)
    reader = await make_adapter(redis_server.url, read_only_reads=True)
    await writer.set(CacheKey(key="k"), "v")

    first = await reader.get(CacheKey(key="k"))
    second = await reader.get(CacheKey(key="k"))
    assert await reader.get(CacheKey(key="missing")) is None

    assert first is not None and second is not None
    assert (first.hit_count, second.hit_count) == (1, 1)
    stats = await writer.get_stats()
    assert (stats.total_hits, stats.total_misses) == (0, 0)


async def test_read_only_gets_work_on_a_server_that_refuses_writes(
    make_adapter: MakeAdapter, private_server: RedisServer
) -> None:
    writer = await make_adapter(private_server.url)
    reader = await make_adapter(private_server.url, read_only_reads=True)
    await writer.set_many([(CacheKey(key=f"k{i}"), i) for i in range(3)])
    admin = redis.asyncio.Redis.from_url(private_server.url)
    # Below what it already uses: every write is refused with OOM from here on.
    await admin.config_set("maxmemory", 1)
    await admin.config_set("maxmemory-policy", "noeviction")
    try:
        entry = await reader.get(CacheKey(key="k1"))
        many = await reader.get_many([CacheKey(key="k0"), CacheKey(key="k2")])
    finally:
        await admin.config_set("maxmemory", 0)
        await admin.aclose()

    assert entry is not None and entry.value == 1
    assert [e.value if e else None for e in many] == [0, 2]
