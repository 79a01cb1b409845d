"""The in-process adapter: the port's semantics over an ``EntryStore`` of this process.

The store (``rediscache._store``) holds the entries with their namespace and tag indexes, expiry
heap and eviction order; this module adds what the port says a read and a write are (hit and miss
counts, ``hit_count``/``last_accessed``, TTL checks, compression, size estimates, stats).

Every operation runs without an ``await`` between reading and writing the store, so each is atomic
with respect to other coroutines of the event loop.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import sys
import weakref
import zlib
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from types import BuiltinFunctionType, FunctionType, MethodType, ModuleType
from typing import Any
from uuid import UUID

from rediscache._models import CacheEntry, CacheKey, CacheStats, utc_now, validate_ttl
from rediscache._port import CacheAdapter
from rediscache._store import EntryStore, EvictionPolicy, Slot, count_due, require_policy
from rediscache.serialization import MsgpackCodec

__all__ = ["EvictionPolicy", "MemoryCacheAdapter"]

logger = logging.getLogger(__name__)

_ZLIB_LEVEL = 6

# Types whose size sys.getsizeof reports whole (they hold no references worth following).
_ATOMIC_TYPES: frozenset[type] = frozenset(
    {str, bytes, bytearray, int, float, complex, bool, type(None)} | {datetime, date, time, timedelta, Decimal, UUID}
)
# Objects whose attributes are shared program state, not part of a cached value.
_OPAQUE_TYPES = (type, ModuleType, FunctionType, BuiltinFunctionType, MethodType)


def _estimate_size(value: object) -> int:
    """Bytes held by ``value`` and everything it references, counted once each (cycles are safe).

    Follows dict keys and values, the items of lists, tuples, sets, frozensets and deques, and the
    ``__dict__`` of other objects; classes, modules and functions are counted shallow. Objects with
    only ``__slots__`` are counted shallow. An estimate, computed once per write.
    """
    getsizeof = sys.getsizeof
    if type(value) in _ATOMIC_TYPES:
        return getsizeof(value)
    seen: set[int] = set()
    stack: list[object] = [value]
    total = 0
    while stack:
        obj = stack.pop()
        oid = id(obj)
        if oid in seen:
            continue
        seen.add(oid)
        try:
            total += getsizeof(obj, 64)
        except Exception:  # a broken __sizeof__ must not make the write fail
            total += 64
        if type(obj) in _ATOMIC_TYPES:
            continue
        if isinstance(obj, dict):
            stack.extend(obj)  # the keys
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset, deque)):
            stack.extend(obj)
        elif not isinstance(obj, _OPAQUE_TYPES):
            attrs = getattr(obj, "__dict__", None)
            if isinstance(attrs, dict):
                stack.append(attrs)
    return total


class _Held:
    """What the store holds for one entry: the entry as last returned, and whether its value is the
    compressed payload rather than the object."""

    __slots__ = ("compressed", "entry", "kept")

    def __init__(self, entry: CacheEntry, compressed: bool, *, kept: bool = False) -> None:
        self.entry = entry  # with compression, entry.value is the compressed payload
        self.compressed = compressed
        self.kept = kept  # stored past entry.expires_at (the store's expiry) for fail-safe reads


def _logically_expired(slot: Slot[_Held], now: datetime) -> bool:
    """Past the entry's own expiry while the store keeps it for fail-safe."""
    held = slot.value
    expires_at = held.entry.expires_at
    return held.kept and expires_at is not None and now > expires_at


class _Prepared:
    """A value checked and encoded for storage, not yet written."""

    __slots__ = ("full_key", "key", "raw_size", "size", "stored")

    def __init__(self, key: CacheKey, stored: Any, size: int, raw_size: int | None) -> None:
        self.key = key
        self.full_key = key.full_key
        self.stored = stored
        self.size = size
        self.raw_size = raw_size  # msgpack length before compression; None when stored as is


