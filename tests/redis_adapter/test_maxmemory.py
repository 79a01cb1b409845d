"""A server at its ``maxmemory`` under ``noeviction``: reads keep hitting (they are plain MGETs),
the kit does not recompute what is cached, and every write fails with ``CacheError`` and writes
nothing (issue 10, "Done when"); invalidations and the maintenance cycle, which free memory, still run.

The server holds 1,000 entries with a namespace and two tags, and its limit is pinned just under
what it holds: Redis refuses a write when the memory in use exceeds ``maxmemory``, and filling up
to the limit exactly is not stable (a write's own request buffer can tip it over, and its release
bring it back).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
import redis.asyncio
from support.factories import MakeAdapter
from support.redis_servers import RedisServer

from rediscache import CacheError, CacheKey, CacheService, RedisCacheAdapter

ENTRIES = 1000
# How far under what the server holds the limit is pinned: more than the client buffers of one
# test's requests and replies, so none of them brings the server back under the limit.
MARGIN = 256 * 1024


@dataclass
class FullServer:
    cache: RedisCacheAdapter
    admin: redis.asyncio.Redis
    stored: list[CacheKey]  # every entry written before the limit was set


def _key(i: int) -> CacheKey:
    return CacheKey(key=f"k{i}", namespace=f"ns{i % 3}", tags=[f"t{i % 5}", "all"])


def _value(i: int) -> str:
    return f"{i}:" + "v" * 500


@pytest_asyncio.fixture
async def full(make_adapter: MakeAdapter, private_server: RedisServer) -> AsyncIterator[FullServer]:
    """A cache of ENTRIES entries on a server that is over its limit from now on."""
    admin = redis.asyncio.Redis.from_url(private_server.url)
    # No background flush: a test decides when (and whether) accounting is written.
    cache = await make_adapter(private_server.url, flush_interval=3600)
    stored = [_key(i) for i in range(ENTRIES)]
    await cache.set_many([(key, _value(i)) for i, key in enumerate(stored)])
    await admin.config_set("maxmemory-policy", "noeviction")
    used = (await admin.info("memory"))["used_memory"]
    await admin.config_set("maxmemory", used - MARGIN)
    try:
        yield FullServer(cache, admin, stored)
    finally:
        await admin.aclose()


def _number(key: CacheKey) -> int:
    return int(key.key[1:])


async def _digest(admin: redis.asyncio.Redis) -> bytes:
    # A hash of every key, value and TTL in the server: equal digests mean nothing was written.
    return bytes(await admin.execute_command("DEBUG", "DIGEST"))


async def test_get_hits_every_cached_entry_at_the_limit(full: FullServer) -> None:
    values = []
    for key in full.stored:
        entry = await full.cache.get(key)
        values.append(None if entry is None else entry.value)

    assert values == [_value(_number(key)) for key in full.stored]


async def test_get_many_hits_every_cached_entry_at_the_limit(full: FullServer) -> None:
    entries = await full.cache.get_many(full.stored)

    assert [None if e is None else e.value for e in entries] == [_value(_number(key)) for key in full.stored]


async def test_exists_finds_every_cached_entry_at_the_limit(full: FullServer) -> None:
    found = [await full.cache.exists(key) for key in full.stored]

    assert found.count(True) == len(full.stored)


async def test_get_or_set_does_not_call_the_factory_for_cached_keys_at_the_limit(full: FullServer) -> None:
    service = CacheService(full.cache)
    calls = 0

    def factory() -> str:
        nonlocal calls
        calls += 1
        return "recomputed"

    values = [await service.get_or_set(key, factory) for key in full.stored]

    assert calls == 0
    assert values == [_value(_number(key)) for key in full.stored]
    assert service.health().failed_reads == 0


async def test_get_or_set_of_an_uncached_key_at_the_limit_returns_the_computed_value(full: FullServer) -> None:
    # The write that follows the factory is refused; the service fails open rather than raise.
    service = CacheService(full.cache)

    value = await service.get_or_set(CacheKey(key="uncached"), lambda: "computed")

    assert value == "computed"
    assert service.health().failed_writes == 1
    assert await full.cache.get(CacheKey(key="uncached")) is None


_WRITES = {
    "a new entry": [(CacheKey(key="new", tags=["all"]), "x")],
    "an overwrite with the same namespace and tags": [(_key(1), "overwritten")],
    "an overwrite with other tags": [(CacheKey(key="k1", namespace="ns1", tags=["other"]), "overwritten")],
    "an overwrite into another namespace": [(CacheKey(key="ns1:k1"), "overwritten")],
    "a batch of new entries": [(CacheKey(key=f"new{i}"), "x" * 500) for i in range(50)],
    # The first entry's first command is a removal from the indexes, which Redis lets through at
    # the limit: after it, Redis no longer refuses the script's other writes.
    "a batch led by an overwrite with other tags": [
        (CacheKey(key="k1", namespace="ns1", tags=["other"]), "overwritten"),
        *[(CacheKey(key=f"new{i}"), "x" * 500) for i in range(50)],
    ],
}


@pytest.mark.parametrize("write", list(_WRITES))
async def test_a_write_at_the_limit_fails_with_cache_error_and_writes_nothing(full: FullServer, write: str) -> None:
    items = _WRITES[write]
    before = await _digest(full.admin)

    with pytest.raises(CacheError, match="OutOfMemoryError"):
        if len(items) == 1:
            await full.cache.set(*items[0])
        else:
            await full.cache.set_many(items)

    assert await _digest(full.admin) == before
    old = await full.cache.get(_key(1))
    assert old is not None and (old.value, old.key.tags) == (_value(1), _key(1).tags)


async def test_an_invalidation_at_the_limit_removes_exactly_its_entries(full: FullServer) -> None:
    # Invalidations free memory, so Redis lets them run; the cache must not be stuck full.
    tagged = [key for key in full.stored if "t2" in key.tags]

    removed = await full.cache.delete_by_tags(["t2"])

    assert removed == len(tagged)
    assert await full.cache.get_many(tagged) == [None] * len(tagged)
    others = [key for key in full.stored if "t2" not in key.tags]
    assert None not in await full.cache.get_many(others)


async def test_the_maintenance_cycle_runs_at_the_limit(full: FullServer) -> None:
    # The cache holds more entries than one batch, so the walk over its key index takes several
    # steps; the step that only moves the walk on must not be refused either.
    assert len(full.stored) > 500

    assert await full.cache.cleanup_expired() == 0

    assert (await full.cache.get_stats()).total_entries == len(full.stored)
