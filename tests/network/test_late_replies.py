"""A retry never changes a call's answer: when a command reached Redis and ran, but its reply came
too late, the adapter either retries something that gives the same answer, or says it failed.

The proxy forwards the command at once and holds only its reply, for longer than the call's whole
budget; the client gives up and closes that connection, and the held reply is lost with it.
"""

from __future__ import annotations

import time

import redis.asyncio
from support.factories import MakeAdapter
from support.faults import FaultProxy

from rediscache import CacheConnectionError, CacheKey

from ._settings import OPERATION_TIMEOUT, SLACK, SOCKET_TIMEOUT, TIMEOUTS

LATE = 3 * OPERATION_TIMEOUT  # past every deadline of the call
assert LATE > OPERATION_TIMEOUT + SLACK > SOCKET_TIMEOUT


async def test_a_delete_whose_reply_is_lost_returns_true_or_raises_never_false_and_the_entry_is_gone(
    make_adapter: MakeAdapter, fault_proxy: FaultProxy, redis_client: redis.asyncio.Redis, key_prefix: str
) -> None:
    cache = await make_adapter(fault_proxy.url, **TIMEOUTS)
    key = CacheKey(key="victim-of-a-late-reply")
    await cache.set(key, "v")
    # The next command naming the entry is the delete's own (a script or commands: whatever it sends).
    late = fault_proxy.delay_reply(LATE, contains=key.key.encode())

    try:
        answer: object = await cache.delete(key)
    except CacheConnectionError:
        answer = "raised CacheConnectionError"

    assert late.held == 1  # the delete did reach Redis, and its reply was held
    assert answer in (True, "raised CacheConnectionError")
    assert await cache.exists(key) is False
    assert [k async for k in redis_client.scan_iter(match=f"*{key_prefix}*victim-of-a-late-reply*")] == []


async def test_a_get_retried_after_a_late_reply_returns_the_entry_and_counts_one_hit(
    make_adapter: MakeAdapter, fault_proxy: FaultProxy
) -> None:
    cache = await make_adapter(fault_proxy.url, **TIMEOUTS)
    key = CacheKey(key="read-twice-count-once")
    await cache.set(key, "v")
    # Only the first attempt's reply is late: past socket_timeout, so the adapter gives up on it
    # and retries within operation_timeout.
    late = fault_proxy.delay_reply(LATE, contains=key.key.encode())

    started = time.monotonic()
    entry = await cache.get(key)
    elapsed = time.monotonic() - started

    assert late.held == 1
    # The answer came before the held reply was released: from a second attempt, which ran the
    # read on the server again.
    assert elapsed < LATE
    assert late.matches >= 2
    assert entry is not None and entry.value == "v"
    assert entry.hit_count == 1
    stats = await cache.get_stats()
    assert (stats.total_hits, stats.total_misses) == (1, 0)
