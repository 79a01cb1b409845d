"""What the client actually sends, counted by a TCP proxy in front of a standalone server.

``INFO commandstats`` would not do: it also counts the commands run inside the scripts.
"""

from __future__ import annotations

from typing import Any

import pytest_asyncio
from support.factories import MakeAdapter
from support.proxy import CountingProxy

from rediscache import CacheKey, RedisCacheAdapter

# No background flush of the access accounting lands in a measurement: flushes are counted apart.
QUIET = 3600.0
# An invalidation on a server without replicas: its script, and in the same write the INFO replication
# that would show a replica attached since ("auto" then waits for it; docs/operations.md).
INVALIDATION = ["EVALSHA", "INFO"]


@pytest_asyncio.fixture
async def counted(make_adapter: MakeAdapter, counting_proxy: CountingProxy) -> RedisCacheAdapter:
    adapter = await make_adapter(counting_proxy.url, flush_interval=QUIET)
    # First use opens a connection and reads maxmemory-policy; scripts get loaded on first call.
    await adapter.set(CacheKey(key="warm", tags=["warm"], namespace="warm"), 0)
    await adapter.get(CacheKey(key="warm"))
    await adapter.delete(CacheKey(key="warm"))
    await adapter.delete_by_tags(["warm"])
    await adapter.delete_by_namespace("warm")
    await counting_proxy.settle()
    counting_proxy.reset()
    return adapter


async def _measure(proxy: CountingProxy, action: Any) -> tuple[list[str], int]:
    proxy.reset()
    await action
    await proxy.settle()
    return proxy.commands, proxy.round_trips


async def test_get_is_one_round_trip(counted: RedisCacheAdapter, counting_proxy: CountingProxy) -> None:
    await counted.set(CacheKey(key="k"), 1)
    assert await _measure(counting_proxy, counted.get(CacheKey(key="k"))) == (["MGET"], 1)


async def test_a_miss_is_one_round_trip(counted: RedisCacheAdapter, counting_proxy: CountingProxy) -> None:
    assert await _measure(counting_proxy, counted.get(CacheKey(key="nope"))) == (["MGET"], 1)


async def test_set_with_namespace_tags_and_ttl_is_one_round_trip(
    counted: RedisCacheAdapter, counting_proxy: CountingProxy
) -> None:
    from datetime import timedelta

    key = CacheKey(key="k", namespace="ns", tags=["a", "b"])
    assert await _measure(counting_proxy, counted.set(key, {"x": 1}, ttl=timedelta(seconds=5))) == (
        ["EVALSHA"],
        1,
    )


async def test_delete_is_one_round_trip(counted: RedisCacheAdapter, counting_proxy: CountingProxy) -> None:
    await counted.set(CacheKey(key="k"), 1)
    assert await _measure(counting_proxy, counted.delete(CacheKey(key="k"))) == (INVALIDATION, 1)


async def test_delete_by_tags_of_one_batch_is_one_round_trip(
    counted: RedisCacheAdapter, counting_proxy: CountingProxy
) -> None:
    await counted.set_many([(CacheKey(key=f"k{i}", tags=["t", "u"]), i) for i in range(300)])
    commands, trips = await _measure(counting_proxy, counted.delete_by_tags(["t", "u"]))
    assert (commands, trips) == (INVALIDATION, 1)
    assert (await counted.get_stats()).total_entries == 0


async def test_delete_by_namespace_of_one_batch_is_one_round_trip(
    counted: RedisCacheAdapter, counting_proxy: CountingProxy
) -> None:
    await counted.set_many([(CacheKey(key=f"k{i}", namespace="ns"), i) for i in range(500)])
    assert await _measure(counting_proxy, counted.delete_by_namespace("ns")) == (INVALIDATION, 1)


async def test_an_invalidation_beyond_one_batch_costs_one_round_trip_per_batch(
    make_adapter: MakeAdapter, counting_proxy: CountingProxy
) -> None:
    # Slices long enough that the batch, not the clock, ends each call (the clock would make the
    # count depend on how fast this machine is).
    adapter = await make_adapter(counting_proxy.url, batch_size=100, flush_interval=QUIET, invalidation_slice=1.0)
    await adapter.set_many([(CacheKey(key=f"k{i}", tags=["t"]), i) for i in range(250)])
    commands, trips = await _measure(counting_proxy, adapter.delete_by_tags(["t"]))
    assert commands == INVALIDATION * 3 and trips == 3


