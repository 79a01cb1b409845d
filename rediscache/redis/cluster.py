"""Redis Cluster, spoken to the way the single-server transport speaks to one server.

Each shard's slot is computed once (:mod:`.layout`); a slot → node table comes from the
cluster's ``CLUSTER SLOTS``, asked over our own connections. Every node has a pool of our own
connections (bounded, with a bounded wait) and commands packed by hiredis, under the one watchdog.
The table is refreshed when a node does not answer, on ``READONLY`` and ``CLUSTERDOWN`` (a
failover), and patched at once on ``MOVED``; ``ASK`` is followed once with ``ASKING``. redis-py's
cluster client is not used on any path: it closes connections other coroutines are still using
when it meets a topology change. A client you give the adapter is read for its startup nodes, its
connection settings (TLS, credentials) and its ``address_remap``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from typing import Any

from redis.asyncio import ConnectionPool, Redis, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.crc import REDIS_CLUSTER_HASH_SLOTS

from rediscache._exceptions import CacheConnectionError
from rediscache.redis.errors import map_exceptions
from rediscache.redis.options import ConnectionOptions
from rediscache.redis.pool import OwnPool
from rediscache.redis.transport import REPLICAS_RECHECK, AttemptError, Node, Transport, redact, subscriber_client

__all__ = ["ClusterTransport"]

logger = logging.getLogger("rediscache")

Address = tuple[str, int]

# A refresh asked for within this long of the last one joins it instead (a failover makes every
# call in flight ask for one).
_REFRESH_SPACING = 0.1


def replicas_by_master(described: Any) -> dict[bytes, int]:
    """Replicas per master id in a ``CLUSTER NODES`` answer, counting every replica not flagged
    ``fail``: one that lags, is cut off, or has not yet reported an offset could still be promoted,
    so an invalidation must wait for it. (``CLUSTER SLOTS`` leaves such replicas out.)"""
    text = described if isinstance(described, bytes) else str(described).encode()
    counts: dict[bytes, int] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        flags = fields[2].split(b",")
        if (b"slave" in flags or b"replica" in flags) and b"fail" not in flags and fields[3] != b"-":
            counts[fields[3]] = counts.get(fields[3], 0) + 1
    return counts


def _connection_settings(connection_class: type[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """What of a cluster client's node settings a connection of ``connection_class`` accepts."""
    accepted: set[str] = set()
    for cls in connection_class.__mro__:
        if issubclass(cls, AbstractConnection) and "__init__" in vars(cls):
            accepted.update(inspect.signature(cls.__init__).parameters)
    accepted -= {"self", "host", "port", "args", "kwargs"}
    return {key: value for key, value in kwargs.items() if key in accepted}


