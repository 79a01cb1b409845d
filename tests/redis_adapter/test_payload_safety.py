"""Values that can't be written write nothing; stored data that can't be trusted reads as a logged miss."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from support.factories import MakeAdapter
from support.redis_servers import RedisServer

from rediscache import CacheKey, RedisCacheAdapter, SerializationError
from rediscache.redis.layout import Layout

SECRET = "test-secret"


class Unpicklable:
    def __reduce__(self) -> Any:
        raise TypeError("no pickling")


def _entry_key(prefix: str, full_key: str) -> bytes:
    return Layout(prefix, 1).shards[0].entry_key(full_key.encode())


HEADER = 32  # the entry string's header (lua/_lib.lua), before the payload


async def _payload(client: Any, entry_key: bytes) -> bytes:
    return bytes((await client.get(entry_key))[HEADER:])


async def _replace_payload(client: Any, entry_key: bytes, payload: bytes) -> None:
    header = (await client.get(entry_key))[:HEADER]
    await client.set(entry_key, header + payload, keepttl=True)


async def _keys(client: Any, prefix: str) -> list[bytes]:
    return sorted([key async for key in client.scan_iter(match=f"{prefix}*")])


async def test_an_unserializable_value_raises_and_writes_nothing(
    cache: RedisCacheAdapter, redis_client: Any, key_prefix: str
) -> None:
    with pytest.raises(SerializationError, match="object"):
        await cache.set(CacheKey(key="k", tags=["t"], namespace="n"), {"bad": object()})

    assert await _keys(redis_client, key_prefix) == []


async def test_an_unserializable_value_leaves_the_previous_entry_untouched(
    cache: RedisCacheAdapter, redis_client: Any
) -> None:
    await cache.set(CacheKey(key="k", tags=["t"]), "old")

    with pytest.raises(SerializationError):
        await cache.set(CacheKey(key="k", tags=["u"]), {1, object()})

    entry = await cache.get(CacheKey(key="k"))
    assert entry is not None and entry.value == "old" and entry.key.tags == ["t"]


async def test_one_bad_value_in_set_many_writes_none_of_the_batch(
    cache: RedisCacheAdapter, redis_client: Any, key_prefix: str
) -> None:
    with pytest.raises(SerializationError):
        await cache.set_many([(CacheKey(key="a"), 1), (CacheKey(key="b"), object())])

    assert await _keys(redis_client, key_prefix) == []


async def test_pickle_needs_a_secret(redis_server: RedisServer) -> None:
    with pytest.raises(ValueError, match="secret"):
        RedisCacheAdapter(redis_server.url, serializer="pickle")


async def test_signed_pickle_round_trips_values_msgpack_cannot_carry(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: Any
) -> None:
    cache = await make_adapter(redis_server.url, serializer="pickle", secret=SECRET)
    await cache.set(CacheKey(key="k"), ValueError("kept"))

    entry = await cache.get(CacheKey(key="k"))

    assert entry is not None and isinstance(entry.value, ValueError) and entry.value.args == ("kept",)


async def test_an_unpicklable_value_raises_and_writes_nothing(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: Any, key_prefix: str
) -> None:
    cache = await make_adapter(redis_server.url, serializer="pickle", secret=SECRET)

    with pytest.raises(SerializationError):
        await cache.set(CacheKey(key="k"), Unpicklable())

    assert await _keys(redis_client, key_prefix) == []


async def test_a_tampered_pickle_is_never_loaded_reads_as_a_miss_is_removed_and_logged(
    make_adapter: MakeAdapter,
    redis_server: RedisServer,
    redis_client: Any,
    key_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = await make_adapter(redis_server.url, serializer="pickle", secret=SECRET)
    await cache.set(CacheKey(key="k", tags=["t"]), {"role": "user"})
    entry_key = _entry_key(key_prefix, "k")
    payload = bytearray(await _payload(redis_client, entry_key))
    payload[-3] ^= 0x01
    await _replace_payload(redis_client, entry_key, bytes(payload))

    with caplog.at_level(logging.WARNING, logger="rediscache"):
        assert await cache.get(CacheKey(key="k")) is None

    assert "k" in caplog.text and "discarding" in caplog.text
    assert await redis_client.exists(entry_key) == 0
    assert await cache.delete_by_tags(["t"]) == 0
    stats = await cache.get_stats()
    assert (stats.total_hits, stats.total_misses, stats.total_entries) == (0, 1, 0)


async def test_a_payload_signed_for_another_key_is_refused(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: Any, key_prefix: str
) -> None:
    cache = await make_adapter(redis_server.url, serializer="pickle", secret=SECRET)
    await cache.set(CacheKey(key="admin"), {"role": "admin"})
    await cache.set(CacheKey(key="guest"), {"role": "guest"})
    stolen = await _payload(redis_client, _entry_key(key_prefix, "admin"))
    await _replace_payload(redis_client, _entry_key(key_prefix, "guest"), stolen)

    assert await cache.get(CacheKey(key="guest")) is None


async def test_a_pickle_written_with_another_secret_reads_as_a_miss(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: Any
) -> None:
    writer = await make_adapter(redis_server.url, serializer="pickle", secret="old-secret")
    reader = await make_adapter(redis_server.url, serializer="pickle", secret="new-secret")
    await writer.set(CacheKey(key="k"), 1)

    assert await reader.get(CacheKey(key="k")) is None


async def test_rotated_secrets_still_verify_entries_signed_with_the_old_one(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: Any
) -> None:
    old = await make_adapter(redis_server.url, serializer="pickle", secret="old-secret")
    rotated = await make_adapter(redis_server.url, serializer="pickle", secret=["new-secret", "old-secret"])
    await old.set(CacheKey(key="k"), 1)

    entry = await rotated.get(CacheKey(key="k"))

    assert entry is not None and entry.value == 1


async def test_an_entry_of_an_unknown_format_version_reads_as_a_miss(
    cache: RedisCacheAdapter, redis_client: Any, key_prefix: str
) -> None:
    await cache.set(CacheKey(key="k"), 1)
    await _replace_payload(redis_client, _entry_key(key_prefix, "k"), b"\x7fa future format")

    assert await cache.get(CacheKey(key="k")) is None


async def test_corrupt_msgpack_reads_as_a_miss(cache: RedisCacheAdapter, redis_client: Any, key_prefix: str) -> None:
    await cache.set(CacheKey(key="k"), [1, 2, 3])
    entry_key = _entry_key(key_prefix, "k")
    payload = await _payload(redis_client, entry_key)
    await _replace_payload(redis_client, entry_key, payload[:-1])

    assert await cache.get(CacheKey(key="k")) is None
    assert (await cache.get_many([CacheKey(key="k")])) == [None]
