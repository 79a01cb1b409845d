"""A frozen server (SIGSTOP: its kernel still accepts connections, nothing answers) costs a caller
about operation_timeout, plus connect_timeout when the call had to open a connection, with the
DEFAULT settings: these tests pass no option, so they also check what the defaults are.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from support.factories import MakeAdapter
from support.redis_servers import RedisServer

from rediscache import CacheConnectionError, CacheKey, RedisCacheAdapter

from ._settings import CONNECT_TIMEOUT, HANG_GUARD, OPERATION_TIMEOUT, SLACK


@contextmanager
def _frozen(server: RedisServer) -> Iterator[None]:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


async def _failing_get_seconds(cache: RedisCacheAdapter, key: CacheKey) -> tuple[float, CacheConnectionError]:
    started = time.monotonic()
    with pytest.raises(CacheConnectionError) as raised:
        await asyncio.wait_for(cache.get(key), HANG_GUARD)
    return time.monotonic() - started, raised.value


async def test_a_get_on_an_open_connection_to_a_frozen_server_fails_within_operation_timeout(
    make_adapter: MakeAdapter, private_server: RedisServer
) -> None:
    cache = await make_adapter(private_server.url)
    await cache.set(CacheKey(key="k"), 1)  # first use done; its connection stays open

    with _frozen(private_server):
        elapsed, error = await _failing_get_seconds(cache, CacheKey(key="k"))

    assert elapsed <= OPERATION_TIMEOUT + SLACK
    assert "get" in str(error)
    assert private_server.address in str(error)


async def test_a_get_that_must_connect_to_a_frozen_server_fails_within_operation_plus_connect_timeout(
    make_adapter: MakeAdapter, private_server: RedisServer
) -> None:
    cache = await make_adapter(private_server.url)  # never used: no connection yet

    with _frozen(private_server):
        elapsed, error = await _failing_get_seconds(cache, CacheKey(key="k"))

    assert elapsed <= OPERATION_TIMEOUT + CONNECT_TIMEOUT + SLACK
    assert "get" in str(error)
    assert private_server.address in str(error)
