"""Fail-safe: with ``fail_safe_max_age``, a read that Redis cannot answer is served from the adapter's
in-process copy (``get_stale``), if that copy is young enough; a healthy Redis is always believed.

The service finds ``get_stale`` through the port's ``SupportsStaleReads`` protocol. The hybrid adapter
provides it (``test_hybrid_fail_safe.py``); these tests use a stand-in: a ``RedisCacheAdapter`` that
keeps the last entry it wrote or read for each key, as the hybrid's L1 does. Redis is real.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from support.redis_servers import RedisServer

from rediscache import CacheEntry, CacheKey, RedisCacheAdapter
from rediscache.kit import CacheService, CircuitBreaker

from ._plain_adapter import PlainAdapter
from .conftest import FakeClock


class RedisWithLocalCopies(RedisCacheAdapter):
    """The hybrid's fail-safe API on the Redis adapter: ``get_stale`` answers from the last local copy."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.copies: dict[str, tuple[float, CacheEntry]] = {}

    async def get(self, key: CacheKey) -> CacheEntry | None:
        entry = await super().get(key)
        if entry is not None:
            self.copies[key.full_key] = (time.monotonic(), entry)
        return entry

    async def set(
        self, key: CacheKey, value: Any, ttl: timedelta | None = None, *, stale_ttl: timedelta | None = None
    ) -> None:
        await super().set(key, value, ttl, stale_ttl=stale_ttl)
        self.copies[key.full_key] = (time.monotonic(), CacheEntry(key=key, value=value))

    async def get_stale(self, key: CacheKey, max_age: timedelta | None = None) -> CacheEntry | None:
        stored = self.copies.get(key.full_key)
        if stored is None or (max_age is not None and time.monotonic() - stored[0] > max_age.total_seconds()):
            return None
        return stored[1]


@pytest_asyncio.fixture
async def copies(private_server: RedisServer, key_prefix: str) -> AsyncIterator[RedisWithLocalCopies]:
    adapter = RedisWithLocalCopies(private_server.url, key_prefix=key_prefix, retries=0)
    yield adapter
    await adapter.close()


def fail_safe_service(
    adapter: RedisCacheAdapter, max_age: timedelta = timedelta(minutes=1), **options: Any
) -> CacheService:
    options.setdefault("circuit_breaker", False)
    return CacheService(adapter, fail_safe_max_age=max_age, **options)


async def test_the_last_local_copy_is_served_while_redis_is_down(private_server: RedisServer, key_prefix: str) -> None:
    adapter = RedisWithLocalCopies(private_server.url, key_prefix=key_prefix, retries=0)
    service = fail_safe_service(adapter)
    try:
        await service.set("k", "last known")
        private_server.stop()

        assert await service.get("k") == "last known"
        assert service.health().stale_served == 1
    finally:
        await adapter.close()


async def test_get_or_set_serves_the_copy_instead_of_running_the_factory(
    copies: RedisWithLocalCopies, private_server: RedisServer
) -> None:
    service = fail_safe_service(copies)
    await service.set("k", "last known")
    private_server.stop()

    assert await service.get_or_set("k", lambda: "fresh") == "last known"


async def test_a_copy_older_than_the_limit_is_not_served(
    copies: RedisWithLocalCopies, private_server: RedisServer
) -> None:
    service = fail_safe_service(copies, max_age=timedelta(milliseconds=10))
    await service.set("k", "old")
    await asyncio.sleep(0.03)
    private_server.stop()

    assert await service.get("k") is None
    assert service.health().stale_served == 0


async def test_a_miss_from_a_healthy_redis_is_never_answered_from_the_copy(
    copies: RedisWithLocalCopies, private_server: RedisServer, key_prefix: str
) -> None:
    service = fail_safe_service(copies)
    await service.set("k", "invalidated elsewhere")
    other = RedisCacheAdapter(private_server.url, key_prefix=key_prefix)
    await other.delete(CacheKey(key="k"))
    await other.close()

    assert await service.get("k") is None


async def test_the_copy_is_served_without_calling_redis_while_the_circuit_is_open(
    copies: RedisWithLocalCopies, private_server: RedisServer, clock: FakeClock
) -> None:
    service = fail_safe_service(copies, circuit_breaker=CircuitBreaker(1, timedelta(seconds=5), clock=clock))
    await service.set("k", "last known")
    private_server.stop()
    await service.get("k")  # opens the circuit

    assert await service.get("k") == "last known"
    health = service.health()
    assert (health.short_circuited, health.failed_reads, health.stale_served) == (1, 1, 2)


async def test_a_failing_copy_is_a_miss_not_an_error(copies: RedisWithLocalCopies, private_server: RedisServer) -> None:
    from rediscache import CacheError

    async def broken(key: CacheKey, max_age: timedelta | None = None) -> Any:
        raise CacheError("no copy either")

    copies.get_stale = broken  # type: ignore[method-assign]
    service = fail_safe_service(copies)
    private_server.stop()

    assert await service.get("k") is None


def test_fail_safe_needs_an_adapter_that_keeps_copies() -> None:
    with pytest.raises(ValueError, match="SupportsStaleReads"):
        CacheService(PlainAdapter(), fail_safe_max_age=timedelta(minutes=1))
