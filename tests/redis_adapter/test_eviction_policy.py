"""An allkeys-* eviction policy could evict an index and let a stale entry outlive its invalidation."""

from __future__ import annotations

import logging

import pytest
import redis.asyncio
from support.factories import MakeAdapter
from support.redis_servers import RedisServer

from rediscache import CacheError, CacheKey


async def _set_policy(server: RedisServer, policy: str) -> None:
    admin = redis.asyncio.Redis.from_url(server.url)
    await admin.config_set("maxmemory-policy", policy)
    await admin.aclose()


async def test_allkeys_policy_logs_a_warning_on_first_use(
    make_adapter: MakeAdapter, private_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    await _set_policy(private_server, "allkeys-lru")
    cache = await make_adapter(private_server.url)

    with caplog.at_level(logging.WARNING, logger="rediscache"):
        await cache.set(CacheKey(key="k"), 1)
        await cache.get(CacheKey(key="k"))

    warnings = [r for r in caplog.records if r.name == "rediscache" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "allkeys-lru" in warnings[0].getMessage()


async def test_strict_mode_refuses_an_allkeys_policy_and_writes_nothing(
    make_adapter: MakeAdapter, private_server: RedisServer, key_prefix: str
) -> None:
    await _set_policy(private_server, "allkeys-lfu")
    cache = await make_adapter(private_server.url, strict_eviction_policy=True)

    with pytest.raises(CacheError, match="allkeys-lfu"):
        await cache.set(CacheKey(key="k"), 1)

    admin = redis.asyncio.Redis.from_url(private_server.url)
    assert [key async for key in admin.scan_iter(match=f"{key_prefix}*")] == []
    await admin.aclose()


async def test_a_volatile_policy_is_accepted_silently(
    make_adapter: MakeAdapter, private_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    await _set_policy(private_server, "volatile-lru")
    cache = await make_adapter(private_server.url, strict_eviction_policy=True)

    with caplog.at_level(logging.WARNING, logger="rediscache"):
        await cache.set(CacheKey(key="k"), 1)

    assert not [r for r in caplog.records if r.name == "rediscache"]
