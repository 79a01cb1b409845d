"""The in-process adapter: entries live in a dict of this process, indexed for cheap invalidation.

Data structures (``n`` entries):

* ``_entries``: ``full_key -> _Slot``, in creation order (an ``OrderedDict``, so the oldest and newest
  entry are at its two ends even after many deletes).
* ``_by_namespace`` / ``_by_tag``: ``name -> set of full_keys``, so namespace and tag invalidation cost
  what they delete, not ``n``.
* ``_expiry_heap``: ``(gone_at, seq, slot)`` for every entry with a TTL; entries removed by other
  means leave a stale item behind, skipped when popped and compacted away when stale items are the
  majority. Expired entries are found in time proportional to their number. ``gone_at`` is the
  entry's expiry, or, for an entry kept past it for fail-safe (``set(..., stale_ttl=...)``), the end
  of that window: until then the entry is logically expired (``get``/``exists``/stats skip it, only
  ``get_stale`` returns it) and still in every index, so invalidations remove it.
* ``_kept_heap``: ``(expires_at, seq, slot)`` for the entries with a fail-safe window, so that
  ``get_stats`` finds the logically expired ones in time proportional to their number.
* The eviction order: an ``OrderedDict`` in recency order (LRU), or a linked list of frequency
  buckets, each an ``OrderedDict`` in recency order (LFU). Both are O(1) per read, write and eviction.

Every operation runs without an ``await`` between reading and writing this state, so each is atomic
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
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from types import BuiltinFunctionType, FunctionType, MethodType, ModuleType
from typing import Any, Literal
from uuid import UUID

from rediscache._glob import compile_glob, literal_prefix
from rediscache._models import CacheEntry, CacheKey, CacheStats, utc_now, validate_ttl
from rediscache._port import CacheAdapter
from rediscache.serialization import MsgpackCodec

__all__ = ["EvictionPolicy", "MemoryCacheAdapter"]

logger = logging.getLogger(__name__)

EvictionPolicy = Literal["lru", "lfu"]
# name (namespace or tag) -> full_keys of the entries carrying it
_Index = dict[str, set[str]]
_POLICIES: tuple[str, ...] = ("lru", "lfu")

# A write drops at most this many expired entries on its way (more only when it needs the room):
# enough to outpace the writes that create entries, small enough to keep one write's latency bounded.
_PURGE_PER_WRITE = 8
# Stale heap items are compacted away once they are the majority and at least this many.
_MIN_STALE_TO_COMPACT = 1024
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


class _FreqNode:
    """One LFU frequency bucket: the entries read ``freq - 1`` times, least recently used first."""

    __slots__ = ("freq", "keys", "next", "prev")

    def __init__(self, freq: int) -> None:
        self.freq = freq
        self.keys: OrderedDict[str, _Slot] = OrderedDict()
        self.prev: _FreqNode = self
        self.next: _FreqNode = self


class _Slot:
    """What the adapter keeps for one entry: the stored entry plus its bookkeeping."""

    __slots__ = ("compressed", "entry", "expires_at", "full_key", "gone_at", "node", "size", "tick")

    def __init__(
        self, entry: CacheEntry, full_key: str, size: int, compressed: bool, tick: int, gone_at: datetime | None
    ) -> None:
        self.entry = entry  # with compression, entry.value is the compressed payload
        self.full_key = full_key
        self.expires_at: datetime | None = entry.expires_at  # the logical expiry
        self.gone_at = gone_at  # when the entry is dropped: expires_at, or the end of its fail-safe window
        self.size = size
        self.compressed = compressed
        self.tick = tick  # when last written or read, to rebuild the recency order on a policy switch
        self.node: _FreqNode | None = None  # the LFU bucket, in LFU mode


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


def _require_policy(policy: object) -> EvictionPolicy:
    if policy == "lru":
        return "lru"
    if policy == "lfu":
        return "lfu"
    raise ValueError(f"eviction_policy must be one of {_POLICIES}, got {policy!r}")


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
        self._max_size = _optional_limit("max_size", max_size)
        self._max_memory_bytes = _optional_limit("max_memory_bytes", max_memory_bytes)
        self._policy: EvictionPolicy = _require_policy(eviction_policy)
        if isinstance(compression_threshold, bool) or not isinstance(compression_threshold, int):
            raise TypeError(f"compression_threshold must be an int, not {type(compression_threshold).__name__}")
        if compression_threshold < 0:
            raise ValueError(f"compression_threshold must be >= 0, got {compression_threshold}")
        self._compression_threshold = compression_threshold
        self._codec: MsgpackCodec | None = MsgpackCodec() if enable_compression else None

        self._entries: OrderedDict[str, _Slot] = OrderedDict()
        self._by_namespace: _Index = {}
        self._by_tag: _Index = {}
        self._lru: OrderedDict[str, _Slot] = OrderedDict()
        self._lfu_head = _FreqNode(0)  # sentinel of a circular list, lowest frequency first
        self._expiry_heap: list[tuple[datetime, int, _Slot]] = []
        self._kept_heap: list[tuple[datetime, int, _Slot]] = []
        self._heap_seq = itertools.count()
        self._stale_heap_items = 0
        self._memory_bytes = 0
        self._tick = 0

        self._hits = 0
        self._misses = 0
        self._evictions = 0
        self._expired_removed = 0
        self._expired_unreported = 0

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
        slot = self._entries.get(full_key)
        if slot is None:
            self._misses += 1
            return None
        entry = slot.entry
        now = utc_now()
        expires_at = slot.expires_at
        if expires_at is not None and now > expires_at:
            self._expired(slot, now)
            self._misses += 1
            return None
        value: Any = None
        if slot.compressed:
            try:
                value = self._decompress(entry.value)
            except Exception:
                # Cannot happen for bytes we compressed ourselves, short of a codec change
                # (e.g. a model class unregistered); a miss is safer than an exception.
                logger.warning("memory cache: dropping undecodable entry %r", full_key, exc_info=True)
                self._unlink(slot)
                self._misses += 1
                return None
        # model_copy skips validation: the stored entry is already valid.
        touched = entry.model_copy(update={"hit_count": entry.hit_count + 1, "last_accessed": now})
        slot.entry = touched
        self._tick += 1
        slot.tick = self._tick
        if self._policy == "lru":
            self._lru.move_to_end(full_key)
        else:
            self._lfu_bump(slot)
        self._hits += 1
        if slot.compressed:
            return touched.model_copy(update={"value": value})
        return touched

    async def get_many(self, keys: Sequence[CacheKey]) -> list[CacheEntry | None]:
        """Entries for ``keys`` in the same order (``None`` for each miss); every key is checked first."""
        full_keys = [_require_key(key).full_key for key in keys]
        return [self._get(full_key) for full_key in full_keys]

    async def exists(self, key: CacheKey) -> bool:
        """Whether a live entry exists. Counts neither a hit nor a miss and is not an access."""
        full_key = _require_key(key).full_key
        slot = self._entries.get(full_key)
        if slot is None:
            return False
        now = utc_now()
        if slot.expires_at is not None and now > slot.expires_at:
            self._expired(slot, now)
            return False
        return True

    async def get_stale(self, key: CacheKey, max_age: timedelta | None = None) -> CacheEntry | None:
        """The entry, live or kept past its TTL for fail-safe (``set(..., stale_ttl=...)``), or ``None``;
        with ``max_age``, only one stored less than that long ago. Counts neither a hit nor a miss and
        is not an access."""
        full_key = _require_key(key).full_key
        slot = self._entries.get(full_key)
        if slot is None:
            return None
        now = utc_now()
        if slot.gone_at is not None and now > slot.gone_at:
            self._drop_expired(slot)
            return None
        entry = slot.entry
        if max_age is not None and now - entry.created_at > max_age:
            return None
        if slot.compressed:
            try:
                return entry.model_copy(update={"value": self._decompress(entry.value)})
            except Exception:
                logger.warning("memory cache: undecodable stale entry %r", full_key, exc_info=True)
                return None
        return entry

    def _expired(self, slot: _Slot, now: datetime) -> None:
        """A logically expired entry met by a read: dropped, unless kept for fail-safe."""
        if slot.gone_at is None or now > slot.gone_at:
            self._drop_expired(slot)

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
        limit = self._max_memory_bytes
        if limit is not None and prepared.size > limit:
            raise ValueError(
                f"value of {prepared.size} bytes exceeds max_memory_bytes ({limit}) "
                f"for key {prepared.full_key!r}; nothing was written"
            )

    def _commit(self, prepared: _Prepared, ttl: timedelta | None, keep: timedelta | None = None) -> None:
        # Nothing below raises: the checks were all made by the caller.
        full_key = prepared.full_key
        now = utc_now()
        old = self._entries.get(full_key)
        if old is not None:
            if old.expires_at is not None and now > old.expires_at:
                self._drop_expired(old)
            else:
                self._unlink(old)
        self._purge_expired(now, _PURGE_PER_WRITE)
        self._make_room(prepared.size, now)

        expires_at = None if ttl is None else now + ttl
        entry = CacheEntry.model_construct(
            key=prepared.key,
            value=prepared.stored,
            created_at=now,
            expires_at=expires_at,
            hit_count=0,
            last_accessed=now,
        )
        self._tick += 1
        gone_at = expires_at if expires_at is None or keep is None else expires_at + keep
        slot = _Slot(entry, full_key, prepared.size, prepared.raw_size is not None, self._tick, gone_at)
        self._entries[full_key] = slot
        key = prepared.key
        if key.namespace is not None:
            self._by_namespace.setdefault(key.namespace, set()).add(full_key)
        for tag in key.tags:
            self._by_tag.setdefault(tag, set()).add(full_key)
        if self._policy == "lru":
            self._lru[full_key] = slot
        else:
            self._lfu_insert_new(slot)
        if gone_at is not None:
            heapq.heappush(self._expiry_heap, (gone_at, next(self._heap_seq), slot))
        if keep is not None and expires_at is not None:
            kept = self._kept_heap
            if len(kept) > 2 * len(self._entries) + 64:  # items of removed entries: compact them away
                kept[:] = [item for item in kept if self._entries.get(item[2].full_key) is item[2]]
                heapq.heapify(kept)
            heapq.heappush(kept, (expires_at, next(self._heap_seq), slot))
        self._memory_bytes += prepared.size
        if prepared.raw_size is not None:
            self._compressions += 1
            self._bytes_before += prepared.raw_size
            self._bytes_after += prepared.size

    def _make_room(self, size: int, now: datetime) -> None:
        max_size = self._max_size
        max_memory = self._max_memory_bytes
        if not self._over_limit(max_size, max_memory, size):
            return
        self._purge_expired(now, None)
        while self._over_limit(max_size, max_memory, size):
            victim = self._victim()
            if victim is None:  # empty: the value alone fits (checked in _check_fits)
                return
            if victim.expires_at is not None and now > victim.expires_at:
                self._drop_expired(victim)
            else:
                self._unlink(victim)
                self._evictions += 1

    def _over_limit(self, max_size: int | None, max_memory: int | None, size: int) -> bool:
        return (max_size is not None and len(self._entries) >= max_size) or (
            max_memory is not None and self._memory_bytes + size > max_memory
        )

    # ------------------------------------------- for an adapter layered on top (the hybrid's L1)

    def put(self, key: CacheKey, value: Any, ttl: timedelta | None, size: int) -> None:
        """Store ``value`` as it is, with a size the caller measured (no estimate, no compression)."""
        self._commit(_Prepared(key, value, size, None), ttl)

    def peek(self, full_key: str) -> Any | None:
        """The stored value of ``full_key``, or ``None``; changes nothing (no expiry check either:
        the layer on top stores without a TTL and keeps its own deadlines)."""
        slot = self._entries.get(full_key)
        return None if slot is None else slot.entry.value

    def mark_used(self, full_key: str, *, hit: bool) -> None:
        """Count a read of ``full_key`` as a hit or a miss; a hit is a use for eviction (LRU/LFU)."""
        if not hit:
            self._misses += 1
            return
        slot = self._entries[full_key]
        self._tick += 1
        slot.tick = self._tick
        if self._policy == "lru":
            self._lru.move_to_end(full_key)
        else:
            self._lfu_bump(slot)
        self._hits += 1

    def discard(self, full_key: str) -> None:
        """Forget one entry if present (not counted as a deletion)."""
        self._remove_all((full_key,))

    def discard_all(self) -> None:
        """Forget every entry at once (counters stay)."""
        self._entries.clear()
        self._by_namespace.clear()
        self._by_tag.clear()
        self._lru.clear()
        self._lfu_head.next = self._lfu_head.prev = self._lfu_head
        self._expiry_heap.clear()
        self._kept_heap.clear()
        self._stale_heap_items = 0
        self._memory_bytes = 0

    def entry_count(self) -> int:
        """Entries held, expired ones not yet dropped included."""
        return len(self._entries)

    # -------------------------------------------------------------- deletions

    async def delete(self, key: CacheKey) -> bool:
        """Remove the entry; ``True`` only if a live entry was removed (an expired one is removed too)."""
        full_key = _require_key(key).full_key
        slot = self._entries.get(full_key)
        if slot is None:
            return False
        return self._remove(slot, utc_now())

    async def delete_many(self, keys: Iterable[CacheKey]) -> int:
        """Delete every key (all are checked first); how many live entries were removed."""
        full_keys = [_require_key(key).full_key for key in keys]
        now = utc_now()
        removed = 0
        for full_key in full_keys:
            slot = self._entries.get(full_key)
            if slot is not None:
                removed += self._remove(slot, now)
        return removed

    async def delete_by_pattern(self, pattern: str) -> int:
        """Remove entries whose ``full_key`` (as UTF-8 bytes) matches the Redis glob ``pattern``.

        Returns the number of live entries removed. Costs a scan of every key: O(n).
        """
        _require_name("pattern", pattern)
        matches = compile_glob(pattern)
        prefix = literal_prefix(pattern)
        now = utc_now()
        removed = 0
        # A snapshot of the keys: the dict changes as we remove.
        for full_key in list(self._entries):
            if full_key.startswith(prefix) and matches(full_key.encode("utf-8")):
                slot = self._entries.get(full_key)
                if slot is not None:
                    removed += self._remove(slot, now)
        return removed

    async def delete_by_namespace(self, namespace: str) -> int:
        """Remove the entries whose namespace is exactly ``namespace``; the number of live ones."""
        _require_name("namespace", namespace)
        members = self._by_namespace.get(namespace)
        if not members:
            return 0
        return self._remove_all(list(members))

    async def delete_by_tags(self, tags: list[str]) -> int:
        """Remove the entries carrying any of ``tags``; each counts once, live entries only.

        ``tags`` must be a list (or tuple, set) of non-empty strings: ``ValueError`` otherwise.
        """
        if isinstance(tags, (str, bytes)) or not isinstance(tags, (list, tuple, set, frozenset)):
            raise ValueError(f"tags must be a list of str, not {type(tags).__name__}")
        for tag in tags:
            _require_name("tag", tag)
        full_keys: set[str] = set()
        for tag in tags:
            members = self._by_tag.get(tag)
            if members:
                full_keys.update(members)
        return self._remove_all(full_keys)

    async def clear(self) -> None:
        """Remove every entry and its bookkeeping. Hit, miss, eviction and compression counters stay."""
        self.discard_all()
        self._expired_unreported = 0

    async def cleanup_expired(self) -> int:
        """Drop every expired entry; how many expired entries were dropped since the previous call.

        That count includes expired entries a read or write dropped on its way in between (but not
        those removed by ``delete*`` or ``clear``); called again at once, it returns 0.
        """
        self._purge_expired(utc_now(), None)
        removed = self._expired_unreported
        self._expired_unreported = 0
        return removed

    def _remove_all(self, full_keys: Iterable[str]) -> int:
        now = utc_now()
        removed = 0
        for full_key in full_keys:
            slot = self._entries.get(full_key)
            if slot is not None:
                removed += self._remove(slot, now)
        return removed

    def _remove(self, slot: _Slot, now: datetime) -> bool:
        """Remove an entry on request; whether it was live."""
        live = slot.expires_at is None or not now > slot.expires_at
        self._unlink(slot)
        return live

    def _drop_expired(self, slot: _Slot) -> None:
        """Remove an expired entry the cache found on its own."""
        self._unlink(slot)
        self._expired_removed += 1
        self._expired_unreported += 1

    def _purge_expired(self, now: datetime, limit: int | None) -> None:
        kept = self._kept_heap
        while kept:
            root = kept[0][2]
            gone_at = root.gone_at
            if self._entries.get(root.full_key) is root and gone_at is not None and not gone_at < now:
                break
            heapq.heappop(kept)  # removed, or past its fail-safe window: no longer counted
        heap = self._expiry_heap
        dropped = 0
        while heap and heap[0][0] < now and (limit is None or dropped < limit):
            slot = heapq.heappop(heap)[2]
            if self._entries.get(slot.full_key) is slot:
                self._unlink(slot, in_heap=False)
                self._expired_removed += 1
                self._expired_unreported += 1
                dropped += 1
            else:
                self._stale_heap_items -= 1

    def _unlink(self, slot: _Slot, *, in_heap: bool = True) -> None:
        """Remove an entry from the dict and every index, together."""
        full_key = slot.full_key
        del self._entries[full_key]
        key = slot.entry.key
        if key.namespace is not None:
            self._discard(self._by_namespace, key.namespace, full_key)
        for tag in key.tags:
            self._discard(self._by_tag, tag, full_key)
        if slot.node is not None:
            self._lfu_remove(slot)
        else:
            del self._lru[full_key]
        self._memory_bytes -= slot.size
        if in_heap and slot.expires_at is not None:
            stale = self._stale_heap_items = self._stale_heap_items + 1
            if stale >= _MIN_STALE_TO_COMPACT and stale * 2 > len(self._expiry_heap):
                self._compact_heap()

    @staticmethod
    def _discard(index: _Index, name: str, full_key: str) -> None:
        members = index.get(name)
        if members is not None:
            members.discard(full_key)
            if not members:
                del index[name]

    def _compact_heap(self) -> None:
        entries = self._entries
        heap = self._expiry_heap
        # In place: callers may hold a reference to the list.
        heap[:] = [item for item in heap if entries.get(item[2].full_key) is item[2]]
        heapq.heapify(heap)
        self._stale_heap_items = 0

    # ------------------------------------------------------------ eviction order

    def _victim(self) -> _Slot | None:
        if self._policy == "lru":
            return next(iter(self._lru.values()), None)
        first = self._lfu_head.next
        if first is self._lfu_head:
            return None
        return next(iter(first.keys.values()))

    def _lfu_link_after(self, node: _FreqNode, freq: int) -> _FreqNode:
        new = _FreqNode(freq)
        new.prev = node
        new.next = node.next
        node.next.prev = new
        node.next = new
        return new

    @staticmethod
    def _lfu_unlink_node(node: _FreqNode) -> None:
        node.prev.next = node.next
        node.next.prev = node.prev

    def _lfu_insert_new(self, slot: _Slot) -> None:
        head = self._lfu_head
        node = head.next
        if node is head or node.freq != 1:
            node = self._lfu_link_after(head, 1)
        node.keys[slot.full_key] = slot
        slot.node = node

    def _lfu_bump(self, slot: _Slot) -> None:
        node = slot.node
        assert node is not None
        freq = node.freq + 1
        target = node.next
        if target is self._lfu_head or target.freq != freq:
            target = self._lfu_link_after(node, freq)
        del node.keys[slot.full_key]
        target.keys[slot.full_key] = slot
        slot.node = target
        if not node.keys:
            self._lfu_unlink_node(node)

    def _lfu_remove(self, slot: _Slot) -> None:
        node = slot.node
        assert node is not None
        del node.keys[slot.full_key]
        slot.node = None
        if not node.keys:
            self._lfu_unlink_node(node)

    def get_eviction_policy(self) -> EvictionPolicy:
        """The current eviction policy, ``"lru"`` or ``"lfu"``."""
        return self._policy

    def set_eviction_policy(self, policy: EvictionPolicy) -> None:
        """Switch the eviction policy at run time (O(n log n) rebuild of the order; entries stay).

        The new order is derived from what is known: recency of the last read or write, and for
        ``"lfu"`` each entry's ``hit_count``. Raises ``ValueError`` for an unknown policy.
        """
        policy = _require_policy(policy)
        if policy == self._policy:
            return
        by_recency = sorted(self._entries.values(), key=lambda slot: slot.tick)
        self._lru.clear()
        head = self._lfu_head
        head.next = head.prev = head
        for slot in by_recency:
            slot.node = None
        self._policy = policy
        if policy == "lru":
            for slot in by_recency:
                self._lru[slot.full_key] = slot
            return
        groups: dict[int, list[_Slot]] = {}
        for slot in by_recency:
            groups.setdefault(slot.entry.hit_count + 1, []).append(slot)
        tail = head
        for freq in sorted(groups):
            tail = self._lfu_link_after(tail, freq)
            for slot in groups[freq]:
                tail.keys[slot.full_key] = slot
                slot.node = tail

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
        now = utc_now()
        expired = self._count_expired(now) + self._count_kept(now)
        reads = self._hits + self._misses
        return CacheStats.model_validate(
            {
                "total_entries": len(self._entries) - expired,
                "total_hits": self._hits,
                "total_misses": self._misses,
                "hit_rate": self._hits / reads if reads else 0.0,
                "memory_usage_bytes": self._memory_bytes,
                "oldest_entry": self._first_live_created(self._entries.values(), now),
                "newest_entry": self._first_live_created(reversed(self._entries.values()), now),
                "evictions": self._evictions,
                "expired_removed": self._expired_removed,
            }
        )

    def _count_expired(self, now: datetime) -> int:
        # The heap's expired items form a subtree at its root: walk only that, O(expired items).
        heap = self._expiry_heap
        entries = self._entries
        size = len(heap)
        count = 0
        stack = [0] if heap else []
        while stack:
            i = stack.pop()
            expires_at, _, slot = heap[i]
            if not expires_at < now:
                continue
            if entries.get(slot.full_key) is slot:
                count += 1
            for child in (2 * i + 1, 2 * i + 2):
                if child < size:
                    stack.append(child)
        return count

    def _count_kept(self, now: datetime) -> int:
        # Entries past their logical expiry but inside their fail-safe window (the ones past it too
        # are counted by _count_expired): the subtree of _kept_heap whose expiry passed.
        heap = self._kept_heap
        entries = self._entries
        size = len(heap)
        count = 0
        stack = [0] if heap else []
        while stack:
            i = stack.pop()
            expires_at, _, slot = heap[i]
            if not expires_at < now:
                continue
            if entries.get(slot.full_key) is slot and slot.gone_at is not None and not slot.gone_at < now:
                count += 1
            for child in (2 * i + 1, 2 * i + 2):
                if child < size:
                    stack.append(child)
        return count

    @staticmethod
    def _first_live_created(slots: Iterable[_Slot], now: datetime) -> datetime | None:
        # _entries is in creation order (a rewrite re-inserts at the end), so the first live slot
        # from either end is the oldest or newest; only expired slots not yet dropped are skipped.
        for slot in slots:
            if slot.expires_at is None or not now > slot.expires_at:
                return slot.entry.created_at
        return None

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

        def check(condition: bool, message: str) -> None:
            if not condition:
                raise AssertionError(message)

        entries = self._entries
        namespaces: dict[str, set[str]] = {}
        tags: dict[str, set[str]] = {}
        memory = 0
        with_ttl: set[int] = set()
        previous_created: datetime | None = None
        for full_key, slot in entries.items():
            key = slot.entry.key
            check(slot.full_key == full_key, f"slot of {full_key!r} names {slot.full_key!r}")
            check(key.full_key == full_key, f"entry of {full_key!r} has key {key.full_key!r}")
            check(slot.expires_at == slot.entry.expires_at, f"expiry of {full_key!r} out of step")
            if key.namespace is not None:
                namespaces.setdefault(key.namespace, set()).add(full_key)
            for tag in key.tags:
                tags.setdefault(tag, set()).add(full_key)
            memory += slot.size
            if slot.expires_at is not None:
                with_ttl.add(id(slot))
            created = slot.entry.created_at
            check(previous_created is None or previous_created <= created, "entries not in creation order")
            previous_created = created
        check(namespaces == self._by_namespace, "namespace index out of step")
        check(tags == self._by_tag, "tag index out of step")
        check(memory == self._memory_bytes, f"memory {self._memory_bytes} != sum of sizes {memory}")

        live_heap = [item for item in self._expiry_heap if entries.get(item[2].full_key) is item[2]]
        check({id(item[2]) for item in live_heap} == with_ttl, "expiry heap misses an entry")
        check(len(live_heap) == len(with_ttl), "an entry is twice in the expiry heap")
        stale = len(self._expiry_heap) - len(live_heap)
        check(stale == self._stale_heap_items, f"stale heap items {self._stale_heap_items} != {stale}")
        heap = self._expiry_heap
        check(
            all(heap[(i - 1) // 2][:2] <= heap[i][:2] for i in range(1, len(heap))),
            "expiry heap order broken",
        )

        head = self._lfu_head
        if self._policy == "lru":
            check(head.next is head and head.prev is head, "LFU buckets left in LRU mode")
            check(list(self._lru) == [k for k in self._lru if k in entries], "LRU holds a removed key")
            check(set(self._lru) == set(entries), "LRU order out of step with the entries")
            check(all(self._lru[k] is entries[k] for k in self._lru), "LRU holds a stale slot")
            check(all(slot.node is None for slot in entries.values()), "LFU node left in LRU mode")
        else:
            check(not self._lru, "LRU order left in LFU mode")
            seen: set[str] = set()
            node = head.next
            last_freq = 0
            while node is not head:
                check(node.next.prev is node, "LFU list links broken")
                check(node.freq > last_freq, "LFU buckets not in increasing frequency")
                check(bool(node.keys), "empty LFU bucket")
                last_freq = node.freq
                for full_key, slot in node.keys.items():
                    check(entries.get(full_key) is slot, f"LFU bucket holds a stale {full_key!r}")
                    check(slot.node is node, f"slot of {full_key!r} points to another bucket")
                    check(full_key not in seen, f"{full_key!r} in two LFU buckets")
                    seen.add(full_key)
                node = node.next
            check(seen == set(entries), "LFU buckets out of step with the entries")
