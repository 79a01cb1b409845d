"""A TTL whose expiry can't be represented (past year 9999, or past Redis's limit) is a ValueError
raised before anything is written, on Redis and in memory; a large TTL that can be represented is
stored as given."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import redis.asyncio
from support.factories import MakeAdapter
from support.redis_servers import RedisServer

from rediscache import CacheKey, MemoryCacheAdapter

from ._settings import TIMEOUTS

UNREPRESENTABLE = pytest.mark.parametrize(
    "ttl", [timedelta.max, timedelta(days=10**6)], ids=["timedelta.max", "a million days"]
)
CENTURY = timedelta(days=36_525)


async def _prefix_keys(client: redis.asyncio.Redis, key_prefix: str) -> list[bytes]:
    return [key async for key in client.scan_iter(match=f"*{key_prefix}*")]


@UNREPRESENTABLE
async def test_redis_set_with_an_unrepresentable_ttl_raises_value_error_and_writes_nothing(
    ttl: timedelta,
    make_adapter: MakeAdapter,
    redis_server: RedisServer,
    redis_client: redis.asyncio.Redis,
    key_prefix: str,
) -> None:
    cache = await make_adapter(redis_server.url, **TIMEOUTS)

    with pytest.raises(ValueError):
        await cache.set(CacheKey(key="k", namespace="ns", tags=["t"]), "v", ttl=ttl)

    assert await _prefix_keys(redis_client, key_prefix) == []


@UNREPRESENTABLE
async def test_redis_set_many_with_an_unrepresentable_ttl_raises_value_error_and_writes_nothing(
    ttl: timedelta,
    make_adapter: MakeAdapter,
    redis_server: RedisServer,
    redis_client: redis.asyncio.Redis,
    key_prefix: str,
) -> None:
    cache = await make_adapter(redis_server.url, **TIMEOUTS)

    with pytest.raises(ValueError):
        await cache.set_many([(CacheKey(key="a"), 1), (CacheKey(key="b", tags=["t"]), 2)], ttl=ttl)

    assert await _prefix_keys(redis_client, key_prefix) == []


@UNREPRESENTABLE
async def test_redis_set_with_an_unrepresentable_ttl_leaves_the_previous_value_intact(
    ttl: timedelta, make_adapter: MakeAdapter, redis_server: RedisServer
) -> None:
    cache = await make_adapter(redis_server.url, **TIMEOUTS)
    key = CacheKey(key="k", namespace="ns", tags=["t"])
    await cache.set(key, "before", ttl=timedelta(hours=1))

    with pytest.raises(ValueError):
        await cache.set(CacheKey(key="k", namespace="ns", tags=["other"]), "after", ttl=ttl)

    entry = await cache.get(key)
    assert entry is not None and entry.value == "before" and entry.key.tags == ["t"]
    assert entry.expires_at is not None and entry.expires_at - entry.created_at == timedelta(hours=1)
    assert await cache.delete_by_tags(["other"]) == 0  # the refused set indexed nothing either


async def test_redis_set_with_a_ttl_of_a_century_stores_it(
    make_adapter: MakeAdapter, redis_server: RedisServer
) -> None:
    cache = await make_adapter(redis_server.url, **TIMEOUTS)
    key = CacheKey(key="k")

    await cache.set(key, "v", ttl=CENTURY)

    entry = await cache.get(key)
    assert entry is not None and entry.expires_at is not None
    assert entry.expires_at - entry.created_at == CENTURY


@UNREPRESENTABLE
async def test_memory_set_with_an_unrepresentable_ttl_raises_value_error_and_writes_nothing(ttl: timedelta) -> None:
    cache = MemoryCacheAdapter()

    with pytest.raises(ValueError):
        await cache.set(CacheKey(key="k", tags=["t"]), "v", ttl=ttl)

    assert (await cache.get_stats()).total_entries == 0
    assert await cache.exists(CacheKey(key="k")) is False


@UNREPRESENTABLE
async def test_memory_set_many_with_an_unrepresentable_ttl_raises_value_error_and_writes_nothing(
    ttl: timedelta,
) -> None:
    cache = MemoryCacheAdapter()

    with pytest.raises(ValueError):
        await cache.set_many([(CacheKey(key="a"), 1), (CacheKey(key="b"), 2)], ttl=ttl)

    assert (await cache.get_stats()).total_entries == 0


@UNREPRESENTABLE
async def test_memory_set_with_an_unrepresentable_ttl_leaves_the_previous_value_intact(ttl: timedelta) -> None:
    cache = MemoryCacheAdapter()
    key = CacheKey(key="k", tags=["t"])
    await cache.set(key, "before")

    with pytest.raises(ValueError):
        await cache.set(CacheKey(key="k", tags=["other"]), "after", ttl=ttl)

    entry = await cache.get(key)
    assert entry is not None and entry.value == "before" and entry.expires_at is None
    assert await cache.delete_by_tags(["other"]) == 0
    assert (await cache.get_stats()).total_entries == 1


async def test_memory_set_with_a_ttl_of_a_century_stores_it() -> None:
    cache = MemoryCacheAdapter()
    before = datetime.now(timezone.utc)

    await cache.set(CacheKey(key="k"), "v", ttl=CENTURY)

    entry = await cache.get(CacheKey(key="k"))
    assert entry is not None and entry.expires_at is not None
    assert entry.expires_at - before >= CENTURY
