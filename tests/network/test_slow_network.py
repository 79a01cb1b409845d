"""A slow network makes calls slower, never failing, and never drains the pool.

The contract's condition: round trips under half of ``socket_timeout`` and under a fifth of
``connect_timeout``. Here each round trip gains 0.4 x ``socket_timeout`` (0.2 s with the defaults),
which is also under 0.2 x ``connect_timeout`` (0.3 s). New connections' handshakes go through the
same delay (redis-py 8 needs 3 round trips to open one), so a connection costs ~0.6 s to open.
"""

from __future__ import annotations

import asyncio
from typing import Any

from support.factories import MakeAdapter
from support.faults import FaultProxy

from rediscache import CacheKey, RedisCacheAdapter

from ._settings import CONNECT_TIMEOUT, HANG_GUARD, MAX_CONNECTIONS, SOCKET_TIMEOUT, TIMEOUTS

ROUND_TRIP = 0.4 * SOCKET_TIMEOUT
assert ROUND_TRIP < 0.2 * CONNECT_TIMEOUT  # the other half of the contract's condition


async def _burst(cache: RedisCacheAdapter, reads: list[CacheKey], writes: list[CacheKey]) -> list[Any]:
    """Gets of ``reads`` and sets of ``writes`` (value: the key's name), all at once, interleaved."""
    calls = []
    for read, write in zip(reads, writes, strict=True):
        calls += [cache.get(read), cache.set(write, write.key)]
    return list(await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), HANG_GUARD))


def _failures(results: list[Any]) -> list[BaseException]:
    return [result for result in results if isinstance(result, BaseException)]


async def test_with_the_default_settings_a_slow_network_slows_bursts_on_fresh_connections_without_failing(
    make_adapter: MakeAdapter, fault_proxy: FaultProxy
) -> None:
    cache = await make_adapter(fault_proxy.url, **TIMEOUTS, max_connections=MAX_CONNECTIONS)
    reads = [CacheKey(key=f"r{i}") for i in range(MAX_CONNECTIONS)]
    # Written before the network slows down; this also does the adapter's first-use checks and
    # leaves it one open connection, so the burst below needs 49 new ones.
    await cache.set_many([(key, key.key) for key in reads])
    fault_proxy.set_delay(round_trip=ROUND_TRIP)

    # As many calls as the pool holds: every call gets a connection at once, 49 of them a fresh
    # one whose handshake is slow too.
    first = await _burst(cache, reads[: MAX_CONNECTIONS // 2], [CacheKey(key=f"w{i}") for i in range(25)])
    # Twice as many calls as the pool holds, on the connections the first burst opened: half of
    # them queue for one (two round trips, well inside operation_timeout).
    second = await _burst(cache, reads, [CacheKey(key=f"w{i}") for i in range(25, 25 + MAX_CONNECTIONS)])

    assert _failures(first) == []
    assert _failures(second) == []
    assert [entry.value for entry in first[0::2]] == [key.key for key in reads[:25]]
    assert [entry.value for entry in second[0::2]] == [key.key for key in reads]
    # No connection was given up on (a handshake or an attempt timing out) and replaced.
    assert fault_proxy.connections_opened <= MAX_CONNECTIONS


async def test_a_slow_network_slows_a_burst_larger_than_a_small_cold_pool_without_failing_or_draining_it(
    make_adapter: MakeAdapter, fault_proxy: FaultProxy
) -> None:
    pool = 10
    # 100 calls on 10 connections queue for ~10 round trips (2 s), more than the default 1 s call
    # budget: the budget is widened so that what is tested is the slow attempts and handshakes
    # (socket_timeout and connect_timeout at their defaults), not the queue's length.
    cache = await make_adapter(fault_proxy.url, **{**TIMEOUTS, "operation_timeout": HANG_GUARD}, max_connections=pool)
    fault_proxy.set_delay(round_trip=ROUND_TRIP)  # before first use: start-up checks and handshakes are slow

    reads, writes = [CacheKey(key=f"r{i}") for i in range(50)], [CacheKey(key=f"w{i}") for i in range(50)]
    results = await _burst(cache, reads, writes)

    assert _failures(results) == []
    assert results == [None] * 100  # misses and sets
    assert fault_proxy.connections_opened <= pool
    # Afterwards, at full speed, the pool still has all its connections: a burst of 5x the pool
    # gets every value just written.
    fault_proxy.set_delay(round_trip=0.0)
    entries = await asyncio.wait_for(asyncio.gather(*(cache.get(CacheKey(key=f"w{i}")) for i in range(50))), HANG_GUARD)
    assert [entry.value if entry else None for entry in entries] == [f"w{i}" for i in range(50)]
    assert fault_proxy.connections_opened <= pool


async def test_callers_giving_up_mid_handshake_on_a_slow_network_leave_the_pool_whole(
    make_adapter: MakeAdapter, fault_proxy: FaultProxy
) -> None:
    pool = 5
    cache = await make_adapter(fault_proxy.url, **TIMEOUTS, max_connections=pool)
    await cache.set(CacheKey(key="k"), "v")
    fault_proxy.set_delay(round_trip=ROUND_TRIP)

    # Callers with deadlines of their own, shorter than a handshake (3 round trips): they are
    # cancelled while connections are being opened for them, or while queued for one.
    abandoned = await asyncio.gather(
        *(asyncio.wait_for(cache.get(CacheKey(key="k")), ROUND_TRIP * 1.5) for _ in range(4 * pool)),
        return_exceptions=True,
    )
    assert sum(isinstance(result, TimeoutError) for result in abandoned) >= 3 * pool  # they did give up

    # Every slot still works: as many calls as the pool holds are all in flight at once
    # (half a round trip in, each has sent a request, a command or a handshake, and waits).
    calls = asyncio.gather(*(cache.get(CacheKey(key="k")) for _ in range(pool)))
    await asyncio.sleep(ROUND_TRIP / 2)
    in_flight = fault_proxy.busy_connections
    entries = await asyncio.wait_for(calls, HANG_GUARD)

    assert in_flight == pool
    assert [entry.value if entry else None for entry in entries] == ["v"] * pool
