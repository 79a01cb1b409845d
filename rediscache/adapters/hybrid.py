"""``HybridCacheAdapter``: an in-process L1 over Redis that never serves what another instance invalidated.

Coherence. Every script that changes or removes entries (set, delete, the invalidations, clear)
publishes the changed ``full_key``s on the cache's pub/sub channel, in the same atomic call: so
plain ``RedisCacheAdapter`` instances announce their changes too, and no change can happen without
its message. Each hybrid instance subscribes and drops those keys from its L1. Why pub/sub from the
scripts rather than client tracking: tracking (what cashews uses) follows keys a connection has
read, which on a cluster means one tracking connection per node and redirection, and knows nothing
of our tag and namespace indexes; a message from the script that did the change names exactly the
entries it removed, on a single server and on a cluster alike. On a cluster the message is a classic
``PUBLISH``, which Redis relays to every node, so one subscription (to any primary) hears all shards.

Races. A read that goes to L2 while a change is in flight could bring back the old value after the
change's message was handled, and promote it into L1 for good. Reads in flight are therefore
tracked: a message for a key (or a flush) that lands while a read of it is in flight stops that read
from promoting its value. Writes through this instance drop the key from L1 before they return.

Faults. If the subscription is lost (connection killed, Redis restarted or frozen: a ping that gets
no answer within ``channel_check_interval``), the L1 is bypassed at once: reads go to L2 and nothing
is promoted. The listener reconnects by itself; once it is subscribed again, the L1 is cleared
(messages may have been missed) and used again. ``l1_ttl`` bounds staleness even if a message is
lost some other way.

Values. By default L1 keeps the encoded payload and decodes it on every hit, so a caller mutating
the value it got cannot change what the next caller gets; this costs one msgpack decode per hit
(about a microsecond for a small dict). ``l1_shared_objects=True`` keeps the decoded object and
hands the same object to every caller: faster, but callers must not mutate it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any, Literal

from rediscache import metrics
from rediscache._exceptions import CacheError, UndecodablePayload
from rediscache._models import CacheEntry, CacheKey, CacheStats, make_entry, utc_now
from rediscache._port import CacheAdapter
from rediscache._store import EntryStore, require_policy
from rediscache.adapters.redis import RedisCacheAdapter
from rediscache.redis.options import ConnectionOptions
from rediscache.serialization import Codec

__all__ = ["HybridCacheAdapter"]

logger = logging.getLogger("rediscache")


class _L1Copy:
    """What L1 holds for an entry: the L2 entry's facts as promoted, its payload (or object), and
    this instance's reads of it. Mutable on purpose: an L1 hit updates it in place."""

    __slots__ = (
        "created_at",
        "deadline",
        "expires_at",
        "hits",
        "key",
        "last_accessed",
        "payload",
        "stored_at",
        "value",
    )

    def __init__(self, entry: CacheEntry, payload: bytes, value: Any, deadline: float) -> None:
        self.key = entry.key
        self.payload = payload
        self.value = value  # the decoded object, kept only in shared-object mode
        self.created_at = entry.created_at
        self.expires_at = entry.expires_at
        self.hits = entry.hit_count
        self.last_accessed = entry.last_accessed
        self.stored_at = time.monotonic()
        self.deadline = deadline  # time.monotonic() after which the copy is not served


class _ReadTracker:
    """Remembers, for reads in flight to L2, whether their key was invalidated meanwhile."""

    def __init__(self) -> None:
        self._in_flight: dict[str, list[int]] = {}  # full_key -> [reads in flight, generation]
        self.epoch = 0  # bumped by anything that invalidates every key

    def begin(self, full_key: str) -> tuple[int, int]:
        slot = self._in_flight.setdefault(full_key, [0, 0])
        slot[0] += 1
        return slot[1], self.epoch

    def end(self, full_key: str, token: tuple[int, int]) -> bool:
        """Whether the read may promote: nothing touched its key since it began."""
        slot = self._in_flight[full_key]
        clean = (slot[1], self.epoch) == token
        slot[0] -= 1
        if slot[0] == 0:
            del self._in_flight[full_key]
        return clean

    def invalidate(self, full_key: str) -> None:
        slot = self._in_flight.get(full_key)
        if slot is not None:
            slot[1] += 1

    def invalidate_all(self) -> None:
        self.epoch += 1