async def test_get_many_of_100_keys_is_one_mget(counted: RedisCacheAdapter, counting_proxy: CountingProxy) -> None:
    keys = [CacheKey(key=f"k{i}") for i in range(100)]
    await counted.set_many([(key, i) for i, key in enumerate(keys)])
    commands, trips = await _measure(counting_proxy, counted.get_many(keys))
    assert (commands, trips) == (["MGET"], 1)


async def test_set_many_of_100_keys_is_one_script_call(
    counted: RedisCacheAdapter, counting_proxy: CountingProxy
) -> None:
    items = [(CacheKey(key=f"k{i}", tags=["t"]), i) for i in range(100)]
    commands, trips = await _measure(counting_proxy, counted.set_many(items))
    assert (commands, trips) == (["EVALSHA"], 1)


async def test_a_batch_larger_than_batch_size_is_one_round_trip_of_several_calls(
    make_adapter: MakeAdapter, counting_proxy: CountingProxy
) -> None:
    adapter = await make_adapter(counting_proxy.url, batch_size=40, flush_interval=QUIET)
    keys = [CacheKey(key=f"k{i}") for i in range(100)]
    await adapter.set_many([(key, i) for i, key in enumerate(keys)])
    commands, trips = await _measure(counting_proxy, adapter.get_many(keys))
    assert (commands, trips) == (["MGET"] * 3, 1)


async def test_delete_many_of_100_keys_is_one_round_trip(
    counted: RedisCacheAdapter, counting_proxy: CountingProxy
) -> None:
    keys = [CacheKey(key=f"k{i}") for i in range(100)]
    await counted.set_many([(key, i) for i, key in enumerate(keys)])
    commands, trips = await _measure(counting_proxy, counted.delete_many(keys))
    assert (commands, trips) == (INVALIDATION, 1)


async def test_the_reads_of_an_interval_are_flushed_in_one_script_call_per_shard(
    counted: RedisCacheAdapter, counting_proxy: CountingProxy
) -> None:
    keys = [CacheKey(key=f"k{i}") for i in range(50)]
    await counted.set_many([(key, i) for i, key in enumerate(keys)])
    for key in keys:
        await counted.get(key)
    await counted.get_many(keys)
    await counted.get(CacheKey(key="missing"))

    assert await _measure(counting_proxy, counted.flush()) == (["EVALSHA"], 1)
    assert await _measure(counting_proxy, counted.flush()) == ([], 0)  # nothing read since


async def test_an_invalidation_over_one_batch_is_sliced_from_its_first_call(
    make_adapter: MakeAdapter, counting_proxy: CountingProxy
) -> None:
    # A 1 us slice: each sliced call removes one chunk (16 entries) before it looks at the clock. A
    # first call that took a whole batch (100) would make it 1 + 150/16 -> 11 calls instead of 16.
    adapter = await make_adapter(counting_proxy.url, batch_size=100, flush_interval=QUIET, invalidation_slice=1e-6)
    await adapter.set_many([(CacheKey(key=f"k{i}", tags=["t"]), i) for i in range(250)])
    commands, trips = await _measure(counting_proxy, adapter.delete_by_tags(["t"]))
    assert (commands, trips) == (INVALIDATION * 16, 16)
    assert (await adapter.get_stats()).total_entries == 0


async def test_an_invalidation_of_one_batch_stays_one_call_however_short_the_slice(
    make_adapter: MakeAdapter, counting_proxy: CountingProxy
) -> None:
    adapter = await make_adapter(counting_proxy.url, batch_size=100, flush_interval=QUIET, invalidation_slice=1e-6)
    await adapter.set_many([(CacheKey(key=f"k{i}", tags=["t", "u"]), i) for i in range(100)])
    assert await _measure(counting_proxy, adapter.delete_by_tags(["t", "u"])) == (INVALIDATION, 1)
