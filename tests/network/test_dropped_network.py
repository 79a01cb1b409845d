"""A network that stops delivering (connections stay open, nothing answers) fails every call with a
CacheConnectionError within its budget; when it comes back, the adapter serves at once.

The proxy holds the bytes sent meanwhile and delivers them on restore, as TCP would: an adapter
that kept a connection whose request had timed out would then read a stale answer as the next
one's, so the recovery test checks every value, not only that calls succeed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from support.factories import MakeAdapter
from support.faults import FaultProxy

from rediscache import CacheConnectionError, CacheKey, RedisCacheAdapter

from ._settings import CONNECT_TIMEOUT, HANG_GUARD, OPERATION_TIMEOUT, SLACK, TIMEOUTS

Outcome = tuple[str, float, BaseException | None]
# Each call's guard: twice its bound, so a call that overstays shows as a TimeoutError quickly.
CALL_GUARD = 2 * (OPERATION_TIMEOUT + CONNECT_TIMEOUT + SLACK)


async def _timed(name: str, call: Awaitable[Any]) -> Outcome:
    started = time.monotonic()
    try:
        await asyncio.wait_for(call, CALL_GUARD)
    except BaseException as exc:
        return name, time.monotonic() - started, exc
    return name, time.monotonic() - started, None


def _calls(cache: RedisCacheAdapter) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
    """One of each kind of call, as (operation name, call)."""
    key = CacheKey(key="k", namespace="ns", tags=["t"])
    return [
        ("get", lambda: cache.get(key)),
        ("exists", lambda: cache.exists(key)),
        ("set", lambda: cache.set(key, "v2")),
        ("delete", lambda: cache.delete(key)),
        ("get_many", lambda: cache.get_many([key, CacheKey(key="other")])),
        ("set_many", lambda: cache.set_many([(key, "v3")])),
        ("delete_many", lambda: cache.delete_many([key])),
        ("delete_by_tags", lambda: cache.delete_by_tags(["t"])),
        ("delete_by_namespace", lambda: cache.delete_by_namespace("ns")),
        ("delete_by_pattern", lambda: cache.delete_by_pattern("ns:*")),
        ("clear", lambda: cache.clear()),
        ("cleanup_expired", lambda: cache.cleanup_expired()),
        ("get_stats", lambda: cache.get_stats()),
    ]


async def test_a_get_on_an_open_connection_fails_within_operation_timeout_when_the_network_drops(
    make_adapter: MakeAdapter, fault_proxy: FaultProxy
) -> None:
    cache = await make_adapter(fault_proxy.url, **TIMEOUTS)
    await cache.set(CacheKey(key="k"), "v")  # first use done; one connection open and idle
    fault_proxy.drop()

    _, elapsed, error = await _timed("get", cache.get(CacheKey(key="k")))

    assert isinstance(error, CacheConnectionError), repr(error)
    assert elapsed <= OPERATION_TIMEOUT + SLACK
    assert "get" in str(error)


async def test_every_kind_of_call_fails_with_a_cache_connection_error_in_time_while_the_network_is_dropped(
    make_adapter: MakeAdapter, fault_proxy: FaultProxy
) -> None:
    cache = await make_adapter(fault_proxy.url, **TIMEOUTS)
    await cache.set(CacheKey(key="k", namespace="ns", tags=["t"]), "v")
    fault_proxy.drop()

    # All at once: one may take the open connection, the others must open one (whose handshake
    # gets no answer either), so the bound includes connect_timeout.
    outcomes = await asyncio.gather(*(_timed(name, call()) for name, call in _calls(cache)))

    wrong = [(name, repr(error)) for name, _, error in outcomes if not isinstance(error, CacheConnectionError)]
    assert wrong == []
    bound = OPERATION_TIMEOUT + CONNECT_TIMEOUT + SLACK
    slow = [(name, round(elapsed, 2)) for name, elapsed, _ in outcomes if elapsed > bound]
    assert slow == []
    unnamed = [(name, str(error)) for name, _, error in outcomes if name not in str(error)]
    assert unnamed == []


async def test_a_burst_on_a_never_used_adapter_fails_every_call_in_time_while_the_network_is_dropped(
    make_adapter: MakeAdapter, fault_proxy: FaultProxy
) -> None:
    cache = await make_adapter(fault_proxy.url, **TIMEOUTS)  # its first-use checks have not run yet
    fault_proxy.drop()

    # Every call waits for the same first-use checks: their failure must fail all of them within
    # each call's own budget, not make the callers retry the checks one after another.
    outcomes = await asyncio.gather(*(_timed("get", cache.get(CacheKey(key=f"k{i}"))) for i in range(20)))

    wrong = [repr(error) for _, _, error in outcomes if not isinstance(error, CacheConnectionError)]
    assert wrong == []
    bound = OPERATION_TIMEOUT + CONNECT_TIMEOUT + SLACK
    assert [round(elapsed, 2) for _, elapsed, _ in outcomes if elapsed > bound] == []


async def test_once_the_network_comes_back_200_concurrent_gets_succeed_within_a_second(
    make_adapter: MakeAdapter, fault_proxy: FaultProxy
) -> None:
    cache = await make_adapter(fault_proxy.url, **TIMEOUTS)
    keys = [CacheKey(key=f"k{i}") for i in range(200)]
    await cache.set_many([(key, key.key) for key in keys])
    fault_proxy.drop()
    # Calls that fail during the outage, on the open connection and on new ones, leave whatever
    # they leave in the pool; their requests are held and reach Redis on restore.
    failed = await asyncio.gather(*(_timed("get", cache.get(key)) for key in keys[:20]))
    assert all(isinstance(error, CacheConnectionError) for _, _, error in failed)

    fault_proxy.restore()
    started = time.monotonic()
    entries = await asyncio.wait_for(asyncio.gather(*(cache.get(key) for key in keys)), HANG_GUARD)
    elapsed = time.monotonic() - started

    assert [entry.value if entry else None for entry in entries] == [key.key for key in keys]
    assert elapsed <= 1.0