def _require_key(key: object) -> CacheKey:
    if not isinstance(key, CacheKey):
        raise TypeError(f"key must be a CacheKey, not {type(key).__name__}")
    return key


def _require_name(what: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty str, got {value!r}")
    return value


def _optional_limit(what: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int or None, not {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{what} must be positive, got {value}")
    return value


async def _cleanup_loop(adapter_ref: weakref.ref[MemoryCacheAdapter], interval: float) -> None:
    # Holds the adapter only weakly between runs, so a forgotten adapter can still be collected
    # (the loop then ends at its next wake-up).
    while True:
        await asyncio.sleep(interval)
        adapter = adapter_ref()
        if adapter is None:
            return
        try:
            removed = await adapter.cleanup_expired()
            if removed:
                logger.debug("memory cache cleanup removed %d expired entries", removed)
        except Exception:
            logger.exception("memory cache cleanup failed; will retry in %s s", interval)
        del adapter


class MemoryCacheAdapter(CacheAdapter):
    """A cache held in this process's memory, with optional size and memory limits.

    Values are stored **as they are**: no serialization and no copy. ``get`` returns the very object
    that was ``set``, so mutating a value you got back (or the one you stored) mutates the cached
    value. Store immutable values, or copy them yourself, when that matters. Any Python object can
    be cached this way, including ones no codec can encode.

    With ``enable_compression=True``, a value whose msgpack form (see
    :class:`rediscache.serialization.MsgpackCodec`) is longer than ``compression_threshold`` bytes
    is stored msgpack-encoded and zlib-compressed, and decoded on every read: such values come
    back as equal copies, not the stored object. Smaller values, and values msgpack cannot encode,
    are stored as they are (compression is an optimisation, never a filter).

    Limits: ``max_size`` caps the number of entries, ``max_memory_bytes`` the estimated bytes held
    by values (see ``get_stats``). A write that would exceed a limit first drops expired entries,
    then evicts entries by ``eviction_policy`` until the new entry fits:

    * ``"lru"``: the least recently written or read entry goes first;
    * ``"lfu"``: the least often read entry goes first (a write resets the count, since it replaces
      the entry); among equals, the least recently used.

    ``exists`` is not an access: it neither counts as a read nor changes the eviction order. A
    single value larger than ``max_memory_bytes`` is refused with ``ValueError`` and nothing is
    written (the previous entry of that key, if any, stays).

    Expired entries are never returned. They are dropped when a read or write finds them, by
    ``cleanup_expired()``, and by the optional background task (``start_cleanup_task``).
    ``cleanup_expired()`` returns how many expired entries the cache dropped on its own since the
    previous call (including those a read or write found), so its count does not depend on which
    reads happened in between; expired entries removed by ``delete*`` or ``clear`` are not counted.

    Concurrency: every operation completes without yielding to the event loop, so each is atomic
    for coroutines. The adapter is not thread-safe: use it from one event loop's thread.
    """

    def __init__(
        self,
        max_size: int | None = None,
        max_memory_bytes: int | None = None,
        eviction_policy: EvictionPolicy = "lru",
        enable_compression: bool = False,
        compression_threshold: int = 1024,
    ) -> None:
        """Raises ``ValueError`` for a non-positive limit, an unknown policy or a negative threshold."""
        limits = (_optional_limit("max_size", max_size), _optional_limit("max_memory_bytes", max_memory_bytes))
        policy = require_policy(eviction_policy)
        if isinstance(compression_threshold, bool) or not isinstance(compression_threshold, int):
            raise TypeError(f"compression_threshold must be an int, not {type(compression_threshold).__name__}")
        if compression_threshold < 0:
            raise ValueError(f"compression_threshold must be >= 0, got {compression_threshold}")
        self._compression_threshold = compression_threshold
        self._codec: MsgpackCodec | None = MsgpackCodec() if enable_compression else None
        self._store: EntryStore[_Held] = EntryStore(*limits, policy=policy)
        # Entries kept past their TTL for fail-safe (``set(..., stale_ttl=...)``): the store's expiry
        # is the end of that window, the entry's ``expires_at`` its logical expiry. This heap
        # ``(expires_at, seq, slot)`` lets ``get_stats`` find the logically expired ones in time
        # proportional to their number.
        self._kept: list[tuple[datetime, int, Slot[_Held]]] = []
        self._kept_seq = itertools.count()

        self._hits = 0
        self._misses = 0
        self._expired_reported = 0  # the store's expired_dropped at the last cleanup_expired()

        self._compressions = 0
        self._decompressions = 0
        self._bytes_before = 0
        self._bytes_after = 0

        self._cleanup_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ reads

    async def get(self, key: CacheKey) -> CacheEntry | None:
        """The live entry, touched by this read (``hit_count`` + 1, ``last_accessed`` now), or ``None``.

        Counts one hit or one miss. An expired entry found here is dropped and counts as a miss.
        """
        return self._get(_require_key(key).full_key)

    def _get(self, full_key: str) -> CacheEntry | None:
        store = self._store
        slot = store.slot(full_key)
        if slot is None:
            self._misses += 1
            return None
        now = utc_now()
        if slot.expired(now):
            store.drop_expired(slot)
            self._misses += 1
            return None
        held = slot.value
        entry = held.entry
        if held.kept and entry.expires_at is not None and now > entry.expires_at:
            self._misses += 1  # logically expired: kept for get_stale only
            return None
        value: Any = None
        if held.compressed:
            try:
                value = self._decompress(entry.value)
            except Exception:
                # Cannot happen for bytes we compressed ourselves, short of a codec change
                # (e.g. a model class unregistered); a miss is safer than an exception.
                logger.warning("memory cache: dropping undecodable entry %r", full_key, exc_info=True)
                store.remove(full_key)
                self._misses += 1
                return None
        # model_copy skips validation: the stored entry is already valid.
        touched = entry.model_copy(update={"hit_count": entry.hit_count + 1, "last_accessed": now})
        held.entry = touched
        store.use(slot)
        self._hits += 1
        if held.compressed:
            return touched.model_copy(update={"value": value})
        return touched

    async def get_many(self, keys: Sequence[CacheKey]) -> list[CacheEntry | None]:
        """Entries for ``keys`` in the same order (``None`` for each miss); every key is checked first."""
        full_keys = [_require_key(key).full_key for key in keys]
        return [self._get(full_key) for full_key in full_keys]

    async def exists(self, key: CacheKey) -> bool:
        """Whether a live entry exists. Counts neither a hit nor a miss and is not an access."""
        full_key = _require_key(key).full_key
        slot = self._store.slot(full_key)
        if slot is None:
            return False
        now = utc_now()
        if slot.expired(now):
            self._store.drop_expired(slot)
            return False
        return not _logically_expired(slot, now)

    async def get_stale(self, key: CacheKey, max_age: timedelta | None = None) -> CacheEntry | None:
        """The entry, live or kept past its TTL for fail-safe (``set(..., stale_ttl=...)``), or ``None``;
        with ``max_age``, only one stored less than that long ago. Counts neither a hit nor a miss and
        is not an access."""
        full_key = _require_key(key).full_key
        slot = self._store.slot(full_key)
        if slot is None:
            return None
        now = utc_now()
        if slot.expired(now):
            self._store.drop_expired(slot)
            return None
        held = slot.value
        entry = held.entry
        if max_age is not None and now - entry.created_at > max_age:
            return None
        if held.compressed:
            try:
                return entry.model_copy(update={"value": self._decompress(entry.value)})
            except Exception:
                logger.warning("memory cache: undecodable stale entry %r", full_key, exc_info=True)
                return None
        return entry

    # ----------------------------------------------------------------- writes

    async def set(
        self, key: CacheKey, value: Any, ttl: timedelta | None = None, *, stale_ttl: timedelta | None = None
    ) -> None:
        """Replace the whole entry of ``key.full_key`` (value, TTL, namespace, tags, counters).

        With ``stale_ttl``, the entry stays stored that long past its TTL for :meth:`get_stale`
        (logically expired: ``get``, ``exists``, ``get_many`` and the stats' counts do not see it;
        every invalidation removes it). Raises ``TypeError`` for a key that is not a ``CacheKey``,
        ``ValueError`` for a non-positive TTL or a value larger than ``max_memory_bytes``, before
        anything is written. May evict other entries to respect the limits.
        """
        _require_key(key)
        ttl = validate_ttl(ttl)
        keep = validate_ttl(stale_ttl) if ttl is not None else None
        self._commit(self._prepare(key, value), ttl, keep)

    async def set_many(self, items: Iterable[tuple[CacheKey, Any]], ttl: timedelta | None = None) -> None:
        """Set every ``(key, value)`` pair with one TTL; all are checked and encoded before any is written."""
        pairs = list(items)
        for key, _ in pairs:
            _require_key(key)
        ttl = validate_ttl(ttl)
        prepared = [self._prepare(key, value) for key, value in pairs]
        for item in prepared:
            self._commit(item, ttl)

    def _prepare(self, key: CacheKey, value: Any) -> _Prepared:
        codec = self._codec
        if codec is not None:
            body: bytes | None
            try:
                body = codec.dumps(value)
            except Exception:
                # Not msgpack-encodable (or the encoder gave up): compression is an optimisation,
                # so such a value is simply stored as it is.
                body = None
            if body is not None and len(body) > self._compression_threshold:
                payload = zlib.compress(body, _ZLIB_LEVEL)
                prepared = _Prepared(key, payload, len(payload), len(body))
                self._check_fits(prepared)
                return prepared
        prepared = _Prepared(key, value, _estimate_size(value), None)
        self._check_fits(prepared)
        return prepared

    def _check_fits(self, prepared: _Prepared) -> None:
        if not self._store.fits(prepared.size):
            raise ValueError(
                f"value of {prepared.size} bytes exceeds max_memory_bytes ({self._store.max_memory_bytes}) "
                f"for key {prepared.full_key!r}; nothing was written"
            )

    def _commit(self, prepared: _Prepared, ttl: timedelta | None, keep: timedelta | None = None) -> None:
        # Nothing below raises: the checks were all made by the caller.
        now = utc_now()
        expires_at = None if ttl is None else now + ttl
        entry = CacheEntry.model_construct(
            key=prepared.key,
            value=prepared.stored,
            created_at=now,
            expires_at=expires_at,
            hit_count=0,
            last_accessed=now,
        )
        gone_at = None if expires_at is None else expires_at if keep is None else expires_at + keep
        held = _Held(entry, prepared.raw_size is not None, kept=keep is not None)
        slot = self._store.put(prepared.key, held, prepared.size, gone_at, now)
        if keep is not None and expires_at is not None:
            self._remember_kept(slot, expires_at)
        if prepared.raw_size is not None:
            self._compressions += 1
            self._bytes_before += prepared.raw_size
            self._bytes_after += prepared.size

    # -------------------------------------------------------------- deletions

    async def delete(self, key: CacheKey) -> bool:
        """Remove the entry; ``True`` only if a live entry was removed (an expired one is removed too)."""
        full_key = _require_key(key).full_key
        return self._count_live(self._store.remove_all((full_key,))) == 1

    async def delete_many(self, keys: Iterable[CacheKey]) -> int:
        """Delete every key (all are checked first); how many live entries were removed."""
        full_keys = [_require_key(key).full_key for key in keys]
        return self._count_live(self._store.remove_all(full_keys))

    async def delete_by_pattern(self, pattern: str) -> int:
        """Remove entries whose ``full_key`` (as UTF-8 bytes) matches the Redis glob ``pattern``.

        Returns the number of live entries removed. Costs a scan of every key: O(n).
        """
        _require_name("pattern", pattern)
        return self._count_live(self._store.remove_matching(pattern))

    async def delete_by_namespace(self, namespace: str) -> int:
        """Remove the entries whose namespace is exactly ``namespace``; the number of live ones."""
        _require_name("namespace", namespace)
        return self._count_live(self._store.remove_namespace(namespace))

    async def delete_by_tags(self, tags: list[str]) -> int:
        """Remove the entries carrying any of ``tags``; each counts once, live entries only.

        ``tags`` must be a list (or tuple, set) of non-empty strings: ``ValueError`` otherwise.
        """
        if isinstance(tags, (str, bytes)) or not isinstance(tags, (list, tuple, set, frozenset)):
            raise ValueError(f"tags must be a list of str, not {type(tags).__name__}")
        for tag in tags:
            _require_name("tag", tag)
        return self._count_live(self._store.remove_tags(tags))

    async def clear(self) -> None:
        """Remove every entry and its bookkeeping. Hit, miss, eviction and compression counters stay."""
        self._store.clear()
        self._kept.clear()
        self._expired_reported = self._store.expired_dropped

    async def cleanup_expired(self) -> int:
        """Drop every expired entry; how many expired entries were dropped since the previous call.

        That count includes expired entries a read or write dropped on its way in between (but not
        those removed by ``delete*`` or ``clear``); called again at once, it returns 0.
        """
        store = self._store
        store.purge_expired(utc_now(), None)
        removed = store.expired_dropped - self._expired_reported
        self._expired_reported = store.expired_dropped
        return removed

    @staticmethod
    def _count_live(removed: list[Slot[_Held]]) -> int:
        """How many of the removed entries were live (an expired one is removed but not counted)."""
        if not removed:
            return 0
        now = utc_now()
        return sum(1 for slot in removed if not slot.expired(now) and not _logically_expired(slot, now))

    def _remember_kept(self, slot: Slot[_Held], expires_at: datetime) -> None:
        kept = self._kept
        store = self._store
        if len(kept) > 2 * len(store) + 64:  # items of entries since removed or replaced: compact them away
            kept[:] = [item for item in kept if store.slot(item[2].full_key) is item[2]]
            heapq.heapify(kept)
        heapq.heappush(kept, (expires_at, next(self._kept_seq), slot))

    def _count_kept(self, now: datetime) -> int:
        """Entries past their logical expiry but inside their fail-safe window: the subtree of the
        heap whose expiry passed (those past the window too are the store's expired ones)."""
        kept = self._kept
        store = self._store
        while kept and (store.slot(kept[0][2].full_key) is not kept[0][2] or kept[0][2].expired(now)):
            heapq.heappop(kept)  # removed, replaced or past its window: never counted again
        return count_due(kept, now, lambda slot: store.slot(slot.full_key) is slot and not slot.expired(now))

    def get_eviction_policy(self) -> EvictionPolicy:
        """The current eviction policy, ``"lru"`` or ``"lfu"``."""
        return self._store.policy

    def set_eviction_policy(self, policy: EvictionPolicy) -> None:
        """Switch the eviction policy at run time (O(n log n) rebuild of the order; entries stay).

        The new order is derived from what is known: recency of the last read or write, and for
        ``"lfu"`` each entry's ``hit_count``. Raises ``ValueError`` for an unknown policy.
        """
        self._store.set_policy(policy)

    # ------------------------------------------------------------------ stats

    async def get_stats(self) -> CacheStats:
        """A snapshot of the cache's figures.

        ``total_entries`` counts live entries; ``memory_usage_bytes`` is the estimated size of the
        values held (for compressed values their compressed length, otherwise a recursive
        ``sys.getsizeof``; keys and bookkeeping are not counted), including expired entries not yet
        dropped; ``oldest_entry``/``newest_entry`` are the ``created_at`` of the oldest and newest live
        entry. Extra fields: ``evictions`` (entries evicted for a limit) and ``expired_removed``
        (expired entries the cache dropped on its own). Costs O(1 + expired entries not yet dropped).
        """
        store = self._store
        now = utc_now()
        reads = self._hits + self._misses
        oldest = store.oldest_live(now)
        newest = store.newest_live(now)
        return CacheStats.model_validate(
            {
                "total_entries": len(store) - store.count_expired(now) - self._count_kept(now),
                "total_hits": self._hits,
                "total_misses": self._misses,
                "hit_rate": self._hits / reads if reads else 0.0,
                "memory_usage_bytes": store.memory_bytes,
                "oldest_entry": None if oldest is None else oldest.value.entry.created_at,
                "newest_entry": None if newest is None else newest.value.entry.created_at,
                "evictions": store.evictions,
                "expired_removed": store.expired_dropped,
            }
        )

    def get_compression_stats(self) -> dict[str, int | float]:
        """Compression figures since the cache was created.

        ``compressions`` (values stored compressed), ``decompressions`` (reads that decoded one),
        ``bytes_before``/``bytes_after`` (msgpack and compressed lengths of the compressed values),
        ``ratio`` (``bytes_after / bytes_before``; 1.0 before anything was compressed), and
        ``enabled`` (1 or 0).
        """
        return {
            "enabled": int(self._codec is not None),
            "compressions": self._compressions,
            "decompressions": self._decompressions,
            "bytes_before": self._bytes_before,
            "bytes_after": self._bytes_after,
            "ratio": self._bytes_after / self._bytes_before if self._bytes_before else 1.0,
        }

    def _decompress(self, payload: bytes) -> Any:
        codec = self._codec
        assert codec is not None  # only written compressed when compression is on, which is for life
        value = codec.loads(zlib.decompress(payload))
        self._decompressions += 1
        return value

    # ------------------------------------------------------- background cleanup

    def start_cleanup_task(self, cleanup_interval_seconds: float = 60.0) -> None:
        """Start a task on the running event loop that calls ``cleanup_expired`` every interval.

        Idempotent: while a task runs on this loop, calling again does nothing (the first interval
        stays). Raises ``RuntimeError`` without a running loop, ``ValueError`` for an interval that
        is not a positive finite number. The task holds the adapter weakly and ends if the adapter
        is garbage-collected; ``stop_cleanup_task()`` or ``close()`` stop it.
        """
        interval = cleanup_interval_seconds
        if isinstance(interval, bool) or not isinstance(interval, (int, float)):
            raise ValueError(f"cleanup_interval_seconds must be a number, got {interval!r}")
        if not (interval > 0 and math.isfinite(interval)):
            raise ValueError(f"cleanup_interval_seconds must be positive and finite, got {interval!r}")
        loop = asyncio.get_running_loop()
        task = self._cleanup_task
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        self.stop_cleanup_task()
        self._cleanup_task = loop.create_task(
            _cleanup_loop(weakref.ref(self), float(interval)), name="rediscache-memory-cleanup"
        )

    def stop_cleanup_task(self) -> None:
        """Cancel the background cleanup task, if any. Safe to call when none runs."""
        task, self._cleanup_task = self._cleanup_task, None
        if task is not None and not task.done() and not task.get_loop().is_closed():
            task.cancel()

    async def close(self) -> None:
        """Stop the background cleanup task and wait for it to end. Entries stay; safe to call twice."""
        task = self._cleanup_task
        self.stop_cleanup_task()
        if task is not None and not task.done():
            try:
                same_loop = task.get_loop() is asyncio.get_running_loop()
            except RuntimeError:
                same_loop = False
            if same_loop:
                await asyncio.wait([task])

    # ------------------------------------------------------------------ tests

    def _check_invariants(self) -> None:
        """Raise ``AssertionError`` if any index disagrees with the entries (for tests; O(n))."""
        store = self._store
        store.check_invariants()
        previous: datetime | None = None
        for slot in store.slots():
            entry = slot.value.entry
            if slot.expires_at != entry.expires_at:
                raise AssertionError(f"expiry of {slot.full_key!r} out of step")
            if previous is not None and entry.created_at < previous:
                raise AssertionError("entries not in creation order")
            previous = entry.created_at
