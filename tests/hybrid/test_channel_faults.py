"""An instance that loses its invalidation channel stops trusting its L1, and resumes by itself."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio
from support.redis_servers import RedisServer

from rediscache import CacheKey, HybridCacheAdapter, RedisCacheAdapter

BOUND = 5.0


async def _until(condition: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Poll ``condition`` until it holds; fail after BOUND seconds."""
    deadline = asyncio.get_running_loop().time() + BOUND
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)


async def _served_from_l1(cache: HybridCacheAdapter, key: CacheKey) -> bool:
    before = (await cache.get_stats()).model_extra["l1_hits"]
    await cache.get(key)
    return bool((await cache.get_stats()).model_extra["l1_hits"] > before)


async def _kill_pubsub_clients(url: str) -> int:
    admin = redis.asyncio.Redis.from_url(url)
    try:
        return int(await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub"))
    finally:
        await admin.aclose()


async def test_a_killed_channel_makes_the_instance_bypass_l1_and_miss_no_change(
    private_server: RedisServer, key_prefix: str
) -> None:
    key = CacheKey(key="k")
    async with (
        HybridCacheAdapter(private_server.url, key_prefix=key_prefix) as cache,
        RedisCacheAdapter(private_server.url, key_prefix=key_prefix, publish_invalidations=False) as silent,
    ):
        assert await cache.wait_until_coherent()
        await cache.set(key, "old")
        await cache.get(key)
        assert await _served_from_l1(cache, key)

        assert await _kill_pubsub_clients(private_server.url) == 1
        await _until(lambda: not cache.l1_trusted, "the instance notices the lost channel")
        # A change whose message nobody could hear (here: not even sent).
        await silent.set(key, "new")

        entry = await cache.get(key)
        assert entry is not None and entry.value == "new"


async def test_after_a_killed_channel_the_instance_resubscribes_and_uses_l1_again(
    private_server: RedisServer, key_prefix: str
) -> None:
    key = CacheKey(key="k")
    async with HybridCacheAdapter(private_server.url, key_prefix=key_prefix) as cache:
        assert await cache.wait_until_coherent()
        await cache.set(key, "v")
        await _kill_pubsub_clients(private_server.url)

        await _until(lambda: cache.l1_trusted, "the channel is back")
        await cache.get(key)
        await _until(lambda: _served_from_l1(cache, key), "reads are served from L1 again")


async def test_an_l1_copy_older_than_the_resubscription_is_never_served(
    private_server: RedisServer, key_prefix: str
) -> None:
    key = CacheKey(key="k")
    async with (
        HybridCacheAdapter(private_server.url, key_prefix=key_prefix) as cache,
        RedisCacheAdapter(private_server.url, key_prefix=key_prefix, publish_invalidations=False) as silent,
    ):
        assert await cache.wait_until_coherent()
        await cache.set(key, "old")
        await cache.get(key)
        await _kill_pubsub_clients(private_server.url)
        await silent.set(key, "new")  # while the channel may be down: its message is never heard

        await _until(lambda: cache.l1_trusted, "the channel is back")

        entry = await cache.get(key)
        assert entry is not None and entry.value == "new"


async def test_a_redis_restart_is_survived_with_no_stale_read(private_server: RedisServer, key_prefix: str) -> None:
    key = CacheKey(key="k")
    async with HybridCacheAdapter(private_server.url, key_prefix=key_prefix) as cache:
        assert await cache.wait_until_coherent()
        await cache.set(key, "before restart")
        await cache.get(key)

        private_server.stop()
        await _until(lambda: not cache.l1_trusted, "the instance notices the restart")
        private_server.start()  # empty: the entry is gone

        assert await cache.get(key) is None
        await _until(lambda: cache.l1_trusted, "the channel is back after the restart")
        await cache.set(key, "after restart")
        entry = await cache.get(key)
        assert entry is not None and entry.value == "after restart"


async def test_a_frozen_server_makes_the_instance_stop_trusting_l1(
    private_server: RedisServer, key_prefix: str
) -> None:
    async with HybridCacheAdapter(private_server.url, key_prefix=key_prefix, channel_check_interval=0.1) as cache:
        assert await cache.wait_until_coherent()
        assert private_server.process is not None
        os.kill(private_server.process.pid, signal.SIGSTOP)
        try:
            await _until(lambda: not cache.l1_trusted, "the unanswered ping is noticed")
        finally:
            os.kill(private_server.process.pid, signal.SIGCONT)
        await _until(lambda: cache.l1_trusted, "the channel is back once the server answers")


async def test_l1_ttl_bounds_how_long_a_copy_is_served_without_asking_redis(
    redis_server: RedisServer, redis_client: Any, key_prefix: str
) -> None:
    from datetime import timedelta

    key = CacheKey(key="k")
    async with (
        HybridCacheAdapter(redis_server.url, key_prefix=key_prefix, l1_ttl=timedelta(milliseconds=100)) as cache,
        RedisCacheAdapter(redis_server.url, key_prefix=key_prefix, publish_invalidations=False) as silent,
    ):
        assert await cache.wait_until_coherent()
        await cache.set(key, "old")
        await cache.get(key)
        await silent.set(key, "new")  # a lost message, as far as the L1 can tell

        await _until(lambda: _value_is(cache, key, "new"), "the L1 copy's l1_ttl runs out")


async def _value_is(cache: HybridCacheAdapter, key: CacheKey, value: object) -> bool:
    entry = await cache.get(key)
    return entry is not None and entry.value == value
