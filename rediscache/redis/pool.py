"""Connections to one server: a bounded set of the adapter's own, or borrowed from a user's client
(and, for a client Sentinel handed out, kept on the master Sentinel names).

Ours are kept in a plain free list behind a semaphore: a checkout costs a fraction of a
microsecond, where redis-py's blocking pool costs about ten (a condition variable, a timer and a
socket probe per checkout). The probe is not needed: a connection that met an error or a
cancellation is discarded (disconnected) before its slot is freed, so an idle one never holds an
unread answer. A new connection is opened under ``connect_timeout`` and the time it took is
reported, so the caller's budget is not charged for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from abc import ABC, abstractmethod
from typing import Any

from redis.asyncio import ConnectionPool
from redis.asyncio.sentinel import SentinelConnectionPool

if sys.version_info >= (3, 11):
    from asyncio import timeout as deadline
else:  # pragma: no cover - redis-py depends on async-timeout below 3.11.3
    from async_timeout import timeout as deadline  # type: ignore[import-not-found, unused-ignore]

__all__ = [
    "SENTINEL_CHECK_INTERVAL",
    "BorrowedPool",
    "OwnPool",
    "Pool",
    "PoolTimeout",
    "SentinelMasterPool",
    "deadline",
]

#: Seconds between the questions a Sentinel-managed pool asks Sentinel about where the master is.
SENTINEL_CHECK_INTERVAL = 1.0


class PoolTimeout(TimeoutError):
    """No connection became free in time."""


class Pool(ABC):
    @abstractmethod
    async def acquire(self, wait: float, connect_timeout: float | None = None) -> tuple[Any, float]:
        """A connected connection, waiting at most ``wait`` seconds for a free one and opening a new
        one within ``connect_timeout`` (default: the pool's); and the seconds spent opening it (0 for
        an idle one)."""

    @abstractmethod
    async def release(self, conn: Any) -> None:
        """Give back a healthy connection (its answers all read)."""

    @abstractmethod
    async def discard(self, conn: Any) -> None:
        """Give back a connection that may hold an unread answer or be broken: it is disconnected."""

    @abstractmethod
    async def close(self) -> None: ...


class OwnPool(Pool):
    """At most ``size`` connections made by ``factory`` (a redis-py ``ConnectionPool``, used only to
    make them: it knows the URL's settings, TLS and credentials)."""

    def __init__(self, factory: ConnectionPool, *, size: int, connect_timeout: float) -> None:
        self._factory = factory
        self._idle: list[Any] = []
        self._slots = asyncio.Semaphore(size)
        self._size = size
        self._connect_timeout = connect_timeout
        self._closed = False

    @property
    def in_use(self) -> int:
        return self._size - self._slots._value

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def acquire(self, wait: float, connect_timeout: float | None = None) -> tuple[Any, float]:
        if self._slots.locked():
            try:
                async with deadline(wait):
                    await self._slots.acquire()
            except TimeoutError:
                raise PoolTimeout(f"no connection became free within {wait:.3g} s") from None
        else:
            await self._slots.acquire()
        while self._idle:
            conn = self._idle.pop()
            if conn.is_connected:
                return conn, 0.0
        conn = self._factory.make_connection()  # type: ignore[no-untyped-call]
        started = time.monotonic()
        limit = self._connect_timeout if connect_timeout is None else min(connect_timeout, self._connect_timeout)
        try:
            # The handshake's reads have no socket timeout of their own: a frozen server accepts
            # TCP connections and then never answers.
            async with deadline(limit):
                await conn.connect()
        except BaseException as exc:
            self._slots.release()
            await _disconnect(conn)
            if isinstance(exc, TimeoutError):
                raise TimeoutError(f"connecting took longer than {limit:.3g} s") from None
            raise
        return conn, time.monotonic() - started

    async def release(self, conn: Any) -> None:
        if self._closed:
            await _disconnect(conn)
        else:
            self._idle.append(conn)
        self._slots.release()

    async def discard(self, conn: Any) -> None:
        self._slots.release()
        await _disconnect(conn)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await _disconnect(conn)
        await self._factory.disconnect()


class BorrowedPool(Pool):
    """The connection pool of a client the user gave the adapter: its own limits and settings."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    async def acquire(self, wait: float, connect_timeout: float | None = None) -> tuple[Any, float]:
        async with deadline(wait):
            conn = await self._pool.get_connection()  # type: ignore[no-untyped-call]
        return conn, 0.0

    async def release(self, conn: Any) -> None:
        await self._pool.release(conn)

    async def discard(self, conn: Any) -> None:
        await _disconnect(conn)
        await self._pool.release(conn)

    async def close(self) -> None:
        """Nothing: the user's client owns its pool."""


class SentinelMasterPool(BorrowedPool):
    """The pool of a client Sentinel handed out for a master (``Sentinel.master_for``).

    Its connections ask Sentinel where the master is when they connect, but an open one keeps
    talking to the server it reached. After a failover that leaves the old master running
    (``SENTINEL FAILOVER``, or a partition that cut it off from the Sentinels only), that server goes
    on accepting writes until Sentinel demotes it, some ten seconds later, and what was written there
    meanwhile is lost when it resyncs from the new master: invalidations too. So, from the first
    checkout until :meth:`close`, Sentinel is asked where the master is every ``check_interval``
    seconds, in the background (no call waits for it, and an idle adapter's first call after a
    failover is covered too), and a connection to a server other than the master it last named is
    reconnected, through Sentinel, before it is used. A check no Sentinel answers changes nothing.
    """

    def __init__(self, pool: SentinelConnectionPool, check_interval: float = SENTINEL_CHECK_INTERVAL) -> None:
        super().__init__(pool)
        self._sentinel_pool = pool
        self._interval = check_interval
        self._checking: asyncio.Task[None] | None = None

    async def acquire(self, wait: float, connect_timeout: float | None = None) -> tuple[Any, float]:
        if self._checking is None:
            self._checking = asyncio.get_running_loop().create_task(self._check_forever())
        async with deadline(wait):
            conn = await self._pool.get_connection()  # type: ignore[no-untyped-call]
            if self.on_master(conn):
                return conn, 0.0
            started = time.monotonic()
            try:
                # SentinelManagedConnection.connect() asks Sentinel for the master's address.
                await conn.disconnect(nowait=True)
                await conn.connect()
            except BaseException:
                await self._pool.release(conn)
                raise
        return conn, time.monotonic() - started

    def on_master(self, conn: Any) -> bool:
        """Whether ``conn`` (one of this pool's, or a subscriber's made with its settings) is
        connected to the master Sentinel named last."""
        master = self._sentinel_pool.master_address
        return master is None or (conn.host, conn.port) == (master[0], master[1])

    async def _check_forever(self) -> None:
        while True:
            # When the address changed, get_master_address() also disconnects the idle connections;
            # the ones in use are reconnected when they are next acquired. Bounded: a Sentinel that
            # accepts connections and never answers (and a client without socket_timeout) must not
            # stop the checks.
            with contextlib.suppress(Exception):
                async with deadline(max(5 * self._interval, 1.0)):
                    await self._sentinel_pool.get_master_address()  # type: ignore[no-untyped-call]
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        """Stop checking; the user's client owns its pool."""
        if self._checking is not None:
            self._checking.cancel()
            await asyncio.gather(self._checking, return_exceptions=True)


async def _disconnect(conn: Any) -> None:
    # nowait: closing must not wait for a peer that may be frozen; one being thrown away may fail
    # to close cleanly, which changes nothing.
    with contextlib.suppress(Exception):
        await conn.disconnect(nowait=True)
