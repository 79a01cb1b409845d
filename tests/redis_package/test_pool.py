"""The connection pool: bounded, waits a bounded time, opens connections under connect_timeout, and
never hands out a connection that may hold an unread answer."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest
from redis.asyncio import ConnectionPool
from support.redis_servers import RedisServer

from rediscache.redis.options import ConnectionOptions
from rediscache.redis.pool import OwnPool, PoolTimeout


def _pool(url: str, size: int, connect_timeout: float = 1.0) -> OwnPool:
    factory = ConnectionPool.from_url(url, **ConnectionOptions(connect_timeout=connect_timeout).connection_kwargs())
    return OwnPool(factory, size=size, connect_timeout=connect_timeout)


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word: what a frozen server looks like."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


async def test_a_new_connection_reports_its_connect_time_and_an_idle_one_none(redis_server: RedisServer) -> None:
    pool = _pool(redis_server.url, size=1)
    try:
        conn, connecting = await pool.acquire(1.0)
        assert connecting > 0 and conn.is_connected
        await pool.release(conn)

        again, connecting = await pool.acquire(1.0)
        assert again is conn and connecting == 0.0
        await pool.release(again)
    finally:
        await pool.close()


async def test_a_caller_beyond_the_size_waits_and_then_gets_the_released_connection(redis_server: RedisServer) -> None:
    pool = _pool(redis_server.url, size=1)
    try:
        first, _ = await pool.acquire(1.0)
        waiting = asyncio.create_task(pool.acquire(2.0))
        await asyncio.sleep(0.05)
        assert not waiting.done()

        await pool.release(first)
        second, _ = await waiting
        assert second is first
        await pool.release(second)
    finally:
        await pool.close()


async def test_a_caller_beyond_the_size_gives_up_after_its_wait(redis_server: RedisServer) -> None:
    pool = _pool(redis_server.url, size=1)
    try:
        held, _ = await pool.acquire(1.0)
        with pytest.raises(PoolTimeout, match="no connection became free"):
            await pool.acquire(0.1)
        assert pool.in_use == 1
        await pool.release(held)
    finally:
        await pool.close()


async def test_a_discarded_connection_is_closed_and_frees_its_place(redis_server: RedisServer) -> None:
    pool = _pool(redis_server.url, size=1)
    try:
        conn, _ = await pool.acquire(1.0)
        await pool.discard(conn)
        assert pool.in_use == 0 and pool.idle == 0

        fresh, connecting = await pool.acquire(1.0)
        assert fresh is not conn and connecting > 0
        await pool.release(fresh)
    finally:
        await pool.close()


async def test_a_server_that_never_answers_the_handshake_fails_within_connect_timeout(black_hole: int) -> None:
    pool = _pool(f"redis://127.0.0.1:{black_hole}", size=2, connect_timeout=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"connecting took longer than 0\.3 s"):
            await pool.acquire(1.0)
        assert time.monotonic() - started < 2.0  # the promise is connect_timeout; the slack is for a busy machine
        assert pool.in_use == 0  # the failed attempt gave its place back
    finally:
        await pool.close()