class HybridCacheAdapter(CacheAdapter):
    """L1 in this process (bounded, LRU or LFU) over a shared Redis L2, coherent across processes.

    Args:
        redis_url: the L2 server or cluster (see ``RedisCacheAdapter``).
        key_prefix: the L2 cache's prefix; every instance on it shares one cache.
        l1_max_size: entries kept in this process.
        l1_ttl: the longest an L1 copy is served without asking L2 (``None``: until invalidated
            or expired); bounds staleness should a message ever be lost.
        l1_eviction_policy: ``"lru"`` or ``"lfu"``.
        l1_shared_objects: hand out the same decoded object on every L1 hit (faster; callers must
            not mutate it) instead of decoding a fresh copy.
        channel_check_interval: seconds of silence on the invalidation channel after which it is
            pinged; no answer within as long again means the channel is lost and L1 is bypassed.
        l2: a ready ``RedisCacheAdapter`` to use as L2 instead of building one (it is closed with
            this adapter).
        options: the L2's ``ConnectionOptions`` (timeouts, retries, pool size); the flat keywords
            (``socket_timeout=``, ...) among ``redis_options`` override its fields, as on
            ``RedisCacheAdapter``.
        **redis_options: passed to ``RedisCacheAdapter``.
    """

    def __init__(
        self,
        redis_url: str = "redis://localhost:6379/0",
        *,
        key_prefix: str = "rediscache",
        l1_max_size: int = 1000,
        l1_ttl: timedelta | None = timedelta(seconds=30),
        l1_eviction_policy: Literal["lru", "lfu"] = "lru",
        l1_shared_objects: bool = False,
        channel_check_interval: float = 1.0,
        l2: RedisCacheAdapter | None = None,
        options: ConnectionOptions | None = None,
        **redis_options: Any,
    ) -> None:
        if l1_ttl is not None and l1_ttl <= timedelta(0):
            raise ValueError("l1_ttl must be positive or None")
        if channel_check_interval <= 0:
            raise ValueError("channel_check_interval must be positive")
        if options is not None and not isinstance(options, ConnectionOptions):
            raise TypeError(f"options must be ConnectionOptions, not {type(options).__name__}")
        if l2 is not None and (options is not None or redis_options):
            raise ValueError("pass connection settings to the RedisCacheAdapter given as l2, not beside it")
        self._l2 = (
            l2
            if l2 is not None
            else RedisCacheAdapter(redis_url, key_prefix=key_prefix, options=options, **redis_options)
        )
        if isinstance(l1_max_size, bool) or not isinstance(l1_max_size, int) or l1_max_size <= 0:
            raise ValueError(f"l1_max_size must be a positive int, got {l1_max_size!r}")
        # No TTL in the store: each copy's own deadline, on the monotonic clock, is cheaper to check
        # on every hit than a datetime.
        self._l1: EntryStore[_L1Copy] = EntryStore(max_size=l1_max_size, policy=require_policy(l1_eviction_policy))
        self._l1_ttl = l1_ttl
        self._shared = l1_shared_objects
        self._check_interval = channel_check_interval
        self._reads = _ReadTracker()
        self._trusted = False  # L1 is served only while the invalidation channel is up
        self._listener: asyncio.Task[None] | None = None
        self._closed = False
        self._l1_hits = 0
        self._l1_misses = 0
        self._subscribed = asyncio.Event()
        # rediscache.l1.hits; the L2 adapter records the shared figures itself.
        self._metrics_source = metrics.register_source(self._l2.key_prefix, lambda: {"l1_hits": self._l1_hits})

    @classmethod
    def from_redis(cls, l2: RedisCacheAdapter, **options: Any) -> HybridCacheAdapter:
        """An L1 over a ready ``RedisCacheAdapter`` (closed with the hybrid)."""
        return cls(key_prefix=l2.key_prefix, l2=l2, **options)

    @property
    def l2(self) -> RedisCacheAdapter:
        return self._l2

    @property
    def key_prefix(self) -> str:
        """The shared cache's prefix (its L2's)."""
        return self._l2.key_prefix

    @property
    def codec(self) -> Codec:
        """L2's codec; register pydantic models with ``adapter.codec.register_model(Model)``."""
        return self._l2.codec

    @property
    def server(self) -> str:
        """The L2 server or cluster (password redacted)."""
        return self._l2.server

    @property
    def l1_trusted(self) -> bool:
        """Whether L1 is being served (the invalidation channel is subscribed and healthy)."""
        return self._trusted

    async def wait_until_coherent(self, timeout: float = 5.0) -> bool:
        """Start listening if needed and wait until the channel is subscribed; ``False`` on timeout."""
        self._ensure_listener()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), timeout)
        return self._trusted

    # -- the invalidation channel -------------------------------------------------------------------

    def _ensure_listener(self) -> None:
        if self._listener is None and not self._closed:
            self._listener = asyncio.get_running_loop().create_task(self._listen(), name="rediscache-l1-listener")

    async def _listen(self) -> None:
        backoff = 0.05
        while not self._closed:
            try:
                async with self._l2.invalidation_feed(self._check_interval) as feed:
                    self._channel_up()
                    backoff = 0.05
                    while not self._closed:
                        changed = await feed.next()
                        if changed is None:
                            self._channel_up()  # anything may have changed: start from an empty L1
                        else:
                            for full_key in changed:
                                self._drop(full_key)
            except asyncio.CancelledError:
                raise
            except CacheError as exc:
                self._channel_down(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)

    def _channel_up(self) -> None:
        # Messages may have been missed while we were not subscribed: start from an empty L1.
        self._drop_all()
        self._trusted = True
        self._subscribed.set()

    def _channel_down(self, reason: BaseException) -> None:
        if self._trusted:
            logger.warning("rediscache: L1 invalidation channel lost (%s); serving from Redis until it is back", reason)
        self._trusted = False
        self._subscribed.clear()
        self._reads.invalidate_all()

    # -- L1 bookkeeping -----------------------------------------------------------------------------

    def _drop(self, full_key: str) -> None:
        self._reads.invalidate(full_key)
        self._l1.remove(full_key)

    def _drop_all(self) -> None:
        self._reads.invalidate_all()
        self._l1.clear()

    def _promote(self, entry: CacheEntry, payload: bytes) -> None:
        now = time.monotonic()
        deadline = float("inf") if self._l1_ttl is None else now + self._l1_ttl.total_seconds()
        if entry.expires_at is not None:
            remaining = (entry.expires_at - utc_now()).total_seconds()
            if remaining <= 0:
                return
            deadline = min(deadline, now + remaining)
        copy = _L1Copy(entry, payload, entry.value if self._shared else None, deadline)
        self._l1.put(entry.key, copy, len(payload), None, utc_now())

    def _l1_copy(self, full_key: str) -> _L1Copy | None:
        slot = self._l1.slot(full_key)
        if slot is None:
            return None
        if time.monotonic() > slot.value.deadline:
            self._l1.remove(full_key)
            return None
        return slot.value

    def _from_l1(self, key: CacheKey, *, touch: bool = True) -> CacheEntry | None:
        full_key = key.full_key
        copy = self._l1_copy(full_key)
        if copy is None:
            if touch:
                self._l1_misses += 1
            return None
        value = copy.value if self._shared else self._l2.codec.decode(copy.payload, full_key)
        if touch:
            slot = self._l1.slot(full_key)
            if slot is not None:  # decoding the payload above cannot have removed it; be safe anyway
                self._l1.use(slot)
            copy.hits += 1
            copy.last_accessed = utc_now()
        return make_entry(copy.key, value, copy.created_at, copy.expires_at, copy.hits, copy.last_accessed)

    # -- the port -----------------------------------------------------------------------------------

    async def get(self, key: CacheKey) -> CacheEntry | None:
        self._ensure_listener()
        if self._trusted:
            try:
                entry = self._from_l1(key)
            except UndecodablePayload:
                self._drop(key.full_key)
                entry = None
            if entry is not None:
                self._l1_hits += 1
                self._l2.count_hit_elsewhere(key.full_key)  # in the shared total_hits too
                return entry
        full_key = key.full_key
        token = self._reads.begin(full_key)
        try:
            found = await self._l2.get_with_payload(key)
        finally:
            clean = self._reads.end(full_key, token)
        if found is None:
            return None
        entry, payload = found
        if clean and self._trusted:
            self._promote(entry, payload)
        return entry

    async def get_stale(self, key: CacheKey, max_age: timedelta | None = None) -> CacheEntry | None:
        """The entry for fail-safe: live or kept past its TTL (``set(..., stale_ttl=...)``).

        While the channel is up, an L1 copy (stored in L1 less than ``max_age`` ago, if given) is
        answered without asking L2; otherwise L2's stale read (``RedisCacheAdapter.get_stale``). If
        L2 cannot be reached, the L1 copy, even while the channel is down: the last value this
        process saw, for serving while Redis is unreachable (it may have missed an invalidation
        made meanwhile, which ``max_age`` bounds). Counts neither a hit nor a miss.
        """
        if self._trusted:
            found = self._stale_copy(key, max_age)
            if found is not None:
                return found
        try:
            return await self._l2.get_stale(key, max_age)
        except CacheError:
            found = self._stale_copy(key, max_age)
            if found is None:
                raise
            return found

    def _stale_copy(self, key: CacheKey, max_age: timedelta | None) -> CacheEntry | None:
        slot = self._l1.slot(key.full_key)
        copy = None if slot is None else slot.value
        if copy is None or (max_age is not None and time.monotonic() - copy.stored_at > max_age.total_seconds()):
            return None
        try:
            value = copy.value if self._shared else self._l2.codec.decode(copy.payload, key.full_key)
        except UndecodablePayload:
            return None
        return make_entry(copy.key, value, copy.created_at, copy.expires_at, copy.hits, copy.last_accessed)

    async def exists(self, key: CacheKey) -> bool:
        self._ensure_listener()
        if self._trusted and self._l1_copy(key.full_key) is not None:
            return True
        return await self._l2.exists(key)

    async def get_many(self, keys: Sequence[CacheKey]) -> list[CacheEntry | None]:
        self._ensure_listener()
        results: list[CacheEntry | None] = [None] * len(keys)
        missing: list[int] = []
        for i, key in enumerate(keys):
            entry = self._from_l1(key) if self._trusted else None
            if entry is None:
                missing.append(i)
            else:
                self._l1_hits += 1
                self._l2.count_hit_elsewhere(key.full_key)
                results[i] = entry
        if not missing:
            return results
        asked = [keys[i] for i in missing]
        tokens = [self._reads.begin(key.full_key) for key in asked]
        try:
            found = await self._l2.get_many_with_payloads(asked)
        finally:
            clean = [self._reads.end(key.full_key, token) for key, token in zip(asked, tokens, strict=True)]
        for i, item, ok in zip(missing, found, clean, strict=True):
            if item is not None:
                results[i] = item[0]
                if ok and self._trusted:
                    self._promote(*item)
        return results

    async def set(
        self, key: CacheKey, value: Any, ttl: timedelta | None = None, *, stale_ttl: timedelta | None = None
    ) -> None:
        """Write through to L2 (``stale_ttl``: kept there past its TTL for :meth:`get_stale`)."""
        self._ensure_listener()
        try:
            await self._l2.set(key, value, ttl, stale_ttl=stale_ttl)
        finally:
            # Before returning: a read of ours that raced this write must not keep the old value.
            self._drop(key.full_key)

    async def set_many(self, items: Iterable[tuple[CacheKey, Any]], ttl: timedelta | None = None) -> None:
        self._ensure_listener()
        pairs = list(items)
        try:
            await self._l2.set_many(pairs, ttl)
        finally:
            for key, _ in pairs:
                self._drop(key.full_key)

    async def delete(self, key: CacheKey) -> bool:
        self._ensure_listener()
        try:
            return await self._l2.delete(key)
        finally:
            self._drop(key.full_key)

    async def delete_many(self, keys: Iterable[CacheKey]) -> int:
        self._ensure_listener()
        asked = list(keys)
        try:
            return await self._l2.delete_many(asked)
        finally:
            for key in asked:
                self._drop(key.full_key)

    async def delete_by_pattern(self, pattern: str) -> int:
        self._ensure_listener()
        try:
            return await self._l2.delete_by_pattern(pattern)
        finally:
            self._reads.invalidate_all()
            self._l1.remove_matching(pattern)

    async def delete_by_namespace(self, namespace: str) -> int:
        self._ensure_listener()
        try:
            return await self._l2.delete_by_namespace(namespace)
        finally:
            self._reads.invalidate_all()
            self._l1.remove_namespace(namespace)

    async def delete_by_tags(self, tags: list[str]) -> int:
        self._ensure_listener()
        try:
            return await self._l2.delete_by_tags(tags)
        finally:
            self._reads.invalidate_all()
            self._l1.remove_tags(tags)

    async def clear(self) -> None:
        self._ensure_listener()
        try:
            await self._l2.clear()
        finally:
            self._drop_all()

    async def cleanup_expired(self) -> int:
        self._drop_l1_past_deadline()
        return await self._l2.cleanup_expired()

    async def get_stats(self) -> CacheStats:
        """The shared figures, exactly as every other instance on this prefix reports them
        (``total_hits``, ``total_misses``, ``hit_rate``, ``total_entries``, ``memory_usage_bytes``
        ...): L1 hits are flushed into the shared hit counters with the L2's accounting, so every
        hit of every instance counts once, in every instance's figures. This process's L1 is in
        fields of its own: ``l1_hits`` (of ``total_hits``, those this process served from L1),
        ``l1_entries``, ``l1_trusted``. Summing the shared figures over processes double-counts."""
        shared = await self._l2.get_stats()
        figures = shared.model_dump()
        figures.update(l1_hits=self._l1_hits, l1_entries=len(self._l1), l1_trusted=self._trusted)
        return CacheStats.model_validate(figures)

    async def try_lock(self, name: str, token: str, ttl: timedelta) -> bool:
        """A lock in L2, shared by every instance (see ``RedisCacheAdapter.try_lock``)."""
        return await self._l2.try_lock(name, token, ttl)

    async def unlock(self, name: str, token: str) -> bool:
        return await self._l2.unlock(name, token)

    async def get_l1_stats(self) -> CacheStats:
        """This instance's L1 on its own (its hits, misses, entries, evictions)."""
        l1 = self._l1
        reads = self._l1_hits + self._l1_misses
        oldest = l1.oldest_live(utc_now())
        newest = l1.newest_live(utc_now())
        return CacheStats.model_validate(
            {
                "total_entries": len(l1),
                "total_hits": self._l1_hits,
                "total_misses": self._l1_misses,
                "hit_rate": self._l1_hits / reads if reads else 0.0,
                "memory_usage_bytes": l1.memory_bytes,
                "oldest_entry": None if oldest is None else oldest.value.created_at,
                "newest_entry": None if newest is None else newest.value.created_at,
                "evictions": l1.evictions,
            }
        )

    def _drop_l1_past_deadline(self) -> None:
        now = time.monotonic()
        self._l1.remove_all([slot.full_key for slot in self._l1.slots() if now > slot.value.deadline])

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._trusted = False
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        metrics.retire_source(self._metrics_source)
        await self._l2.close()
