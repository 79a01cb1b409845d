"""``EntryStore``: entries held in this process, indexed for cheap invalidation and bounded eviction.

The store the in-process adapter (``MemoryCacheAdapter``) and the hybrid's L1 share. It knows
nothing of the port's semantics (hits, misses, compression, what a read returns): it holds one item
per ``full_key`` with the entry's key, a size the caller measured and an optional expiry, and keeps
these structures in step (``n`` entries):

* ``full_key -> Slot``, in creation order (an ``OrderedDict``: a rewrite moves to the end), so the
  oldest and newest entry are at its two ends even after many deletes;
* ``name -> set of full_keys`` for namespaces and tags, so invalidation costs what it removes;
* an expiry heap ``(expires_at, seq, slot)`` of the entries with a TTL; entries removed by other
  means leave a stale item, skipped when popped and compacted away once stale items are the
  majority, so expired entries are found in time proportional to their number;
* the eviction order: an ``OrderedDict`` in recency order (LRU), or a linked list of frequency
  buckets each in recency order (LFU); O(1) per write, use and eviction.

Nothing here awaits, so each call is atomic for the coroutines of one event loop; the store is
not thread-safe.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Generic, Literal, TypeVar

from rediscache._glob import compile_glob, literal_prefix
from rediscache._models import CacheKey

__all__ = ["EntryStore", "EvictionPolicy", "Slot", "count_due", "require_policy"]

EvictionPolicy = Literal["lru", "lfu"]
V = TypeVar("V")

_POLICIES: tuple[str, ...] = ("lru", "lfu")
# name (namespace or tag) -> full_keys of the entries carrying it
_Index = dict[str, set[str]]
# Stale heap items are compacted away once they are the majority and at least this many.
_MIN_STALE_TO_COMPACT = 1024


def count_due(heap: list[tuple[datetime, int, Slot[V]]], now: datetime, counts: Callable[[Slot[V]], bool]) -> int:
    """How many items of a ``(when, seq, slot)`` heap are due before ``now`` and ``counts`` accepts;
    O(due items): the due items form a subtree at the heap's root, and only that is walked."""
    size = len(heap)
    count = 0
    stack = [0] if heap else []
    while stack:
        i = stack.pop()
        when, _, slot = heap[i]
        if not when < now:
            continue
        if counts(slot):
            count += 1
        stack.extend(child for child in (2 * i + 1, 2 * i + 2) if child < size)
    return count


def require_policy(policy: object) -> EvictionPolicy:
    """``policy`` as an ``EvictionPolicy``; ``ValueError`` for anything but ``"lru"`` or ``"lfu"``."""
    if policy == "lru":
        return "lru"
    if policy == "lfu":
        return "lfu"
    raise ValueError(f"eviction_policy must be one of {_POLICIES}, got {policy!r}")


class _FreqNode(Generic[V]):
    """One LFU frequency bucket: the entries used ``freq - 1`` times, least recently used first."""

    __slots__ = ("freq", "keys", "next", "prev")

    def __init__(self, freq: int) -> None:
        self.freq = freq
        self.keys: OrderedDict[str, Slot[V]] = OrderedDict()
        self.prev: _FreqNode[V] = self
        self.next: _FreqNode[V] = self


class Slot(Generic[V]):
    """One stored entry: the caller's ``value`` plus what the store needs to index and evict it.

    ``value`` may be replaced in place by the caller (for example with a touched copy); ``key``,
    ``size`` and ``expires_at`` are the store's and must not change while the slot is stored.
    """

    __slots__ = ("expires_at", "full_key", "key", "node", "size", "tick", "uses", "value")

    def __init__(self, key: CacheKey, value: V, size: int, expires_at: datetime | None, tick: int) -> None:
        self.key = key
        self.full_key = key.full_key
        self.value = value
        self.size = size
        self.expires_at = expires_at
        self.tick = tick  # when last written or used, to rebuild the recency order on a policy switch
        self.uses = 0  # uses since written, to rebuild the LFU order on a policy switch
        self.node: _FreqNode[V] | None = None  # the LFU bucket, in LFU mode

    def expired(self, now: datetime) -> bool:
        """Whether the entry's expiry has passed at ``now``."""
        return self.expires_at is not None and now > self.expires_at


