"""Payloads above compression_threshold are stored compressed, and read back exactly."""

from __future__ import annotations

from typing import Any

from support.factories import MakeAdapter
from support.redis_servers import RedisServer

from rediscache import CacheKey
from rediscache.redis.layout import Layout


async def test_a_large_value_is_stored_compressed_and_round_trips(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: Any, key_prefix: str
) -> None:
    cache = await make_adapter(redis_server.url, compression_threshold=256)
    value = {"text": "lorem ipsum " * 500, "n": list(range(50))}
    await cache.set(CacheKey(key="big"), value)
    await cache.set(CacheKey(key="small"), {"a": 1})

    entry_key = Layout(key_prefix, 1).shards[0].entry_key
    big = (await redis_client.get(entry_key(b"big")))[32:]  # after the entry header
    small = (await redis_client.get(entry_key(b"small")))[32:]

    assert len(big) < 1000 and big[:1] == b"\x02"  # zlib'd msgpack
    assert small[:1] == b"\x01"  # under the threshold: plain msgpack
    entry = await cache.get(CacheKey(key="big"))
    assert entry is not None and entry.value == value
    assert (await cache.get_stats()).memory_usage_bytes == len(big) + len(small)
