"""Access accounting kept in the process: reads write nothing, so hits, misses, hit counts and last
access are counted here and flushed to Redis in batches (one script call per shard per interval).

An instance's own reads show at once in what it returns (an entry's ``hit_count`` is what Redis
holds plus what this process has not flushed yet) and in its ``get_stats()``, which flushes first;
other instances' reads show once they flushed. A flush that fails (the server is at ``maxmemory``
under ``noeviction``, or unreachable) is dropped: a read must never fail, or write, because its
accounting could not be written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Accounting", "Pending"]


@dataclass
class Pending:
    """One shard's reads since the last flush."""

    hits: int = 0
    misses: int = 0
    # full_key -> [version read (its created time, us), hits, last access ms]
    entries: dict[bytes, list[int]] = field(default_factory=dict)


class Accounting:
    def __init__(self) -> None:
        self._pending: dict[int, Pending] = {}
        self._flushing: dict[int, Pending] = {}
        # Hits and misses handed to flushes so far: with what is pending, this process's totals.
        self._taken_hits = 0
        self._taken_misses = 0
        # Hits served elsewhere (a hybrid's L1), in the shared counters but not this cache's reads.
        self._elsewhere = 0

    def __bool__(self) -> bool:
        return bool(self._pending)

    def hit(self, shard: int, full_key: bytes, version: int, now_ms: int) -> int:
        """Count a hit; returns this process's hits of that version of the entry not yet in Redis,
        this one included."""
        pending = self._pending.get(shard)
        if pending is None:
            pending = self._pending[shard] = Pending()
        pending.hits += 1
        counted = pending.entries.get(full_key)
        if counted is None or counted[0] != version:
            counted = pending.entries[full_key] = [version, 0, now_ms]
        counted[1] += 1
        counted[2] = now_ms
        return counted[1] + self._in_flight(shard, full_key, version)

    def shard(self, shard: int) -> tuple[Pending, Pending | None]:
        """A shard's pending reads and those of the flush in flight (or ``None``), for a batch of reads
        that counts them itself (``get_many``: one lookup per batch rather than per key)."""
        pending = self._pending.get(shard)
        if pending is None:
            pending = self._pending[shard] = Pending()
        return pending, self._flushing.get(shard)

    def miss(self, shard: int, count: int = 1) -> None:
        pending = self._pending.get(shard)
        if pending is None:
            pending = self._pending[shard] = Pending()
        pending.misses += count

    def hit_elsewhere(self, shard: int) -> None:
        """Count a hit served from outside Redis (an L1 copy) in the shard's shared hits only: no
        entry's hit count, and not in :meth:`totals`."""
        pending = self._pending.get(shard)
        if pending is None:
            pending = self._pending[shard] = Pending()
        pending.hits += 1
        self._elsewhere += 1

    def _in_flight(self, shard: int, full_key: bytes, version: int) -> int:
        flushing = self._flushing.get(shard)
        if flushing is None:
            return 0
        counted = flushing.entries.get(full_key)
        return counted[1] if counted is not None and counted[0] == version else 0

    def take(self) -> dict[int, Pending]:
        """What to flush now; counted as in flight (still part of what reads return) until :meth:`done`."""
        taken, self._pending = self._pending, {}
        self._flushing = taken
        for pending in taken.values():
            self._taken_hits += pending.hits
            self._taken_misses += pending.misses
        return taken

    def totals(self) -> dict[str, int]:
        """This process's hits and misses since it started, flushed or not (for metrics)."""
        pending = list(self._pending.values())
        return {
            "hits": self._taken_hits + sum(p.hits for p in pending) - self._elsewhere,
            "misses": self._taken_misses + sum(p.misses for p in pending),
        }

    def done(self) -> None:
        """The flush of what :meth:`take` returned ended (written or dropped)."""
        self._flushing = {}
