"""Read what a cache holds in Redis, from its indexes, and check the layout's invariants (``fsck``).

Everything the operators' command (``rediscache.cli``) knows of how the tag, namespace and key
indexes are stored is here, on top of the names of :mod:`.layout`: listing and counting the members
of a tag, a namespace or a pattern, one entry's metadata, per-shard figures with real memory, and
the invariant checks with their repairs. Listing never walks the keyspace (``KEYS``/``SCAN``): it
reads the indexes, one bounded page at a time.

Reads go through the adapter's transport (plain commands, one round trip per node for a batch), so
all of this works on a single server and on a cluster alike. Repairs are Lua scripts
(``lua/repair.lua``, ``lua/recount.lua``): each fixes a batch of entries atomically against
concurrent writers.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import msgpack  # type: ignore[import-untyped]  # msgpack ships no type information

from rediscache._exceptions import CacheError
from rediscache.redis.layout import (
    ENTRY_HEADER_SIZE,
    SENTINEL,
    Layout,
    Shard,
    decode_entry_header,
    decode_ledger_row,
    member_prefix,
)
from rediscache.redis.scripts import script
from rediscache.redis.transport import ScriptCall, Transport

__all__ = [
    "EntryReport",
    "FsckReport",
    "Introspector",
    "Kind",
    "ShardFigures",
    "Violation",
]

#: What ``ls`` and ``invalidate`` select by.
Kind = Literal["tag", "namespace", "pattern"]

_REPAIR = script("repair")
_RECOUNT = script("recount")
# Read with the header in one GETRANGE: any meta this long or shorter (a longer one is read again).
_HEAD_READ = 4096
# An entry is dead this long after its expiry (DEAD_MARGIN_MS in lua/_lib.lua).
_DEAD_MARGIN_MS = 2
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _score(raw: Any) -> float | None:
    if raw is None:
        return None
    return float(raw)


def _int(raw: Any) -> int:
    return 0 if raw is None else int(raw)


def split_member(member: bytes) -> tuple[str, bytes]:
    """``(tag or namespace, full_key)`` of a tag or namespace index member (``<len>:<name><fk>``);
    ``ValueError`` for one that is not of this form."""
    length, colon, rest = member.partition(b":")
    if not colon or not length.isdigit() or int(length) > len(rest):
        raise ValueError(f"not an index member: {member!r}")
    size = int(length)
    return rest[:size].decode(), rest[size:]


@dataclass
class EntryReport:
    """One entry as stored, and whether every index lists it (``inspect``)."""

    full_key: str
    shard: int
    present: bool
    current: bool = False  # of the shard's generation (else it reads as a miss)
    namespace: str | None = None
    tags: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    expires_at: datetime | None = None
    ttl_ms: int | None = None  # Redis's own remaining TTL (None: none)
    generation: int | None = None
    shard_generation: int | None = None
    hit_count: int = 0
    last_access_ms: int = 0
    payload_bytes: int = 0
    memory_bytes: int | None = None  # MEMORY USAGE of the entry string (None: not permitted)
    ledger: dict[str, Any] | None = None  # the ledger row: size, namespace, tags
    in_key_index: bool = False
    in_namespace_index: bool | None = None  # None: no namespace
    missing_tag_members: list[str] = field(default_factory=list)


@dataclass
class ShardFigures:
    """One shard's counters, index sizes and memory (``stats``, ``doctor``)."""

    number: int
    slot: int
    node: str
    intact: bool  # every bookkeeping key is there
    generation: int | None
    entries: int  # live members of the key index
    expired_pending: int  # members whose expiry passed, not trimmed yet
    ledger_rows: int
    tag_members: int
    namespace_members: int
    hits: int
    misses: int
    payload_bytes: int  # what memory_usage_bytes counts: the stored payloads
    index_memory: int | None  # MEMORY USAGE of the six bookkeeping keys (sampled by Redis)
    entry_memory: int | None  # entries: the mean MEMORY USAGE of a sample, times the count

    @property
    def memory(self) -> int | None:
        if self.index_memory is None or self.entry_memory is None:
            return None
        return self.index_memory + self.entry_memory