class EntryStore(Generic[V]):
    """Entries of this process with namespace and tag indexes, an expiry heap and LRU/LFU eviction.

    ``max_size`` caps the number of entries and ``max_memory_bytes`` the sum of their sizes (either
    may be ``None``). ``put`` first drops expired entries, then evicts by ``policy`` until the new
    entry fits; the caller checks that a single entry fits at all (``fits``) before writing.

    Counters: ``evictions`` (entries evicted for a limit) and ``expired_dropped`` (expired entries
    the store dropped on its own: by ``put``, ``purge_expired`` or ``drop_expired``), both since
    the store was created.
    """

    def __init__(
        self,
        max_size: int | None = None,
        max_memory_bytes: int | None = None,
        policy: EvictionPolicy = "lru",
    ) -> None:
        self.max_size = max_size
        self.max_memory_bytes = max_memory_bytes
        self._policy: EvictionPolicy = require_policy(policy)
        self._slots: OrderedDict[str, Slot[V]] = OrderedDict()
        self._by_namespace: _Index = {}
        self._by_tag: _Index = {}
        self._lru: OrderedDict[str, Slot[V]] = OrderedDict()
        self._lfu_head: _FreqNode[V] = _FreqNode(0)  # sentinel of a circular list, lowest frequency first
        self._expiry_heap: list[tuple[datetime, int, Slot[V]]] = []
        self._heap_seq = itertools.count()
        self._stale_heap_items = 0
        self._memory_bytes = 0
        self._tick = 0
        self.evictions = 0
        self.expired_dropped = 0

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        """Entries held, expired ones not yet dropped included."""
        return len(self._slots)

    def __contains__(self, full_key: object) -> bool:
        return full_key in self._slots

    def slot(self, full_key: str) -> Slot[V] | None:
        """The slot of ``full_key`` or ``None``; changes nothing (no expiry check either)."""
        return self._slots.get(full_key)

    def slots(self) -> Iterator[Slot[V]]:
        """Every slot, oldest written first (expired ones not yet dropped included)."""
        return iter(self._slots.values())

    @property
    def memory_bytes(self) -> int:
        """The sum of the stored entries' sizes."""
        return self._memory_bytes

    @property
    def expiry_items(self) -> int:
        """Items in the expiry heap, stale ones (of entries removed since) included."""
        return len(self._expiry_heap)

    @property
    def policy(self) -> EvictionPolicy:
        """The eviction policy, ``"lru"`` or ``"lfu"``."""
        return self._policy

    def fits(self, size: int) -> bool:
        """Whether an entry of ``size`` could be stored at all (an empty store would hold it)."""
        return self.max_memory_bytes is None or size <= self.max_memory_bytes

    # ------------------------------------------------------------------ writing

    def put(self, key: CacheKey, value: V, size: int, expires_at: datetime | None, now: datetime) -> Slot[V]:
        """Store ``value`` under ``key.full_key``, replacing any previous entry, and return its slot.

        On its way it drops up to ``purge_limit`` expired entries (all of them, then evicts, when it
        needs the room). ``expires_at`` is ``None`` for an entry that never expires. Raises nothing.
        """
        full_key = key.full_key
        old = self._slots.get(full_key)
        if old is not None:
            if old.expired(now):
                self.drop_expired(old)
            else:
                self._unlink(old)
        self.purge_expired(now, self.purge_limit)
        self._make_room(size, now)
        self._tick += 1
        slot: Slot[V] = Slot(key, value, size, expires_at, self._tick)
        self._slots[full_key] = slot
        if key.namespace is not None:
            self._by_namespace.setdefault(key.namespace, set()).add(full_key)
        for tag in key.tags:
            self._by_tag.setdefault(tag, set()).add(full_key)
        if self._policy == "lru":
            self._lru[full_key] = slot
        else:
            self._lfu_insert_new(slot)
        if expires_at is not None:
            heapq.heappush(self._expiry_heap, (expires_at, next(self._heap_seq), slot))
        self._memory_bytes += size
        return slot

    # A write drops at most this many expired entries on its way: enough to outpace the writes that
    # create entries, small enough to keep one write's latency bounded.
    purge_limit = 8

    def use(self, slot: Slot[V]) -> None:
        """Count a use of a stored slot for the eviction order (LRU recency, LFU frequency)."""
        self._tick += 1
        slot.tick = self._tick
        slot.uses += 1
        if self._policy == "lru":
            self._lru.move_to_end(slot.full_key)
        else:
            self._lfu_bump(slot)

    # ------------------------------------------------------------------ removing

    def remove(self, full_key: str) -> Slot[V] | None:
        """Remove the entry of ``full_key`` on request; its slot, or ``None`` if none was stored."""
        slot = self._slots.get(full_key)
        if slot is not None:
            self._unlink(slot)
        return slot

    def remove_all(self, full_keys: Iterable[str]) -> list[Slot[V]]:
        """Remove the entries of ``full_keys`` that are stored; their slots."""
        removed = []
        for full_key in full_keys:
            slot = self._slots.get(full_key)
            if slot is not None:
                self._unlink(slot)
                removed.append(slot)
        return removed

    def remove_namespace(self, namespace: str) -> list[Slot[V]]:
        """Remove the entries whose namespace is exactly ``namespace``."""
        members = self._by_namespace.get(namespace)
        return self.remove_all(list(members)) if members else []

    def remove_tags(self, tags: Iterable[str]) -> list[Slot[V]]:
        """Remove the entries carrying any of ``tags`` (each once)."""
        full_keys: set[str] = set()
        for tag in tags:
            members = self._by_tag.get(tag)
            if members:
                full_keys.update(members)
        return self.remove_all(full_keys)

    def remove_matching(self, pattern: str) -> list[Slot[V]]:
        """Remove the entries whose ``full_key`` (UTF-8 bytes) matches the Redis glob ``pattern``; O(n)."""
        matches = compile_glob(pattern)
        prefix = literal_prefix(pattern)
        return self.remove_all(
            [full_key for full_key in self._slots if full_key.startswith(prefix) and matches(full_key.encode("utf-8"))]
        )

    def clear(self) -> None:
        """Remove every entry at once (the counters stay)."""
        self._slots.clear()
        self._by_namespace.clear()
        self._by_tag.clear()
        self._lru.clear()
        self._lfu_head.next = self._lfu_head.prev = self._lfu_head
        self._expiry_heap.clear()
        self._stale_heap_items = 0
        self._memory_bytes = 0

    def drop_expired(self, slot: Slot[V]) -> None:
        """Remove an expired entry the caller found (counted in ``expired_dropped``)."""
        self._unlink(slot)
        self.expired_dropped += 1

    def purge_expired(self, now: datetime, limit: int | None = None) -> int:
        """Drop expired entries, at most ``limit`` (``None``: all); how many were dropped."""
        heap = self._expiry_heap
        dropped = 0
        while heap and heap[0][0] < now and (limit is None or dropped < limit):
            slot = heapq.heappop(heap)[2]
            if self._slots.get(slot.full_key) is slot:
                self._unlink(slot, in_heap=False)
                dropped += 1
            else:
                self._stale_heap_items -= 1
        self.expired_dropped += dropped
        return dropped

    def count_expired(self, now: datetime) -> int:
        """Stored entries whose expiry has passed; O(expired items), changes nothing."""
        slots = self._slots
        return count_due(self._expiry_heap, now, lambda slot: slots.get(slot.full_key) is slot)

    def oldest_live(self, now: datetime) -> Slot[V] | None:
        """The first-written slot that has not expired (expired slots not yet dropped are skipped)."""
        return self._first_live(self._slots.values(), now)

    def newest_live(self, now: datetime) -> Slot[V] | None:
        """The last-written slot that has not expired."""
        return self._first_live(reversed(self._slots.values()), now)

    @staticmethod
    def _first_live(slots: Iterable[Slot[V]], now: datetime) -> Slot[V] | None:
        for slot in slots:
            if not slot.expired(now):
                return slot
        return None

    def _make_room(self, size: int, now: datetime) -> None:
        if not self._over_limit(size):
            return
        self.purge_expired(now, None)
        while self._over_limit(size):
            victim = self._victim()
            if victim is None:  # empty: the entry alone fits (the caller checked)
                return
            if victim.expired(now):
                self.drop_expired(victim)
            else:
                self._unlink(victim)
                self.evictions += 1

    def _over_limit(self, size: int) -> bool:
        max_size = self.max_size
        max_memory = self.max_memory_bytes
        return (max_size is not None and len(self._slots) >= max_size) or (
            max_memory is not None and self._memory_bytes + size > max_memory
        )

    def _unlink(self, slot: Slot[V], *, in_heap: bool = True) -> None:
        """Remove an entry from the dict and every index, together."""
        full_key = slot.full_key
        del self._slots[full_key]
        key = slot.key
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
        slots = self._slots
        heap = self._expiry_heap
        # In place: callers may hold a reference to the list.
        heap[:] = [item for item in heap if slots.get(item[2].full_key) is item[2]]
        heapq.heapify(heap)
        self._stale_heap_items = 0

    # ------------------------------------------------------------ eviction order

    def _victim(self) -> Slot[V] | None:
        if self._policy == "lru":
            return next(iter(self._lru.values()), None)
        first = self._lfu_head.next
        if first is self._lfu_head:
            return None
        return next(iter(first.keys.values()))

    def _lfu_link_after(self, node: _FreqNode[V], freq: int) -> _FreqNode[V]:
        new: _FreqNode[V] = _FreqNode(freq)
        new.prev = node
        new.next = node.next
        node.next.prev = new
        node.next = new
        return new

    @staticmethod
    def _lfu_unlink_node(node: _FreqNode[V]) -> None:
        node.prev.next = node.next
        node.next.prev = node.prev

    def _lfu_insert_new(self, slot: Slot[V]) -> None:
        head = self._lfu_head
        node = head.next
        if node is head or node.freq != 1:
            node = self._lfu_link_after(head, 1)
        node.keys[slot.full_key] = slot
        slot.node = node

    def _lfu_bump(self, slot: Slot[V]) -> None:
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

    def _lfu_remove(self, slot: Slot[V]) -> None:
        node = slot.node
        assert node is not None
        del node.keys[slot.full_key]
        slot.node = None
        if not node.keys:
            self._lfu_unlink_node(node)

    def set_policy(self, policy: EvictionPolicy) -> None:
        """Switch the eviction policy (O(n log n) rebuild of the order; entries stay).

        The new order is derived from what is known: recency of the last write or use, and for
        ``"lfu"`` each entry's uses since it was written. ``ValueError`` for an unknown policy.
        """
        policy = require_policy(policy)
        if policy == self._policy:
            return
        by_recency = sorted(self._slots.values(), key=lambda slot: slot.tick)
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
        groups: dict[int, list[Slot[V]]] = {}
        for slot in by_recency:
            groups.setdefault(slot.uses + 1, []).append(slot)
        tail = head
        for freq in sorted(groups):
            tail = self._lfu_link_after(tail, freq)
            for slot in groups[freq]:
                tail.keys[slot.full_key] = slot
                slot.node = tail

    # ------------------------------------------------------------------ tests

    def check_invariants(self) -> None:
        """Raise ``AssertionError`` if any index disagrees with the entries (for tests; O(n))."""

        def check(condition: bool, message: str) -> None:
            if not condition:
                raise AssertionError(message)

        slots = self._slots
        namespaces: dict[str, set[str]] = {}
        tags: dict[str, set[str]] = {}
        memory = 0
        with_ttl: set[int] = set()
        for full_key, slot in slots.items():
            key = slot.key
            check(slot.full_key == full_key, f"slot of {full_key!r} names {slot.full_key!r}")
            check(key.full_key == full_key, f"entry of {full_key!r} has key {key.full_key!r}")
            if key.namespace is not None:
                namespaces.setdefault(key.namespace, set()).add(full_key)
            for tag in key.tags:
                tags.setdefault(tag, set()).add(full_key)
            memory += slot.size
            if slot.expires_at is not None:
                with_ttl.add(id(slot))
        check(namespaces == self._by_namespace, "namespace index out of step")
        check(tags == self._by_tag, "tag index out of step")
        check(memory == self._memory_bytes, f"memory {self._memory_bytes} != sum of sizes {memory}")

        heap = self._expiry_heap
        live_heap = [item for item in heap if slots.get(item[2].full_key) is item[2]]
        check({id(item[2]) for item in live_heap} == with_ttl, "expiry heap misses an entry")
        check(len(live_heap) == len(with_ttl), "an entry is twice in the expiry heap")
        stale = len(heap) - len(live_heap)
        check(stale == self._stale_heap_items, f"stale heap items {self._stale_heap_items} != {stale}")
        check(all(heap[(i - 1) // 2][:2] <= heap[i][:2] for i in range(1, len(heap))), "expiry heap order broken")

        head = self._lfu_head
        if self._policy == "lru":
            check(head.next is head and head.prev is head, "LFU buckets left in LRU mode")
            check(set(self._lru) == set(slots), "LRU order out of step with the entries")
            check(all(self._lru[k] is slots[k] for k in self._lru), "LRU holds a stale slot")
            check(all(slot.node is None for slot in slots.values()), "LFU node left in LRU mode")
            return
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
                check(slots.get(full_key) is slot, f"LFU bucket holds a stale {full_key!r}")
                check(slot.node is node, f"slot of {full_key!r} points to another bucket")
                check(full_key not in seen, f"{full_key!r} in two LFU buckets")
                seen.add(full_key)
            node = node.next
        check(seen == set(slots), "LFU buckets out of step with the entries")
