"""Scripts survive SCRIPT FLUSH and a server restart: NOSCRIPT is answered by reloading."""

from __future__ import annotations

from typing import Any

from support.factories import MakeAdapter
from support.redis_servers import RedisServer

from rediscache import CacheKey, RedisCacheAdapter


async def test_single_calls_work_after_script_flush(cache: RedisCacheAdapter, redis_client: Any) -> None:
    await cache.set(CacheKey(key="k"), 1)
    await redis_client.script_flush()

    entry = await cache.get(CacheKey(key="k"))

    assert entry is not None and entry.value == 1


async def test_pipelined_batches_work_after_script_flush(cache: RedisCacheAdapter, redis_client: Any) -> None:
    keys = [CacheKey(key=f"k{i}") for i in range(20)]
    await cache.set_many([(key, i) for i, key in enumerate(keys)])
    await redis_client.script_flush()

    entries = await cache.get_many(keys)

    assert [entry.value if entry else None for entry in entries] == list(range(20))
    # Each script ran exactly once: every hit counted once, none twice.
    assert (await cache.get_stats()).total_hits == 20


async def test_invalidation_works_after_script_flush(cache: RedisCacheAdapter, redis_client: Any) -> None:
    await cache.set(CacheKey(key="k", tags=["t"]), 1)
    await redis_client.script_flush()

    assert await cache.delete_by_tags(["t"]) == 1


async def test_the_adapter_recovers_after_a_server_restart(
    make_adapter: MakeAdapter, private_server: RedisServer
) -> None:
    cache = await make_adapter(private_server.url)
    await cache.set(CacheKey(key="before"), 1)

    private_server.stop()
    private_server.start()  # comes back empty, with no scripts loaded

    assert await cache.get(CacheKey(key="before")) is None
    await cache.set(CacheKey(key="after", tags=["t"]), 2)
    entry = await cache.get(CacheKey(key="after"))
    assert entry is not None and entry.value == 2
    assert await cache.delete_by_tags(["t"]) == 1
