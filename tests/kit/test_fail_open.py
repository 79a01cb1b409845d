"""Fail-open: with Redis unreachable the service keeps the application working (reads miss, the factory runs,
writes and invalidations are counted as failed), the circuit breaker stops calling a server that keeps
failing, and the caller's own bugs (SerializationError, bad arguments) are raised all the same.

The server is a private redis-server that the tests stop and start again. Adapters use ``retries=0``
so a refused connection fails at once instead of after redis-py's back-off.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio
from support.redis_servers import RedisServer

from rediscache import CacheConnectionError, SerializationError
from rediscache.kit import CacheService, CircuitBreaker

from .conftest import FakeClock, MakeAdapter

MakeService = Callable[..., Awaitable[CacheService]]


@pytest.fixture
def make_service(make_adapter: MakeAdapter, private_server: RedisServer, clock: FakeClock) -> MakeService:
    """Services on the private server; their breaker (threshold 3, cool-down 5 s) runs on the fake clock."""

    async def make(**options: Any) -> CacheService:
        adapter = await make_adapter(private_server.url, retries=0, connect_timeout=1.0, socket_timeout=1.0)
        options.setdefault("circuit_breaker", CircuitBreaker(3, timedelta(seconds=5), clock=clock))
        return CacheService(adapter, **options)

    return make


async def test_reads_act_as_misses_while_redis_is_down(make_service: MakeService, private_server: RedisServer) -> None:
    service = await make_service(circuit_breaker=False)
    await service.set("k", "v")
    private_server.stop()

    assert await service.get("k") is None
    assert await service.get_entry("k") is None
    assert await service.exists("k") is False
    assert await service.get_many(["k"]) == {}
    assert service.health().failed_reads == 4


async def test_get_or_set_runs_the_factory_while_redis_is_down(
    make_service: MakeService, private_server: RedisServer
) -> None:
    service = await make_service(circuit_breaker=False)
    private_server.stop()
    calls = 0

    def factory() -> str:
        nonlocal calls
        calls += 1
        return "fresh"

    assert await service.get_or_set("k", factory) == "fresh"
    assert await service.get_or_set("k", factory) == "fresh"

    assert calls == 2
    # The read failed, so the service did not also pay for a lock and a write it expected to fail.
    health = service.health()
    assert (health.failed_reads, health.failed_locks, health.failed_writes) == (2, 0, 0)


async def test_writes_and_invalidations_are_counted_as_failed_instead_of_raising(
    make_service: MakeService, private_server: RedisServer
) -> None:
    service = await make_service(circuit_breaker=False)
    private_server.stop()

    assert await service.set("k", 1) is False
    assert await service.set_many({"a": 1}) is False
    assert await service.delete("k") is False
    assert await service.invalidate_tags(["t"]) == 0
    assert await service.invalidate_namespace("ns") == 0
    assert await service.invalidate_pattern("k*") == 0
    assert await service.clear_all() is False
    assert await service.cleanup_expired() == 0

    health = service.health()
    assert (health.failed_writes, health.failed_invalidations, health.failed_maintenance) == (3, 4, 1)
    assert health.last_error is not None and "cleanup_expired" in health.last_error


async def test_failures_are_logged_and_lost_invalidations_loudest(
    make_service: MakeService, private_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    service = await make_service(circuit_breaker=False)
    private_server.stop()

    with caplog.at_level(logging.WARNING, logger="rediscache.kit"):
        await service.set("k", 1)
        await service.invalidate_tags(["t"])

    levels = {record.levelno for record in caplog.records if record.name == "rediscache.kit"}
    assert levels == {logging.WARNING, logging.ERROR}


async def test_with_fail_open_off_failures_raise(make_service: MakeService, private_server: RedisServer) -> None:
    service = await make_service(fail_open=False, circuit_breaker=False)
    private_server.stop()

    with pytest.raises(CacheConnectionError):
        await service.get("k")
    with pytest.raises(CacheConnectionError):
        await service.invalidate_tags(["t"])
    assert service.health().failed_operations == 2


async def test_stats_raise_rather_than_report_an_empty_cache(
    make_service: MakeService, private_server: RedisServer
) -> None:
    service = await make_service()
    private_server.stop()

    with pytest.raises(CacheConnectionError):
        await service.get_stats()


async def test_a_value_the_codec_cannot_encode_is_raised_not_swallowed(make_service: MakeService) -> None:
    service = await make_service()

    with pytest.raises(SerializationError):
        await service.set("k", object())
    with pytest.raises(SerializationError):
        await service.get_or_set("k2", object)

    assert service.health().failed_operations == 0
    assert service.health().breaker_state == "closed"


async def test_a_server_error_fails_open_without_opening_the_circuit(
    make_adapter: MakeAdapter, private_server: RedisServer
) -> None:
    admin = redis.asyncio.Redis.from_url(private_server.url)
    await admin.acl_setuser("app", enabled=True, passwords=["+secret"], keys=["*"], channels=["*"], commands=["+@all"])
    adapter = await make_adapter(f"redis://app:secret@{private_server.address}/0", retries=0)
    service = CacheService(adapter)
    assert await service.set("k", 1) is True  # connects and loads the scripts
    # The server now answers every script call with NOPERM: an error reply, not an outage.
    await admin.acl_setuser("app", enabled=True, commands=["-evalsha"])
    await admin.aclose()

    for _ in range(6):
        assert await service.set("k", 2) is False

    health = service.health()
    assert health.failed_writes == 6
    assert health.breaker_state == "closed"
    assert health.last_error is not None and "NOPERM" in health.last_error.upper()


async def test_the_circuit_opens_after_repeated_failures_and_calls_stop_reaching_redis(
    make_service: MakeService, private_server: RedisServer
) -> None:
    service = await make_service()
    private_server.stop()

    for _ in range(3):
        await service.get("k")
    assert service.health().breaker_state == "open"
    for _ in range(20):
        assert await service.get_or_set("k", lambda: "fresh") == "fresh"
        await service.set("k", 1)

    health = service.health()
    assert health.failed_reads == 3  # no call after the third reached the adapter
    assert health.short_circuited == 40


async def test_while_the_circuit_is_open_fail_open_off_raises_at_once(
    make_service: MakeService, private_server: RedisServer
) -> None:
    service = await make_service(fail_open=False)
    private_server.stop()
    for _ in range(3):
        with pytest.raises(CacheConnectionError):
            await service.get("k")

    with pytest.raises(CacheConnectionError, match="circuit"):
        await service.get("k")
    assert service.health().failed_reads == 3


async def test_after_the_cool_down_a_probe_closes_the_circuit_once_redis_is_back(
    make_service: MakeService, private_server: RedisServer, clock: FakeClock
) -> None:
    service = await make_service()
    private_server.stop()
    for _ in range(3):
        await service.get("k")
    private_server.start()

    assert await service.set("k", 1) is False  # still open: not even tried
    clock.advance(5)
    assert await service.set("k", 1) is True  # the probe

    assert service.health().breaker_state == "closed"
    assert await service.get("k") == 1


async def test_a_failed_probe_keeps_the_circuit_open(
    make_service: MakeService, private_server: RedisServer, clock: FakeClock
) -> None:
    service = await make_service()
    private_server.stop()
    for _ in range(3):
        await service.get("k")
    clock.advance(5)

    await service.get("k")  # the probe, failing

    health = service.health()
    assert (health.breaker_state, health.failed_reads) == ("open", 4)


async def test_an_application_keeps_serving_while_redis_stops_and_comes_back(
    make_service: MakeService, private_server: RedisServer, clock: FakeClock
) -> None:
    # A request loop: each "request" reads through the cache; the source counts how often it is asked.
    service = await make_service()
    source_calls = 0

    async def request(n: int) -> str:
        def source() -> str:
            nonlocal source_calls
            source_calls += 1
            return f"page {n % 3}"

        value: str = await service.get_or_set(f"page:{n % 3}", source, ttl=timedelta(minutes=5))
        return value

    answers = [await request(n) for n in range(30)]
    assert source_calls == 3  # warm: three pages

    private_server.stop()  # mid-run
    answers += [await request(n) for n in range(30, 60)]
    assert source_calls == 33  # every request went to the source, none failed
    assert service.health().breaker_state == "open"

    private_server.start()  # back, empty (no persistence)
    clock.advance(5)
    answers += [await request(n) for n in range(60, 90)]

    assert answers == [f"page {n % 3}" for n in range(90)]
    assert source_calls == 36  # cached again after one miss per page
    assert service.health().breaker_state == "closed"
