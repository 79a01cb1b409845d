"""Every change is announced by the script that made it, naming the keys: on Redis 7+ on its shard's
sharded channel (SPUBLISH), on older servers (or when told) on the cache's one classic channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import pytest_asyncio
import redis.asyncio
from support.redis_servers import RedisServer

from rediscache import CacheKey, RedisCacheAdapter
from rediscache.redis.layout import Layout


async def _listen(redis_server: RedisServer, key_prefix: str, *, sharded: bool) -> Any:
    client = redis.asyncio.Redis.from_url(redis_server.url)
    pubsub = client.pubsub()
    layout = Layout(key_prefix, 1)
    if sharded:
        await pubsub.ssubscribe(layout.shards[0].channel)
    else:
        await pubsub.subscribe(layout.channel)
    return client, pubsub


@pytest_asyncio.fixture
async def messages(redis_server: RedisServer, key_prefix: str) -> AsyncIterator[list[tuple[bytes, list[bytes]]]]:
    """The (origin, full_keys) messages published on this test's shard channel (the suite's servers
    are Redis 7+: sharded pub/sub)."""
    received: list[tuple[bytes, list[bytes]]] = []
    client, pubsub = await _listen(redis_server, key_prefix, sharded=True)

    async def listen() -> None:
        async for message in pubsub.listen():
            if message["type"] in ("message", "smessage"):
                origin, keys = msgpack.unpackb(message["data"], raw=True)
                received.append((origin, keys))

    task = asyncio.create_task(listen())
    await asyncio.sleep(0.05)
    yield received
    task.cancel()
    await pubsub.aclose()
    await client.aclose()


async def _settled(received: list[Any], count: int) -> None:
    for _ in range(200):
        if len(received) >= count:
            return
        await asyncio.sleep(0.01)


async def test_writes_and_invalidations_announce_the_keys_they_changed(
    cache: RedisCacheAdapter, messages: list[tuple[bytes, list[bytes]]]
) -> None:
    await cache.set(CacheKey(key="a", tags=["t"]), 1)
    await cache.set(CacheKey(key="b", tags=["t"]), 2)
    await cache.delete(CacheKey(key="a"))
    await cache.delete_by_tags(["t"])
    await cache.set(CacheKey(key="c", namespace="n"), 3)
    await cache.delete_by_namespace("n")

    await _settled(messages, 6)
    assert [keys for _, keys in messages] == [[b"a"], [b"b"], [b"a"], [b"b"], [b"n:c"], [b"n:c"]]
    assert {origin for origin, _ in messages} == {cache.origin}


async def test_an_invalidation_that_finds_nothing_announces_nothing(
    cache: RedisCacheAdapter, messages: list[tuple[bytes, list[bytes]]]
) -> None:
    assert await cache.delete_by_tags(["nothing"]) == 0
    await cache.set(CacheKey(key="marker"), 0)

    await _settled(messages, 1)
    assert [keys for _, keys in messages] == [[b"marker"]]


async def test_a_silent_adapter_announces_nothing(
    make_adapter: Any, redis_server: RedisServer, redis_client: Any, messages: list[tuple[bytes, list[bytes]]]
) -> None:
    silent = await make_adapter(redis_server.url, publish_invalidations=False)
    loud = await make_adapter(redis_server.url)
    await silent.set(CacheKey(key="quiet"), 1)
    await loud.set(CacheKey(key="marker"), 0)

    await _settled(messages, 1)
    assert [keys for _, keys in messages] == [[b"marker"]]


async def test_classic_pub_sub_when_told_announces_on_the_caches_one_channel(
    make_adapter: Any, redis_server: RedisServer, redis_client: Any, key_prefix: str
) -> None:
    client, pubsub = await _listen(redis_server, key_prefix, sharded=False)
    try:
        cache = await make_adapter(redis_server.url, sharded_pubsub=False)
        await cache.set(CacheKey(key="a"), 1)
        message = None
        for _ in range(100):
            message = await pubsub.get_message(timeout=0.05)
            if message is not None and message["type"] == "message":
                break
    finally:
        await pubsub.aclose()
        await client.aclose()

    assert message is not None and message["type"] == "message"
    assert msgpack.unpackb(message["data"], raw=True) == [cache.origin, [b"a"]]
