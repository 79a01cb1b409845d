"""On a 3-master cluster a cache spreads over every master, and invalidations run per shard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio
from support.proxy import CountingProxy
from support.redis_servers import RedisCluster

from rediscache import CacheKey, RedisCacheAdapter
from rediscache.redis.layout import Layout

pytestmark = pytest.mark.cluster


@pytest_asyncio.fixture
async def proxied(
    redis_cluster: RedisCluster, cluster_client: Any, key_prefix: str
) -> AsyncIterator[tuple[RedisCacheAdapter, list[CountingProxy]]]:
    """A cluster adapter whose traffic to each master goes through a counting proxy.

    The nodes announce their real addresses; ``address_remap`` sends the client to the proxies instead.
    """
    async with AsyncExitStack() as stack:
        proxies = {}
        for node in redis_cluster.nodes:
            proxies[(node.host, node.port)] = await stack.enter_async_context(CountingProxy(node.host, node.port))
        first = next(iter(proxies.values()))

        def remap(address: tuple[str, int]) -> tuple[str, int]:
            proxy = proxies.get((address[0], int(address[1])))
            return ("127.0.0.1", proxy.port) if proxy else address

        client = redis.asyncio.RedisCluster(host="127.0.0.1", port=first.port, address_remap=remap)
        adapter = RedisCacheAdapter(client=client, key_prefix=key_prefix)
        try:
            yield adapter, list(proxies.values())
        finally:
            await adapter.close()
            await client.aclose()


async def test_a_cluster_cache_has_16_shards_spread_over_every_master(
    cluster_cache: RedisCacheAdapter, cluster_client: Any, key_prefix: str
) -> None:
    await cluster_cache.set_many([(CacheKey(key=f"k{i}", tags=["t"]), i) for i in range(400)])

    per_node = []
    for node in cluster_client.get_primaries():
        keys = [key async for key in cluster_client.scan_iter(match=f"{key_prefix}*", target_nodes=node)]
        per_node.append(sum(b":e:" in key for key in keys))
    assert (await cluster_cache.get_stats()).total_entries == 400
    assert sum(per_node) == 400
    assert min(per_node) >= 400 // 16  # every master holds at least one shard's share


async def test_every_key_of_a_shard_sits_in_one_slot(cluster_client: Any, key_prefix: str) -> None:
    for shard in Layout(key_prefix, 16).shards:
        slots = {cluster_client.keyslot(key) for key in (*shard.index_keys, shard.entry_key(b"any:key"))}
        assert len(slots) == 1


async def test_shards_of_one_cache_land_on_several_slots(key_prefix: str, cluster_client: Any) -> None:
    slots = {cluster_client.keyslot(shard.ledger) for shard in Layout(key_prefix, 16).shards}
    assert len(slots) == 16


async def test_delete_by_tags_sends_one_script_per_shard(
    proxied: tuple[RedisCacheAdapter, list[CountingProxy]],
) -> None:
    adapter, proxies = proxied
    await adapter.set_many([(CacheKey(key=f"k{i}", tags=["t"]), i) for i in range(300)])
    await adapter.delete_by_tags(["warm-up"])  # loads the script on every node
    for proxy in proxies:
        await proxy.settle()
        proxy.reset()

    removed = await adapter.delete_by_tags(["t"])

    assert removed == 300
    per_node = [proxy.count("EVALSHA") for proxy in proxies]
    assert sum(per_node) == 16 and all(per_node), per_node
    assert sum(proxy.round_trips for proxy in proxies) == 16


async def test_get_and_set_are_one_round_trip_each_on_a_cluster(
    proxied: tuple[RedisCacheAdapter, list[CountingProxy]],
) -> None:
    adapter, proxies = proxied
    await adapter.set(CacheKey(key="warm"), 0)
    for proxy in proxies:
        await proxy.settle()
        proxy.reset()

    await adapter.set(CacheKey(key="k", tags=["a", "b"], namespace="n"), 1)
    await adapter.get(CacheKey(key="n:k"))

    assert sum(proxy.round_trips for proxy in proxies) == 2
    assert [command for proxy in proxies for command in proxy.commands] == ["EVALSHA", "EVALSHA"]


async def test_get_many_is_one_round_trip_per_node(
    proxied: tuple[RedisCacheAdapter, list[CountingProxy]],
) -> None:
    adapter, proxies = proxied
    keys = [CacheKey(key=f"k{i}") for i in range(100)]
    await adapter.set_many([(key, i) for i, key in enumerate(keys)])
    for proxy in proxies:
        await proxy.settle()
        proxy.reset()

    entries = await adapter.get_many(keys)

    assert [entry.value if entry else None for entry in entries] == list(range(100))
    assert [proxy.round_trips for proxy in proxies] == [1, 1, 1]


async def test_the_shards_of_any_prefix_spread_evenly_over_the_masters(
    cluster_cache: RedisCacheAdapter, redis_cluster: RedisCluster
) -> None:
    from rediscache.redis.cluster import ClusterTransport

    await cluster_cache.get(CacheKey(key="warm-up"))  # reads the slot map
    transport = cluster_cache.transport
    assert isinstance(transport, ClusterTransport)
    for prefix in ("inv", "app", "rediscache", cluster_cache.key_prefix):
        spread = transport.describe_spread([shard.slot for shard in Layout(prefix, 16).shards])
        assert len(spread) == len(redis_cluster.nodes), spread
        assert max(spread.values()) / min(spread.values()) <= 6 / 5, (prefix, spread)
