"""Reads never write (CONTRACT.md "Redis", issue 10 "Done when"): ``get``, ``get_many`` and
``exists`` are plain read commands. What the server ran is counted with ``INFO commandstats``, and
what it appended to its AOF with ``INFO persistence``; the only writes of a read workload are the
batched flushes of its accounting, one script call per shard read.

``INFO commandstats`` also counts the commands a script runs, so the flush is kept out of the
counted window (a flush interval of an hour), and then run alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
import redis.asyncio
from support.factories import MakeAdapter
from support.redis_servers import RedisServer

from rediscache import CacheKey, RedisCacheAdapter

SHARDS = 4  # several shards on one server, so that "one flush call per shard" means something
CACHED = 200
READ = 250  # keys read: the first CACHED are hits, the rest misses
GETS = 1000
GET_MANYS = 200
GET_MANY_SIZE = 50
SCRIPT_COMMANDS = {"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"}


def _key(i: int) -> CacheKey:
    return CacheKey(key=f"k{i}")


@pytest_asyncio.fixture
async def admin(private_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(private_server.url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest_asyncio.fixture
async def cache(make_adapter: MakeAdapter, private_server: RedisServer) -> RedisCacheAdapter:
    """A cache holding CACHED entries, with no background flush (a test flushes when it means to)."""
    adapter = await make_adapter(private_server.url, shards=SHARDS, flush_interval=3600)
    await adapter.set_many([(_key(i), {"n": i, "tags": ["x", "y"]}) for i in range(CACHED)])
    return adapter


async def _read_workload(cache: RedisCacheAdapter) -> set[int]:
    """GETS gets and GET_MANYS get_many of GET_MANY_SIZE keys, hits and misses; returns the shards read."""
    read: list[CacheKey] = []
    for i in range(GETS):
        key = _key(i % READ)
        await cache.get(key)
        read.append(key)
    for i in range(GET_MANYS):
        keys = [_key((i * GET_MANY_SIZE + j) % READ) for j in range(GET_MANY_SIZE)]
        await cache.get_many(keys)
        read += keys
    return {cache.layout.shard_of(key.full_key.encode()).number for key in read}


async def _calls(admin: redis.asyncio.Redis) -> dict[str, int]:
    stats = await admin.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


async def _writing(admin: redis.asyncio.Redis, commands: set[str]) -> set[str]:
    """Those of ``commands`` (``config|resetstat`` style names) that Redis itself flags as writes."""
    info: dict[str, Any] = await admin.execute_command("COMMAND", "INFO", *commands)
    return {name for name, spec in info.items() if "write" in spec["flags"]}


async def test_gets_and_get_manys_run_no_script_and_no_write_command(
    cache: RedisCacheAdapter, admin: redis.asyncio.Redis
) -> None:
    await admin.config_resetstat()

    await _read_workload(cache)

    calls = await _calls(admin)
    assert calls.get("mget", 0) >= GETS  # the reads did reach the server
    assert SCRIPT_COMMANDS & set(calls) == set(), calls
    assert await _writing(admin, set(calls)) == set(), calls
    assert await _writing(admin, {"set", "mget"}) == {"set"}  # and the check does see writes


async def test_gets_and_get_manys_are_one_mget_per_get_and_per_shard_of_a_get_many(
    cache: RedisCacheAdapter, admin: redis.asyncio.Redis
) -> None:
    expected = GETS
    for i in range(GET_MANYS):
        keys = [_key((i * GET_MANY_SIZE + j) % READ) for j in range(GET_MANY_SIZE)]
        expected += len({cache.layout.shard_of(key.full_key.encode()).number for key in keys})
    await admin.config_resetstat()

    await _read_workload(cache)

    calls = await _calls(admin)
    calls.pop("config|resetstat", None)
    assert calls == {"mget": expected}


async def test_one_flush_after_the_reads_is_one_script_call_per_shard_read(
    cache: RedisCacheAdapter, admin: redis.asyncio.Redis
) -> None:
    shards_read = await _read_workload(cache)
    before = await _calls(admin)

    await cache.flush()

    after = await _calls(admin)
    assert len(shards_read) == SHARDS
    assert after.get("evalsha", 0) - before.get("evalsha", 0) == len(shards_read)
    assert after.get("eval", 0) == before.get("eval", 0)


async def _aof_size(admin: redis.asyncio.Redis) -> int:
    return int((await admin.info("persistence"))["aof_current_size"])


async def _enable_aof(admin: redis.asyncio.Redis) -> None:
    # Turning the AOF on starts a rewrite in the background; sizes mean nothing until it is done.
    await admin.config_set("appendonly", "yes")
    for _ in range(500):  # 5 s at most; it takes a few tens of ms on an empty server
        info = await admin.info("persistence")
        if info["aof_enabled"] and not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the AOF rewrite did not finish: {info}")


async def test_reads_append_nothing_to_the_aof(
    make_adapter: MakeAdapter, private_server: RedisServer, admin: redis.asyncio.Redis
) -> None:
    await _enable_aof(admin)
    cache = await make_adapter(private_server.url, shards=SHARDS, flush_interval=3600)
    keys = [_key(i) for i in range(CACHED)]
    await cache.set_many([(key, i) for i, key in enumerate(keys)])
    before = await _aof_size(admin)

    hits = [await cache.get(keys[i % CACHED]) for i in range(GETS)]
    many = await cache.get_many(keys)
    misses = [await cache.get(_key(CACHED + i)) for i in range(100)]
    found = [await cache.exists(key) for key in keys]

    assert await _aof_size(admin) == before
    assert None not in hits and None not in many and misses == [None] * 100 and all(found)
    # The measurement is live: the flush of that accounting does reach the AOF.
    await cache.flush()
    assert await _aof_size(admin) > before
