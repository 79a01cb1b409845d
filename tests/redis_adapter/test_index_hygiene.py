"""Indexes stay the size of the live cache: expired members are trimmed without a cron job."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from support.factories import MakeAdapter
from support.redis_servers import RedisServer

from rediscache import CacheKey, RedisCacheAdapter
from rediscache.redis.layout import Layout


async def _index_sizes(client: Any, prefix: str) -> dict[str, int]:
    """Members of each index, the sentinel each holds (so that its eviction can be told) left out."""
    shard = Layout(prefix, 1).shards[0]
    pipe = client.pipeline(transaction=False)
    pipe.hlen(shard.ledger)
    for key in (shard.keys, shard.tags, shard.namespaces):
        pipe.zcard(key)
    ledger, keys, tags, namespaces = [size - 1 for size in await pipe.execute()]
    return {"ledger": ledger, "keys": keys, "tags": tags, "ns": namespaces}


async def test_writes_trim_the_index_members_of_expired_entries(
    cache: RedisCacheAdapter, redis_client: Any, key_prefix: str
) -> None:
    short = [(CacheKey(key=f"short{i}", namespace="ns", tags=["a", "b"]), i) for i in range(1000)]
    await cache.set_many(short, ttl=timedelta(milliseconds=20))
    await asyncio.sleep(0.1)

    # Each write trims up to trim_per_write (10) dead entries: 100 writes cover the 1000.
    for i in range(100):
        await cache.set(CacheKey(key=f"live{i}", namespace="ns", tags=["a"]), i)

    sizes = await _index_sizes(redis_client, key_prefix)
    assert sizes == {"ledger": 100, "keys": 100, "tags": 100, "ns": 100}
    assert (await cache.get_stats()).total_entries == 100


async def test_cleanup_expired_trims_everything_that_expired_and_counts_it(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: Any, key_prefix: str
) -> None:
    cache = await make_adapter(redis_server.url, trim_per_write=0)  # only cleanup_expired trims
    await cache.set_many([(CacheKey(key=f"k{i}", tags=["t"]), i) for i in range(1200)], ttl=timedelta(milliseconds=20))
    await cache.set(CacheKey(key="forever", tags=["t"]), 0)
    await asyncio.sleep(0.1)

    assert await cache.cleanup_expired() == 1200
    assert await cache.cleanup_expired() == 0
    sizes = await _index_sizes(redis_client, key_prefix)
    assert sizes == {"ledger": 1, "keys": 1, "tags": 1, "ns": 0}


async def test_stats_bytes_return_to_the_live_payloads_after_trimming(
    cache: RedisCacheAdapter, redis_client: Any
) -> None:
    await cache.set(CacheKey(key="keep"), "x" * 100)
    baseline = (await cache.get_stats()).memory_usage_bytes
    await cache.set_many([(CacheKey(key=f"k{i}"), "y" * 500) for i in range(50)], ttl=timedelta(milliseconds=20))
    await asyncio.sleep(0.1)
    await cache.cleanup_expired()

    assert (await cache.get_stats()).memory_usage_bytes == baseline


async def test_clear_leaves_only_the_empty_bookkeeping_and_the_hit_and_miss_counters(
    cache: RedisCacheAdapter, redis_client: Any, key_prefix: str
) -> None:
    await cache.set_many([(CacheKey(key=f"k{i}", namespace="n", tags=["t"]), i) for i in range(700)])
    await cache.set(CacheKey(key="ttl"), 1, ttl=timedelta(seconds=30))
    await cache.get(CacheKey(key="k1", namespace="n"))

    await cache.clear()
    await cache.flush()

    shard = Layout(key_prefix, 1).shards[0]
    left = sorted([key async for key in redis_client.scan_iter(match=f"{key_prefix}*")])
    assert left == sorted(shard.index_keys)
    assert await _index_sizes(redis_client, key_prefix) == dict.fromkeys(("ledger", "keys", "tags", "ns"), 0)
    assert await redis_client.hget(shard.stats, "hits") == b"1"
