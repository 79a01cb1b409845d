"""Every eviction policy is accepted: none can make an entry outlive its invalidation (the pressure
tests show it), so the policy is only explained, at INFO, never warned about."""

from __future__ import annotations

import logging

import pytest
import redis.asyncio
from support.factories import MakeAdapter
from support.redis_servers import RedisServer

from rediscache import CacheKey


async def _set_policy(server: RedisServer, policy: str) -> None:
    admin = redis.asyncio.Redis.from_url(server.url)
    await admin.config_set("maxmemory-policy", policy)
    await admin.aclose()


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random"])
async def test_an_allkeys_policy_is_explained_at_info_and_not_warned_about(
    make_adapter: MakeAdapter, private_server: RedisServer, caplog: pytest.LogCaptureFixture, policy: str
) -> None:
    await _set_policy(private_server, policy)
    cache = await make_adapter(private_server.url)

    with caplog.at_level(logging.INFO, logger="rediscache"):
        await cache.set(CacheKey(key="k"), 1)
        entry = await cache.get(CacheKey(key="k"))

    assert entry is not None and entry.value == 1
    mine = [r for r in caplog.records if r.name == "rediscache"]
    assert not [r for r in mine if r.levelno >= logging.WARNING]
    assert [r.levelno for r in mine if policy in r.getMessage()] == [logging.INFO]


@pytest.mark.parametrize("policy", ["noeviction", "volatile-lru"])
async def test_other_policies_are_accepted_silently(
    make_adapter: MakeAdapter, private_server: RedisServer, caplog: pytest.LogCaptureFixture, policy: str
) -> None:
    await _set_policy(private_server, policy)
    cache = await make_adapter(private_server.url)

    with caplog.at_level(logging.INFO, logger="rediscache"):
        await cache.set(CacheKey(key="k"), 1)

    assert not [r for r in caplog.records if r.name == "rediscache"]
