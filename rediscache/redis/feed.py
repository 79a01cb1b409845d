"""The invalidation feed: the changes other instances make to one cache, as the scripts publish them.

Every script that changes or removes entries publishes the changed ``full_key``s on the cache's
channel in the same atomic call (``announce`` in ``lua/_lib.lua``). A feed subscribes to that
channel and hands out, batch by batch, the keys that *other* instances changed (an instance's own
writes drop its copies before they return). It says when it cannot vouch for what it missed:

- ``None`` from :meth:`InvalidationFeed.next` means "anything may have changed" (a message that
  could not be read, or a resubscription redis-py made after a drop: messages sent meanwhile are
  lost);
- ``CacheConnectionError`` means the channel is lost: it did not answer a ping within the check
  interval, or the subscription failed. The subscriber has no retries of redis-py's own, which
  would reconnect and resubscribe silently.

This is the whole of what an L1 (``HybridCacheAdapter``) needs from the Redis side besides reads.
"""

from __future__ import annotations

import contextlib
import time
from types import TracebackType
from typing import Any

from redis import exceptions as rex
from redis.asyncio import Redis

from rediscache._exceptions import CacheConnectionError
from rediscache.redis.errors import map_exceptions
from rediscache.redis.layout import decode_invalidation
from rediscache.redis.pool import deadline
from rediscache.redis.transport import Transport

__all__ = ["InvalidationFeed"]


class InvalidationFeed:
    """``async with adapter.invalidation_feed(check_interval) as feed:`` then ``await feed.next()``."""

    def __init__(self, transport: Transport, channel: bytes, origin: bytes, check_interval: float) -> None:
        if check_interval <= 0:
            raise ValueError("check_interval must be positive")
        self._transport = transport
        self._channel = channel
        self._origin = origin
        self._interval = check_interval
        self._client: Redis | None = None
        self._pubsub: Any = None
        self._pinged_at: float | None = None

    async def __aenter__(self) -> InvalidationFeed:
        with map_exceptions("subscribe", self._transport.server):
            try:
                self._client = await self._transport.subscriber()
                self._pubsub = self._client.pubsub()
                # Connecting can hang on a frozen server (it still accepts TCP): bound it.
                async with deadline(self._interval * 2 + 2.0):
                    await self._pubsub.subscribe(self._channel)
                confirmation = await self._pubsub.get_message(timeout=self._interval * 2)
            except BaseException:
                await self._close()
                raise
        if confirmation is None or confirmation.get("type") != "subscribe":
            await self._close()
            raise CacheConnectionError(f"subscribe failed on {self._transport.server}: no confirmation")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()

    async def next(self) -> list[str] | None:
        """The next batch of full_keys another instance changed; ``None`` if anything may have
        changed. Waits as long as it takes; raises ``CacheConnectionError`` if the channel is lost."""
        with map_exceptions("invalidation feed", self._transport.server):
            while True:
                try:
                    message = await self._pubsub.get_message(timeout=self._interval)
                except (rex.RedisError, OSError) as exc:
                    raise CacheConnectionError(f"the invalidation channel broke: {exc}") from exc
                now = time.monotonic()
                if message is None:
                    if self._pinged_at is None:
                        await self._pubsub.ping()
                        self._pinged_at = now
                    elif now - self._pinged_at > self._interval:
                        raise CacheConnectionError("the invalidation channel stopped answering")
                    continue
                self._pinged_at = None
                kind = message.get("type")
                if kind == "subscribe":
                    # A resubscription we did not ask for: the connection dropped and came back, and
                    # messages may have been missed in between.
                    return None
                if kind != "message":
                    continue  # the answer to our ping
                try:
                    origin, full_keys = decode_invalidation(message["data"])
                except ValueError:
                    return None  # a message we can't read could have named any key
                if origin != self._origin:
                    return [full_key.decode("utf-8", "surrogateescape") for full_key in full_keys]

    async def _close(self) -> None:
        pubsub, client = self._pubsub, self._client
        self._pubsub = self._client = None
        with contextlib.suppress(Exception):
            if pubsub is not None:
                await pubsub.aclose()
        with contextlib.suppress(Exception):
            if client is not None:
                await client.aclose()