class ClusterTransport(Transport):
    def __init__(
        self,
        seeds: list[Address],
        *,
        connection_class: type[Any],
        connection_kwargs: dict[str, Any],
        address_remap: Any,
        server: str,
        options: ConnectionOptions,
        wait_for_replicas: int | None = None,
        replica_timeout: float = 0.1,
    ) -> None:
        super().__init__(options, wait_for_replicas=wait_for_replicas, replica_timeout=replica_timeout)
        if not seeds:
            raise ValueError("a cluster needs at least one startup node")
        self._seeds = list(dict.fromkeys(seeds))
        self._connection_class = connection_class
        self._kwargs = {**_connection_settings(connection_class, connection_kwargs), **options.connection_kwargs()}
        self._remap = address_remap
        self._nodes: dict[str, Node] = {}
        self._slots: list[Node | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
        self._primaries: list[Node] = []
        self._ready = False
        self._lock = asyncio.Lock()
        self._refreshed_at = float("-inf")
        self._refreshing: asyncio.Task[None] | None = None
        self._closed = False
        self.server = server

    @classmethod
    def from_url(
        cls, url: str, options: ConnectionOptions, *, wait_for_replicas: int | None = None, replica_timeout: float = 0.1
    ) -> ClusterTransport:
        # redis-py parses the URL (TLS, credentials, options) into node settings; the client itself
        # never connects.
        parsed = RedisCluster.from_url(url)
        return cls._from_parsed(parsed, redact(url), options, wait_for_replicas, replica_timeout)

    @classmethod
    def from_client(
        cls,
        client: RedisCluster,
        options: ConnectionOptions,
        *,
        server: str,
        wait_for_replicas: int | None = None,
        replica_timeout: float = 0.1,
    ) -> ClusterTransport:
        return cls._from_parsed(client, server, options, wait_for_replicas, replica_timeout)

    @classmethod
    def _from_parsed(
        cls,
        client: RedisCluster,
        server: str,
        options: ConnectionOptions,
        wait_for_replicas: int | None,
        replica_timeout: float,
    ) -> ClusterTransport:
        manager = client.nodes_manager
        known = list(manager.nodes_cache.values()) or list(manager.startup_nodes.values())
        kwargs = dict(manager.connection_kwargs)
        connection_class = kwargs.pop("connection_class", None) or known[0].connection_class
        return cls(
            [(node.host, int(node.port)) for node in known],
            connection_class=connection_class,
            connection_kwargs=kwargs,
            address_remap=manager.address_remap,
            server=server,
            options=options,
            wait_for_replicas=wait_for_replicas,
            replica_timeout=replica_timeout,
        )

    # -- nodes --------------------------------------------------------------------------------------

    def node_at(self, host: str, port: int) -> Node:
        return self._node(self._remapped((host, port)))

    def _remapped(self, address: Address) -> Address:
        if self._remap is None:
            return address
        host, port = self._remap(address)
        return host, int(port)

    def _node(self, address: Address) -> Node:
        host, port = address
        name = f"{host}:{port}"
        node = self._nodes.get(name)
        if node is None:
            factory = ConnectionPool(
                connection_class=self._connection_class,
                host=host,
                port=port,
                max_connections=self.options.max_connections,
                **self._kwargs,
            )
            pool = OwnPool(factory, size=self.options.max_connections, connect_timeout=self.options.connect_timeout)
            node = self._nodes[name] = Node(name, pool, self._watchdog, self.options)
        return node

    async def node_for(self, slot: int) -> Node:
        node = self._slots[slot]
        if node is not None:
            return node
        await self._refresh()
        node = self._slots[slot]
        if node is None:
            raise CacheConnectionError(f"no node of {self.server} serves slot {slot} (cluster down?)")
        return node

    async def primaries(self) -> list[Node]:
        if not self._ready:
            await self._refresh()
        return list(self._primaries)

    def durable_call(self) -> None:
        if self._wait_for is None and time.monotonic() - self._refreshed_at > REPLICAS_RECHECK:
            # "auto" waits for the replicas the map names: re-read it now and then, so that a
            # replica removed for good stops being waited for (one added is learned sooner: Durable).
            self._refresh_soon()

    # -- what changes the map ---------------------------------------------------------------------------

    def node_failed(self, node: Node, failure: AttemptError) -> None:
        if not isinstance(failure.cause, TimeoutError) or failure.sent:
            self._refresh_soon()

    def slot_moved(self, slot: int, node: Node) -> None:
        self._slots[slot] = node
        self._refresh_soon()  # a slot rarely moves alone

    async def topology_changed(self) -> None:
        await self._refresh()

    def _refresh_soon(self) -> None:
        if self._closed or (self._refreshing is not None and not self._refreshing.done()):
            return
        if time.monotonic() - self._refreshed_at < _REFRESH_SPACING:
            return
        self._refreshing = asyncio.get_running_loop().create_task(self._refresh_quietly())

    async def _refresh_quietly(self) -> None:
        try:
            await self._refresh()
        except Exception as exc:  # the calls that need the map will say what is wrong
            logger.debug("rediscache: cluster map refresh of %s failed: %s", self.server, exc)

    async def _refresh(self) -> None:
        """Read the slot map from the first node that answers; one refresh at a time, and one that
        was asked for while another ran is satisfied by it."""
        asked_at = time.monotonic()
        async with self._lock:
            if self._refreshed_at >= asked_at - _REFRESH_SPACING and self._ready:
                return
            # Every known node at once, and the first good answer wins: asking them in turn would
            # wait out a dead or frozen one first.
            candidates = [
                *self._primaries,
                *self._nodes.values(),
                *(self._node(self._remapped(s)) for s in self._seeds),
            ]
            asked = {asyncio.ensure_future(self._slot_map(node)): node for node in dict.fromkeys(candidates)}
            errors: list[str] = []
            try:
                for next_answer in asyncio.as_completed(asked):
                    try:
                        node, reply, replicas_of = await next_answer
                    except Exception as exc:
                        errors.append(f"{type(exc).__name__}: {exc}")
                        continue
                    if self._apply(node, reply, replicas_of):
                        self._refreshed_at = time.monotonic()
                        self._ready = True
                        return
                    errors.append(f"{node.name}: its slot map covers no slot")
            finally:
                for pending in asked:
                    pending.cancel()
                await asyncio.gather(*asked, return_exceptions=True)
            raise CacheConnectionError(f"no node of {self.server} gave a slot map: {'; '.join(errors) or 'no node'}")

    async def _slot_map(self, node: Node) -> tuple[Node, Any, dict[bytes, int] | None]:
        try:
            reply = await self._call_on(node, (b"CLUSTER", b"SLOTS"))
        except Exception as exc:
            raise CacheConnectionError(f"{node.name}: {type(exc).__name__}: {exc}") from exc
        try:
            described = await self._call_on(node, (b"CLUSTER", b"NODES"))
        except Exception:  # a user without +cluster|nodes: the replicas CLUSTER SLOTS lists
            return node, reply, None
        return node, reply, replicas_by_master(described)

    def _apply(self, answered: Node, reply: list[Any], replicas_of: dict[bytes, int] | None = None) -> bool:
        slots: list[Node | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
        primaries: dict[str, Node] = {}
        answered_host = answered.name.rpartition(":")[0]
        for entry in reply:
            start, end, primary, *replicas = entry
            host = primary[0].decode() if isinstance(primary[0], bytes) else str(primary[0])
            node = self._node(self._remapped((host or answered_host, int(primary[1]))))
            node_id = primary[2] if len(primary) > 2 else None
            if replicas_of is not None and isinstance(node_id, bytes):
                node.replicas = replicas_of.get(node_id, 0)
            else:
                node.replicas = len(replicas)
            primaries[node.name] = node
            for slot in range(int(start), int(end) + 1):
                slots[slot] = node
        if not primaries:
            return False
        self._slots = slots
        self._primaries = list(primaries.values())
        return True

    # -- the rest -------------------------------------------------------------------------------------

    async def subscriber(self, node: Node | None = None) -> Redis:
        if node is None:
            with map_exceptions("subscribe", self.server):
                primaries = await self.primaries()
            if not primaries:
                raise CacheConnectionError(f"subscribe failed on {self.server}: no primary known")
            node = primaries[0]
        host, _, port = node.name.rpartition(":")
        return subscriber_client(self._connection_class, {**self._kwargs, "host": host, "port": int(port)})

    async def close(self) -> None:
        self._closed = True
        if self._refreshing is not None:
            self._refreshing.cancel()
        await super().close()
        for node in list(self._nodes.values()):
            await node.close()

    def describe_spread(self, slots: list[int]) -> dict[str, int]:
        """How many of ``slots`` each primary serves (for tools and tests)."""
        spread: dict[str, int] = {}
        for slot in slots:
            node = self._slots[slot]
            name = node.name if node is not None else "(none)"
            spread[name] = spread.get(name, 0) + 1
        return spread
