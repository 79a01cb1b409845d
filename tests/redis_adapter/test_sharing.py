"""Two adapter objects with their own clients on one prefix are one cache."""

from __future__ import annotations

import asyncio
from typing import Any

from support.factories import MakeAdapter
from support.redis_servers import RedisServer

from rediscache import CacheKey


async def _pair(make_adapter: MakeAdapter, redis_server: RedisServer) -> tuple[Any, Any]:
    return await make_adapter(redis_server.url), await make_adapter(redis_server.url)


async def test_an_entry_set_by_one_instance_is_read_by_the_other(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: Any
) -> None:
    first, second = await _pair(make_adapter, redis_server)
    key = CacheKey(key="k", namespace="ns", tags=["t"])
    await first.set(key, {"v": 1})

    entry = await second.get(key)

    assert entry is not None and entry.value == {"v": 1}
    assert entry.key.tags == ["t"] and entry.key.namespace == "ns"


async def test_hit_counts_accumulate_across_instances_once_flushed(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: Any
) -> None:
    first, second = await _pair(make_adapter, redis_server)
    key = CacheKey(key="k")
    await first.set(key, 1)
    await first.get(key)
    await first.flush()

    entry = await second.get(key)

    assert entry is not None and entry.hit_count == 2


async def test_an_invalidation_by_one_instance_removes_the_entry_for_the_other(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: Any
) -> None:
    first, second = await _pair(make_adapter, redis_server)
    await first.set(CacheKey(key="a", tags=["t"]), 1)
    await first.set(CacheKey(key="b", namespace="ns"), 2)
    await first.set(CacheKey(key="c"), 3)

    assert await second.delete_by_tags(["t"]) == 1
    assert await second.delete_by_namespace("ns") == 1
    assert await second.delete_by_pattern("c") == 1

    assert await first.get_many([CacheKey(key="a"), CacheKey(key="ns:b"), CacheKey(key="c")]) == [None] * 3


async def test_an_instance_sees_its_own_reads_at_once_and_another_instances_within_2_s(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: Any
) -> None:
    first, second = await _pair(make_adapter, redis_server)  # the default flush interval: 1 s
    await first.set(CacheKey(key="k"), "v")
    await first.get(CacheKey(key="k"))
    await second.get(CacheKey(key="k"))
    await second.get(CacheKey(key="missing"))

    own = await second.get_stats()  # flushes second's reads first
    assert (own.total_hits, own.total_misses) >= (1, 1)
    deadline = asyncio.get_running_loop().time() + 2.0
    while True:
        stats = await second.get_stats()
        if (stats.total_entries, stats.total_hits, stats.total_misses) == (1, 2, 1):
            break
        assert asyncio.get_running_loop().time() < deadline, f"first's hit not seen within 2 s: {stats}"
        await asyncio.sleep(0.05)


async def test_caches_on_different_prefixes_do_not_see_each_other(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: Any, key_prefix: str
) -> None:
    mine = await make_adapter(redis_server.url)
    theirs = await make_adapter(redis_server.url, key_prefix=key_prefix + "other")
    await mine.set(CacheKey(key="k", tags=["t"]), 1)
    await theirs.set(CacheKey(key="k", tags=["t"]), 2)

    assert await theirs.delete_by_tags(["t"]) == 1
    await theirs.clear()

    entry = await mine.get(CacheKey(key="k"))
    assert entry is not None and entry.value == 1
