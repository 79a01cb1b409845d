"""The invalidation feed: the changes other instances make to one cache, as the scripts publish them.

Every script that changes or removes entries publishes the changed ``full_key``s in the same atomic
call (``announce`` in ``lua/_lib.lua``): on Redis 7+ (and Valkey) on each shard's own sharded
channel (``SPUBLISH``), which on a cluster reaches only the shard's own nodes instead of crossing
the whole cluster bus; on older servers on the cache's one classic channel. A feed subscribes to
what the cache uses (on a cluster, one connection per node, each ``SSUBSCRIBE``-d to the channels
of the shards that node serves) and hands out, batch by batch, the keys that *other* instances
changed (an instance's own writes drop its copies before they return). It says when it cannot
vouch for what it missed:

- ``None`` from :meth:`InvalidationFeed.next` means "anything may have changed" (a message that
  could not be read, or a resubscription redis-py made after a drop: messages sent meanwhile are
  lost);
- ``CacheConnectionError`` means the feed is lost: a connection did not answer a ping within the
  check interval, the subscription failed, a shard's slot moved to another node (Redis then
  unsubscribes its channel), or Sentinel named another master while the old one, which the
  connection is on, stayed up (a client from ``Sentinel.master_for``). The subscribers have no
  retries of redis-py's own, which would reconnect and resubscribe silently. Open a new feed: it
  subscribes where the shards are now.

This is the whole of what an L1 (``HybridCacheAdapter``) needs from the Redis side besides reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from redis import exceptions as rex
from redis.asyncio import Redis

from rediscache._exceptions import CacheConnectionError, CacheError
from rediscache.redis.errors import map_exceptions
from rediscache.redis.layout import Layout, decode_invalidation
from rediscache.redis.pool import deadline
from rediscache.redis.transport import Node, Transport

__all__ = ["InvalidationFeed"]

# What the readers hand to next(): keys, None (anything may have changed), or the error that ended one.
_Item = list[str] | None | CacheError


class InvalidationFeed:
    """``async with adapter.invalidation_feed(check_interval) as feed:`` then ``await feed.next()``."""

    def __init__(
        self,
        transport: Transport,
        layout: Layout,
        origin: bytes,
        check_interval: float,
        *,
        sharded: Callable[[], Awaitable[bool]],
    ) -> None:
        """``sharded`` says, once the adapter knows the server, which kind of channel the cache uses:
        publishers and listeners must agree."""
        if check_interval <= 0:
            raise ValueError("check_interval must be positive")
        self._transport = transport
        self._layout = layout
        self._origin = origin
        self._interval = check_interval
        self._decide = sharded
        self._sharded = False
        self._clients: list[Redis] = []
        self._pubsubs: list[Any] = []
        self._readers: list[asyncio.Task[None]] = []
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()

    async def __aenter__(self) -> InvalidationFeed:
        with map_exceptions("subscribe", self._transport.server):
            try:
                self._sharded = await self._decide()
                for client, channels in await self._subscribers():
                    self._clients.append(client)
                    pubsub = client.pubsub()
                    self._pubsubs.append(pubsub)
                    await self._subscribe(pubsub, channels)
                    self._readers.append(asyncio.get_running_loop().create_task(self._read(pubsub)))
            except BaseException:
                await self._close()
                raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()

    async def next(self) -> list[str] | None:
        """The next batch of full_keys another instance changed; ``None`` if anything may have
        changed. Waits as long as it takes; raises ``CacheConnectionError`` if the feed is lost."""
        item = await self._queue.get()
        if isinstance(item, CacheError):
            raise item
        return item

    async def _subscribers(self) -> list[tuple[Redis, list[bytes]]]:
        if not self._sharded:
            return [(await self._transport.subscriber(), [self._layout.channel])]
        by_node: dict[Node, list[bytes]] = defaultdict(list)
        for shard in self._layout.shards:
            by_node[await self._transport.node_for(shard.slot)].append(shard.channel)
        return [(await self._transport.subscriber(node), channels) for node, channels in by_node.items()]

    async def _subscribe(self, pubsub: Any, channels: list[bytes]) -> None:
        kind = "ssubscribe" if self._sharded else "subscribe"
        # Connecting can hang on a frozen server (it still accepts TCP): bound it.
        async with deadline(self._interval * 2 + 2.0):
            if self._sharded:
                for channel in channels:  # one SSUBSCRIBE each: a command's channels share one slot
                    await pubsub.ssubscribe(channel)
            else:
                await pubsub.subscribe(*channels)
            for _ in channels:
                confirmation = await pubsub.get_message(timeout=self._interval * 2)
                if confirmation is None or confirmation.get("type") != kind:
                    raise CacheConnectionError(f"subscribe failed on {self._transport.server}: no confirmation")

    async def _read(self, pubsub: Any) -> None:
        """One connection's messages, into the queue, until it is lost."""
        pinged_at: float | None = None
        try:
            while True:
                message = await pubsub.get_message(timeout=self._interval)
                if self._transport.subscription_moved(pubsub):
                    raise CacheConnectionError("the master moved: this channel is on a server that takes no writes")
                now = time.monotonic()
                if message is None:
                    if pinged_at is None:
                        await pubsub.ping()
                        pinged_at = now
                    elif now - pinged_at > self._interval:
                        raise CacheConnectionError("the invalidation channel stopped answering")
                    continue
                pinged_at = None
                kind = message.get("type")
                if kind in ("subscribe", "ssubscribe"):
                    # A resubscription we did not ask for: the connection dropped and came back, and
                    # messages may have been missed in between.
                    self._queue.put_nowait(None)
                elif kind == "sunsubscribe":
                    raise CacheConnectionError("a shard's slot moved: its channel was unsubscribed")
                elif kind in ("message", "smessage"):
                    try:
                        origin, full_keys = decode_invalidation(message["data"])
                    except ValueError:
                        self._queue.put_nowait(None)  # a message we can't read could have named any key
                        continue
                    if origin != self._origin:
                        self._queue.put_nowait([key.decode("utf-8", "surrogateescape") for key in full_keys])
        except asyncio.CancelledError:
            raise
        except CacheError as exc:
            self._queue.put_nowait(exc)
        except (rex.RedisError, OSError, Exception) as exc:
            self._queue.put_nowait(CacheConnectionError(f"the invalidation channel broke: {type(exc).__name__}: {exc}"))

    async def _close(self) -> None:
        readers, self._readers = self._readers, []
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        pubsubs, self._pubsubs = self._pubsubs, []
        for pubsub in pubsubs:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
        clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(Exception):
                await client.aclose()