@dataclass(frozen=True)
class Violation:
    """An invariant of ``docs/redis-layout.md`` that does not hold."""

    shard: int
    kind: str
    detail: str
    full_key: str | None = None
    repairable: bool = True


# Short, for the many places that report one.
_V = Violation


@dataclass
class FsckReport:
    shards: int = 0
    entries: int = 0
    expired_pending: int = 0
    violations: list[Violation] = field(default_factory=list)
    repaired: int = 0

    @property
    def healthy(self) -> bool:
        return not self.violations


@dataclass
class _Read:
    """What one fsck batch read of one entry."""

    fk: bytes
    score: float | None
    row: bytes | None
    head: bytes | None
    length: int


class Introspector:
    """Read-only views of one cache, and fsck. ``transport`` and ``layout``: the adapter's."""

    def __init__(self, transport: Transport, layout: Layout, *, batch: int = 500) -> None:
        if batch < 1:
            raise ValueError("batch must be >= 1")
        self.transport = transport
        self.layout = layout
        self.batch = batch

    # -- plumbing -------------------------------------------------------------------------------------

    async def _cmd(self, shard: Shard, *args: Any) -> Any:
        return await self.transport.command("introspect", shard.slot, *args)

    async def _many(self, shard: Shard, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        return await self.transport.command_many("introspect", [(shard.slot, command) for command in commands])

    async def server_ms(self) -> int:
        seconds, micros = await self._cmd(self.layout.shards[0], b"TIME")
        return int(seconds) * 1000 + int(micros) // 1000

    def _index(self, shard: Shard, kind: Kind) -> bytes:
        return shard.tags if kind == "tag" else shard.namespaces

    def _live(self, scores: Sequence[Any], now_ms: int) -> list[bool]:
        return [(s := _score(raw)) is not None and s >= now_ms - _DEAD_MARGIN_MS for raw in scores]

    # -- listing ----------------------------------------------------------------------------------------

    async def _range_pages(self, shard: Shard, index: bytes, prefix: bytes) -> AsyncIterator[list[bytes]]:
        """The full_keys of one lexical range of an index, a page at a time."""
        start, end = b"[" + prefix, b"(" + prefix + b"\xff"
        while True:
            members = await self._cmd(shard, b"ZRANGEBYLEX", index, start, end, b"LIMIT", 0, self.batch)
            if not members:
                return
            yield [member[len(prefix) :] for member in members]
            if len(members) < self.batch:
                return
            start = b"(" + members[-1]

    async def _pattern_pages(self, shard: Shard, pattern: bytes, now_ms: int) -> AsyncIterator[list[bytes]]:
        cursor: Any = b"0"
        seen: set[bytes] = set()  # ZSCAN may return a member twice
        while True:
            cursor, page = await self._cmd(shard, b"ZSCAN", shard.keys, cursor, b"MATCH", pattern, b"COUNT", self.batch)
            found = [
                fk
                for fk, score in zip(page[::2], page[1::2], strict=True)
                if fk != SENTINEL and fk not in seen and float(score) >= now_ms - _DEAD_MARGIN_MS
            ]
            seen.update(found)
            if found:
                yield found
            if cursor in (b"0", 0):
                return

    async def members(self, kind: Kind, name: str) -> AsyncIterator[list[str]]:
        """The full_keys of the live entries with this tag / namespace / matching this glob pattern
        (Redis's glob, on the bytes of full_key), read from the indexes a page at a time, shard by
        shard. Entries whose expiry passed but are not trimmed yet are left out."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"the {kind} must be a non-empty str")
        now_ms = await self.server_ms()
        for shard in self.layout.shards:
            if kind == "pattern":
                async for page in self._pattern_pages(shard, name.encode(), now_ms):
                    yield [fk.decode() for fk in page]
                continue
            async for page in self._range_pages(shard, self._index(shard, kind), member_prefix(name)):
                scores = await self._cmd(shard, b"ZMSCORE", shard.keys, *page)
                live = [fk.decode() for fk, ok in zip(page, self._live(scores, now_ms), strict=True) if ok]
                if live:
                    yield live

    async def count(self, kind: Kind, name: str) -> int:
        """How many full_keys :meth:`members` lists (it walks the same pages)."""
        total = 0
        async for page in self.members(kind, name):
            total += len(page)
        return total

    async def indexed(self, kind: Literal["tag", "namespace"], name: str) -> int:
        """Index members of a tag or namespace, expired ones not trimmed yet included: one
        ``ZLEXCOUNT`` per shard (cheap; what the progress of an invalidation is read from)."""
        prefix = member_prefix(name)
        counts = await self.transport.command_many(
            "introspect",
            [
                (shard.slot, (b"ZLEXCOUNT", self._index(shard, kind), b"[" + prefix, b"(" + prefix + b"\xff"))
                for shard in self.layout.shards
            ],
        )
        return sum(int(count) for count in counts)

    # -- one entry --------------------------------------------------------------------------------------

    async def inspect(self, full_key: str) -> EntryReport:
        """One entry's metadata as stored, and whether its indexes list it."""
        fk = full_key.encode()
        shard = self.layout.shard_of(fk)
        entry_key = shard.entry_key(fk)
        raw, generation, pttl, row, score = await self._many(
            shard,
            [
                (b"GET", entry_key),
                (b"GET", shard.generation),
                (b"PTTL", entry_key),
                (b"HGET", shard.ledger, fk),
                (b"ZSCORE", shard.keys, fk),
            ],
        )
        report = EntryReport(full_key=full_key, shard=shard.number, present=raw is not None)
        report.shard_generation = None if generation is None else int(generation)
        report.in_key_index = score is not None
        if row is not None:
            size, namespace, tags = _decode_row(row)
            report.ledger = {"payload_bytes": size, "namespace": namespace, "tags": tags}
        if raw is None or len(raw) < ENTRY_HEADER_SIZE:
            return report
        header = decode_entry_header(raw)
        namespace, tags = _meta(raw, header.meta_size)
        report.namespace, report.tags = namespace, tags
        report.created_at = _us(header.created_us)
        report.expires_at = _us(header.expiry_us) if header.expiry_us else None
        report.ttl_ms = int(pttl) if int(pttl) >= 0 else None
        report.generation = header.generation
        report.current = header.generation == report.shard_generation
        report.hit_count = header.hits
        report.last_access_ms = header.last_access_ms
        report.payload_bytes = len(raw) - ENTRY_HEADER_SIZE - header.meta_size
        try:
            report.memory_bytes = int(await self._cmd(shard, b"MEMORY", b"USAGE", entry_key))
        except CacheError:
            report.memory_bytes = None  # MEMORY not permitted to this user
        checks: list[tuple[Any, ...]] = [(b"ZSCORE", shard.tags, member_prefix(tag) + fk) for tag in tags]
        if namespace is not None:
            checks.append((b"ZSCORE", shard.namespaces, member_prefix(namespace) + fk))
        found = await self._many(shard, checks) if checks else []
        report.missing_tag_members = [tag for tag, hit in zip(tags, found, strict=False) if hit is None]
        if namespace is not None:
            report.in_namespace_index = found[-1] is not None
        return report

    # -- per shard --------------------------------------------------------------------------------------

    async def shard_figures(self, sample: int = 16) -> list[ShardFigures]:
        """Every shard's counters, index sizes and memory: ``MEMORY USAGE`` of its bookkeeping keys
        (Redis samples large ones) and of ``sample`` random entries, scaled to the entry count."""
        now_ms = await self.server_ms()
        return list(await asyncio.gather(*(self._figures(shard, now_ms, sample) for shard in self.layout.shards)))

    async def _figures(self, shard: Shard, now_ms: int, sample: int) -> ShardFigures:
        keys = shard.index_keys
        (stats, generation, exists, cards, expired, rows, tag_members, ns_members, picked) = await self._many(
            shard,
            [
                (b"HMGET", shard.stats, b"hits", b"misses", b"bytes"),
                (b"GET", shard.generation),
                (b"EXISTS", *keys),
                (b"ZCARD", shard.keys),
                (b"ZCOUNT", shard.keys, b"-inf", b"(%d" % (now_ms - _DEAD_MARGIN_MS)),
                (b"HLEN", shard.ledger),
                (b"ZCARD", shard.tags),
                (b"ZCARD", shard.namespaces),
                (b"ZRANDMEMBER", shard.keys, sample),
            ],
        )
        entries = max(0, int(cards) - 1 - int(expired))
        index_memory: int | None = None
        entry_memory: int | None = None
        try:
            usage = await self._many(shard, [(b"MEMORY", b"USAGE", key) for key in keys])
            index_memory = sum(_int(used) for used in usage)
            sampled = [fk for fk in picked or [] if fk != SENTINEL]
            sizes = (
                [
                    _int(u)
                    for u in await self._many(shard, [(b"MEMORY", b"USAGE", shard.entry_key(fk)) for fk in sampled])
                ]
                if sampled
                else []
            )
            present = [size for size in sizes if size]
            entry_memory = round(sum(present) / len(present) * entries) if present else 0
        except CacheError:
            pass  # MEMORY not permitted to this user: the figures say None
        node = await self.transport.node_for(shard.slot)
        return ShardFigures(
            number=shard.number,
            slot=shard.slot,
            node=node.name,
            intact=int(exists) == len(keys),
            generation=None if generation is None else int(generation),
            entries=entries if int(cards) else 0,
            expired_pending=int(expired),
            ledger_rows=max(0, int(rows) - 1),
            tag_members=max(0, int(tag_members) - 1),
            namespace_members=max(0, int(ns_members) - 1),
            hits=_int(stats[0]),
            misses=_int(stats[1]),
            payload_bytes=_int(stats[2]),
            index_memory=index_memory,
            entry_memory=entry_memory,
        )

    # -- fsck -------------------------------------------------------------------------------------------

    async def fsck(self, *, repair: bool = False) -> FsckReport:
        """Check every invariant of the layout, shard by shard, in batches of ``batch`` entries:

        - the bookkeeping keys all exist (or none do) and hold their sentinel; the generation is at
          least the floor the stats hash keeps;
        - every member of the key index that has not expired has its entry string, of the shard's
          generation, and a ledger row; the row's size, namespace and tags are the entry's; its
          expiry score is the entry's expiry;
        - every ledger row has its key-index member and the tag and namespace members it names;
          every tag and namespace member belongs to a ledger row that names it;
        - the stats' ``bytes`` is the sum of the ledger's sizes.

        A violation seen on a busy cache is checked again before it is reported (a write may have
        been half-read). ``repair=True`` rebuilds the bookkeeping of the entries involved from the
        entries themselves (``lua/repair.lua``: an entry that is gone, or of another generation, is
        unindexed), drops stray members, recounts ``bytes`` (``lua/recount.lua``), then checks again:
        the report is that of the check after the repair, with ``repaired`` set."""
        report = FsckReport(shards=len(self.layout.shards))
        results = await asyncio.gather(*(self._fsck_shard(shard) for shard in self.layout.shards))
        if repair and any(found for found, *_ in results):
            for shard, (found, fks, strays, _, _) in zip(self.layout.shards, results, strict=True):
                if found:
                    report.repaired += await self._repair(shard, fks, strays)
            results = await asyncio.gather(*(self._fsck_shard(shard) for shard in self.layout.shards))
        for found, _, _, entries, expired in results:
            report.violations.extend(found)
            report.entries += entries
            report.expired_pending += expired
        return report

    async def _fsck_shard(self, shard: Shard) -> tuple[list[Violation], set[bytes], set[tuple[bytes, bytes]], int, int]:
        """(violations, full_keys to rebuild, stray (index, member) pairs, live entries, expired)."""
        now_ms = await self.server_ms()
        keys = shard.index_keys
        answers = await self._many(
            shard,
            [
                *((b"EXISTS", key) for key in keys),
                (b"HEXISTS", shard.ledger, SENTINEL),
                (b"ZSCORE", shard.keys, SENTINEL),
                (b"ZSCORE", shard.tags, SENTINEL),
                (b"ZSCORE", shard.namespaces, SENTINEL),
                (b"GET", shard.generation),
                (b"HMGET", shard.stats, b"bytes", b"gen"),
            ],
        )
        exists = [int(answer) for answer in answers[:6]]
        sentinels = answers[6:10]
        generation = None if answers[10] is None else int(answers[10])
        stored_bytes, floor = answers[11]
        found: list[Violation] = []
        bookkeeping = exists[:4] + exists[5:]  # the stats hash alone may exist (flushed reads, no write yet)
        if not any(bookkeeping):
            return found, set(), set(), 0, 0
        if not all(bookkeeping) or not exists[4]:
            missing = [name for name, there in zip("MKTNSG", exists, strict=True) if not there]
            found.append(
                Violation(
                    shard.number,
                    "bookkeeping-incomplete",
                    f"keys {','.join(missing)} are missing (evicted?): the next write starts a new generation, "
                    "and the shard's entries read as misses until then",
                    repairable=False,
                )
            )
            return found, set(), set(), 0, 0
        for name, value in zip(("ledger", "key index", "tag index", "namespace index"), sentinels, strict=True):
            if value is None or (value == 0 and name == "ledger"):  # HEXISTS: 0; ZSCORE: None
                found.append(
                    Violation(shard.number, "sentinel-missing", f"the {name} has no sentinel", repairable=False)
                )
        if generation is not None and floor is not None and generation < int(floor):
            found.append(
                Violation(
                    shard.number,
                    "generation-below-floor",
                    f"generation {generation} is below the floor {int(floor)} of the stats hash",
                    repairable=False,
                )
            )

        rebuild: set[bytes] = set()
        strays: set[tuple[bytes, bytes]] = set()
        live = expired = 0
        # The key index: each member against its entry, its ledger row and its index members.
        cursor: Any = b"0"
        candidates: dict[bytes, Violation] = {}
        while True:
            cursor, page = await self._cmd(shard, b"ZSCAN", shard.keys, cursor, b"COUNT", self.batch)
            pairs = [(fk, float(score)) for fk, score in zip(page[::2], page[1::2], strict=True) if fk != SENTINEL]
            dead = [fk for fk, score in pairs if score < now_ms - _DEAD_MARGIN_MS]
            expired += len(dead)
            alive = [fk for fk, score in pairs if score >= now_ms - _DEAD_MARGIN_MS]
            live += len(alive)
            for violation in await self._check_entries(shard, alive, generation, now_ms):
                assert violation.full_key is not None
                candidates[violation.full_key.encode()] = violation
            if cursor in (b"0", 0):
                break
        # The ledger: each row against its key-index member; and the sum of the sizes.
        cursor, total = b"0", 0
        while True:
            cursor, page = await self._cmd(shard, b"HSCAN", shard.ledger, cursor, b"COUNT", self.batch)
            rows = [(fk, row) for fk, row in zip(page[::2], page[1::2], strict=True) if fk != SENTINEL]
            total += sum(_row_size(row) for _, row in rows)
            if rows:
                scores = await self._cmd(shard, b"ZMSCORE", shard.keys, *(fk for fk, _ in rows))
                for (fk, _), score in zip(rows, scores, strict=True):
                    if score is None:
                        candidates[fk] = Violation(
                            shard.number, "ledger-without-key", "a ledger row with no key-index member", fk.decode()
                        )
            if cursor in (b"0", 0):
                break
        # Tag and namespace members: each must be named by its entry's ledger row.
        stray_found: list[Violation] = []
        for which, index in (("tag", shard.tags), ("namespace", shard.namespaces)):
            cursor = b"0"
            while True:
                cursor, page = await self._cmd(shard, b"ZSCAN", index, cursor, b"COUNT", self.batch)
                members = [member for member in page[::2] if member != SENTINEL]
                if members:
                    stray_found += await self._check_members(shard, which, index, members, strays)
                if cursor in (b"0", 0):
                    break
        if candidates:
            # Checked again: a write between two reads of a batch can look like a violation.
            again = await self._check_entries(shard, list(candidates), generation, now_ms, also_unindexed=True)
            confirmed = {violation.full_key for violation in again}
            for fk, violation in candidates.items():
                if fk.decode() in confirmed:
                    found.append(violation)
                    rebuild.add(fk)
        found += stray_found
        if stored_bytes is not None and int(stored_bytes) != total:
            recheck = await self._cmd(shard, b"HGET", shard.stats, b"bytes")
            if recheck is not None and int(recheck) != total:
                found.append(
                    Violation(
                        shard.number,
                        "bytes-mismatch",
                        f"the stats say {int(recheck)} payload bytes, the ledger sums to {total}",
                    )
                )
        return found, rebuild, strays, live, expired

    async def _read_entries(self, shard: Shard, fks: Sequence[bytes]) -> list[_Read]:
        reads: list[_Read] = []
        for start in range(0, len(fks), self.batch):
            chunk = fks[start : start + self.batch]
            commands: list[tuple[Any, ...]] = [(b"ZMSCORE", shard.keys, *chunk), (b"HMGET", shard.ledger, *chunk)]
            for fk in chunk:
                commands.append((b"GETRANGE", shard.entry_key(fk), 0, _HEAD_READ - 1))
                commands.append((b"STRLEN", shard.entry_key(fk)))
            answers = await self._many(shard, commands)
            scores, rows = answers[0], answers[1]
            for i, fk in enumerate(chunk):
                head, length = answers[2 + 2 * i], int(answers[3 + 2 * i])
                if length and len(head) >= ENTRY_HEADER_SIZE:
                    meta_end = ENTRY_HEADER_SIZE + decode_entry_header(head).meta_size
                    if meta_end > len(head):
                        head = await self._cmd(shard, b"GETRANGE", shard.entry_key(fk), 0, meta_end - 1)
                reads.append(_Read(fk, _score(scores[i]), rows[i], head if length else None, length))
        return reads

    async def _check_entries(
        self, shard: Shard, fks: Sequence[bytes], generation: int | None, now_ms: int, *, also_unindexed: bool = False
    ) -> list[Violation]:
        found: list[Violation] = []
        reads = await self._read_entries(shard, fks)
        members: list[tuple[bytes, bytes, bytes, str]] = []  # (fk, index, member, what)
        for read in reads:
            fk = read.fk.decode()
            if read.score is None:
                if read.row is not None and also_unindexed:
                    found.append(
                        Violation(shard.number, "ledger-without-key", "a ledger row with no key-index member", fk)
                    )
                continue
            if read.score < now_ms - _DEAD_MARGIN_MS:
                continue  # expired since: trimmed by the next write or maintain
            if read.head is None:
                found.append(
                    Violation(shard.number, "vanished", "indexed, but its entry string is gone (evicted?)", fk)
                )
                continue
            if len(read.head) < ENTRY_HEADER_SIZE:
                found.append(_V(shard.number, "unreadable", "an entry string shorter than its header", fk))
                continue
            header = decode_entry_header(read.head)
            if header.generation != generation:
                found.append(
                    Violation(
                        shard.number,
                        "stale-generation",
                        f"indexed, but of generation {header.generation}, not the shard's {generation}",
                        fk,
                    )
                )
                continue
            try:
                namespace, tags = _meta(read.head, header.meta_size)
            except ValueError as exc:
                found.append(_V(shard.number, "unreadable", str(exc), fk))
                continue
            size = read.length - ENTRY_HEADER_SIZE - header.meta_size
            expiry = math.inf if not header.expiry_us else float(-(-header.expiry_us // 1000))
            if read.score != expiry:
                found.append(
                    Violation(shard.number, "expiry-mismatch", f"key-index expiry {read.score}, entry's {expiry}", fk)
                )
            if read.row is None:
                found.append(_V(shard.number, "no-ledger-row", "indexed entry without a ledger row", fk))
                continue
            row_size, row_ns, row_tags = _decode_row(read.row)
            if (row_size, row_ns, list(row_tags)) != (size, namespace, tags):
                found.append(
                    Violation(
                        shard.number,
                        "ledger-mismatch",
                        f"ledger row {(row_size, row_ns, row_tags)} but entry {(size, namespace, tags)}",
                        fk,
                    )
                )
            for tag in tags:
                members.append((read.fk, shard.tags, member_prefix(tag) + read.fk, f"tag {tag!r}"))
            if namespace is not None:
                members.append(
                    (read.fk, shard.namespaces, member_prefix(namespace) + read.fk, f"namespace {namespace!r}")
                )
        for index in (shard.tags, shard.namespaces):
            wanted = [item for item in members if item[1] == index]
            for start in range(0, len(wanted), self.batch):
                chunk = wanted[start : start + self.batch]
                scores = await self._cmd(shard, b"ZMSCORE", index, *(member for _, _, member, _ in chunk))
                for (fk_raw, _, _, what), score in zip(chunk, scores, strict=True):
                    if score is None:
                        found.append(
                            Violation(
                                shard.number, "index-member-missing", f"not listed under its {what}", fk_raw.decode()
                            )
                        )
        return found

    async def _check_members(
        self, shard: Shard, which: str, index: bytes, members: list[bytes], strays: set[tuple[bytes, bytes]]
    ) -> list[Violation]:
        found: list[Violation] = []
        parsed: list[tuple[bytes, str, bytes]] = []
        for member in members:
            try:
                name, fk = split_member(member)
            except (ValueError, UnicodeDecodeError):
                found.append(_V(shard.number, "bad-member", f"{which} index member {member!r} is malformed"))
                strays.add((index, member))
                continue
            parsed.append((member, name, fk))
        if not parsed:
            return found
        rows = await self._cmd(shard, b"HMGET", shard.ledger, *(fk for _, _, fk in parsed))
        suspects = []
        for (member, name, fk), row in zip(parsed, rows, strict=True):
            if row is None or not _row_names(row, which, name):
                suspects.append((member, name, fk))
        if suspects:
            # Again: a write may have replaced the row between the two reads.
            rows = await self._cmd(shard, b"HMGET", shard.ledger, *(fk for _, _, fk in suspects))
            scores = await self._cmd(shard, b"ZMSCORE", index, *(member for member, _, _ in suspects))
            for (member, name, fk), row, score in zip(suspects, rows, scores, strict=True):
                if score is not None and (row is None or not _row_names(row, which, name)):
                    found.append(
                        Violation(
                            shard.number,
                            "stray-member",
                            f"listed under {which} {name!r}, which its ledger row does not name",
                            fk.decode(),
                        )
                    )
                    strays.add((index, member))
        return found

    async def _repair(self, shard: Shard, fks: set[bytes], strays: set[tuple[bytes, bytes]]) -> int:
        repaired = 0
        listed = sorted(fks)
        pairs = sorted(strays)
        letter = {shard.tags: b"t", shard.namespaces: b"n"}
        for start in range(0, max(len(listed), len(pairs), 1), self.batch):
            chunk = listed[start : start + self.batch]
            stray_chunk = pairs[start : start + self.batch]
            if not chunk and not stray_chunk:
                break
            args: list[Any] = [shard.entry_prefix, len(chunk), *chunk]
            for index, member in stray_chunk:
                args.extend((letter[index], member))
            call: ScriptCall = (_REPAIR, shard.index_keys, args)
            rebuilt, dropped, removed = await self.transport.run("fsck --repair", shard.slot, call, again=True)
            repaired += int(rebuilt) + int(dropped) + int(removed)
        call = (_RECOUNT, shard.index_keys, (1_000_000,))
        old, new = await self.transport.run("fsck --repair", shard.slot, call, again=True)
        if int(old) != int(new):
            repaired += 1
        return repaired


def _meta(raw: bytes, size: int) -> tuple[str | None, list[str]]:
    if not size:
        return None, []
    try:
        namespace, tags = msgpack.unpackb(raw[ENTRY_HEADER_SIZE : ENTRY_HEADER_SIZE + size])
    except Exception as exc:
        raise ValueError(f"unreadable entry meta: {exc}") from None
    return namespace or None, list(tags)


def _decode_row(row: bytes) -> tuple[int, str | None, list[str]]:
    """A ledger row: msgpack ``[size, namespace, tags]``, or the size alone as a decimal string."""
    if row.isdigit():
        return int(row), None, []
    size, namespace, tags = decode_ledger_row(row)
    return int(size), namespace, list(tags)


def _row_size(row: bytes) -> int:
    return _decode_row(row)[0]


def _row_names(row: bytes, which: str, name: str) -> bool:
    """Whether a ledger row lists ``name`` as its namespace / among its tags."""
    _, namespace, tags = _decode_row(row)
    return namespace == name if which == "namespace" else name in tags
