"""The adapter runs as a Redis ACL user limited to its prefix's keys and the few commands it sends."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import redis.asyncio
from redis.exceptions import NoPermissionError
from support.factories import MakeAdapter
from support.redis_servers import RedisServer

from rediscache import CacheKey
from rediscache.adapters.redis import ACL_COMMANDS

# CONFIG is left out on purpose: the maxmemory-policy check must tolerate servers that forbid it.
COMMANDS = [f"+{command}" for command in ACL_COMMANDS]


async def test_a_user_restricted_to_the_prefix_can_use_every_operation(
    make_adapter: MakeAdapter, private_server: RedisServer, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    admin = redis.asyncio.Redis.from_url(private_server.url)
    await admin.execute_command(
        "ACL",
        "SETUSER",
        "cacheuser",
        "on",
        ">pw",
        "resetkeys",
        f"~{key_prefix}*",
        "resetchannels",
        f"&{key_prefix}*",
        "-@all",
        *COMMANDS,
    )
    await admin.set("outside", "secret")
    await admin.aclose()
    url = private_server.url.replace("redis://", "redis://cacheuser:pw@")
    cache = await make_adapter(url)

    with caplog.at_level(logging.INFO, logger="rediscache"):
        await cache.set(CacheKey(key="a", namespace="n", tags=["t"]), 1, ttl=timedelta(seconds=30))
    await cache.set_many([(CacheKey(key=f"b{i}", tags=["t"]), i) for i in range(3)])
    entry = await cache.get(CacheKey(key="a", namespace="n"))
    assert entry is not None and entry.value == 1
    assert await cache.exists(CacheKey(key="n:a"))
    assert [e.value if e else None for e in await cache.get_many([CacheKey(key="b0"), CacheKey(key="x")])] == [0, None]
    assert await cache.delete_by_pattern("b?") == 3
    assert await cache.delete_by_namespace("n") == 1
    await cache.set(CacheKey(key="c", tags=["t"]), 2)
    assert await cache.delete_by_tags(["t"]) == 1
    assert await cache.cleanup_expired() == 0
    assert (await cache.get_stats()).total_hits == 2
    await cache.clear()
    assert "maxmemory-policy" in caplog.text  # it said it could not check, and went on

    limited = redis.asyncio.Redis.from_url(url)
    with pytest.raises(NoPermissionError):
        await limited.execute_command("EXISTS", "outside")
    await limited.aclose()
