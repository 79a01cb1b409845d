"""One server, spoken to directly: commands packed by hiredis, sent on a connection of our own and
read back, with one deadline per attempt. On a cache's hot path redis-py's general
``execute_command`` (pool, retry wrapper, callbacks, metrics) costs more than the command."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.sentinel import SentinelConnectionPool

from rediscache.redis.errors import map_exceptions
from rediscache.redis.options import ConnectionOptions
from rediscache.redis.pool import BorrowedPool, OwnPool, Pool, SentinelMasterPool
from rediscache.redis.transport import (
    INFO_REPLICATION,
    REPLICAS_RECHECK,
    Node,
    Transport,
    redact,
    replicas_in,
    subscriber_client,
)

__all__ = ["StandaloneTransport"]


class StandaloneTransport(Transport):
    def __init__(
        self,
        client: Redis,
        *,
        server: str,
        owns_client: bool,
        options: ConnectionOptions,
        wait_for_replicas: int | None = None,
        replica_timeout: float = 0.1,
    ) -> None:
        super().__init__(options, wait_for_replicas=wait_for_replicas, replica_timeout=replica_timeout)
        self._client = client
        self._owns = owns_client
        pool = client.connection_pool
        connections: Pool
        if owns_client:
            connections = OwnPool(pool, size=options.max_connections, connect_timeout=options.connect_timeout)
        elif isinstance(pool, SentinelConnectionPool) and pool.is_master:
            connections = SentinelMasterPool(pool)
        else:
            connections = BorrowedPool(pool)
        self._node = Node(server, connections, self._watchdog, options)
        self._replicas_checked = float("-inf")
        self._checking: asyncio.Task[None] | None = None
        self.server = server

    @classmethod
    def from_url(
        cls, url: str, options: ConnectionOptions, *, wait_for_replicas: int | None = None, replica_timeout: float = 0.1
    ) -> StandaloneTransport:
        # The pool parses the URL and makes connections; checkouts go through OwnPool.
        pool = ConnectionPool.from_url(url, max_connections=options.max_connections, **options.connection_kwargs())
        return cls(
            Redis.from_pool(pool),
            server=redact(url),
            owns_client=True,
            options=options,
            wait_for_replicas=wait_for_replicas,
            replica_timeout=replica_timeout,
        )

    async def node_for(self, slot: int) -> Node:
        if self._wait_for is None and time.monotonic() - self._replicas_checked > REPLICAS_RECHECK:
            self._recheck_replicas()
        return self._node

    async def primaries(self) -> list[Node]:
        return [self._node]

    def _recheck_replicas(self) -> None:
        """Re-read the replica count in the background (the first time, callers already waited for
        :meth:`count_replicas`)."""
        if self._checking is None or self._checking.done():
            self._replicas_checked = time.monotonic()
            self._checking = asyncio.get_running_loop().create_task(self._count_quietly())

    async def _count_quietly(self) -> None:
        # A failed check leaves the count as it was; the next one tries again.
        with contextlib.suppress(Exception):
            await self.count_replicas()

    async def count_replicas(self) -> int:
        """How many replicas the server has (``INFO replication``), remembered for ``WAIT``."""
        with map_exceptions("count replicas", self.server):
            self._replicas_checked = time.monotonic()
            info = await self._call_on(self._node, INFO_REPLICATION)
        count = replicas_in(info)
        if count is not None:
            self._node.replicas = count
        return self._node.replicas

    def subscription_moved(self, pubsub: Any) -> bool:
        pool, conn = self._node.pool, getattr(pubsub, "connection", None)
        return isinstance(pool, SentinelMasterPool) and conn is not None and not pool.on_master(conn)

    async def subscriber(self, node: Node | None = None) -> Redis:
        # Same connection class and settings (TLS, unix socket, credentials) as the command pool.
        pool = self._client.connection_pool
        return subscriber_client(pool.connection_class, pool.connection_kwargs)

    async def close(self) -> None:
        await super().close()
        if self._checking is not None:
            self._checking.cancel()
        await self._node.close()  # a borrowed pool stays open: the user's client owns it
        if self._owns:
            await self._client.aclose()
