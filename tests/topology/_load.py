"""A bounded load that can tell a stale read, for the topology tests.

Each worker owns a few keys, all tagged with the worker's name, and nobody else touches them. One
coroutine writes increasing integers (unique in the run) to them through the worker's *writer*
adapter, at a steady pace, and now and then invalidates all of them with ``delete_by_tags`` (through
either instance); another reads them back without pause, through the writer and through a second
instance (the *reader*). Every call's start, end and outcome is recorded, so after the run each read
can be checked against what the key may hold at that moment:

* the value of the last operation *acknowledged* before the read started (or anything done after
  it), never an older value, and never a value after an acknowledged invalidation;
* an operation that raised, or an invalidation the caller was told was not replicated
  (``CacheReplicationError``), may or may not have happened: either outcome is allowed.

A ``HybridCacheAdapter`` learns of another instance's change by a message, so a read through a hybrid
instance other than the one that made the change may lag behind it by up to ``HYBRID_PROPAGATION``
(measured: a few ms, at most ~40 ms on a cluster; the rest is for a loaded 2-core machine). Reads
through the instance that made the change, and all reads through plain Redis adapters, get no slack.

Every exception is counted by adapter, operation and type.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from support.cluster_ops import slot_of

from rediscache import CacheError, CacheKey, HybridCacheAdapter, RedisCacheAdapter

HYBRID_PROPAGATION = 0.2
MAX_OPS_PER_WORKER = 2_000  # bounds on the loops (the load also stops when told to)
MAX_READS_PER_WORKER = 20_000
READ_PACE = 0.002
WRITE_PACE = 0.05  # seconds between a worker's writes: each of its 8 keys is rewritten about every 0.45 s
INVALIDATE_EVERY = 7  # one invalidation per this many operations of a worker
PAUSE_AFTER_ERROR = 0.01
FINAL_READ_BUDGET = 5.0  # seconds for the reads after the load (each key once per instance)


@dataclass(frozen=True)
class Labeled:
    label: str  # "redis-a", "hybrid-b", ...
    adapter: Any  # RedisCacheAdapter or HybridCacheAdapter

    @property
    def hybrid(self) -> bool:
        return self.label.startswith("hybrid")


@dataclass
class Worker:
    name: str  # also its tag
    writer: Labeled
    reader: Labeled
    keys: list[CacheKey]


@dataclass(frozen=True)
class Op:
    key: str
    kind: str  # "set" or "invalidate"
    value: int | None  # what the key holds after it (None: absent)
    adapter: str
    start: float
    end: float
    acked: bool  # returned normally; False: raised, or told it was not replicated


@dataclass(frozen=True)
class Read:
    key: str
    adapter: Labeled
    start: float
    end: float
    value: int | None
    final: bool  # made after the load stopped


@dataclass(frozen=True)
class Failure:
    at: float
    adapter: str
    operation: str
    error: BaseException


@dataclass
class LoadRun:
    """What happened during one run; the checks are methods so each test asserts one of them."""

    history: dict[str, list[Op]] = field(default_factory=dict)
    reads: list[Read] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    successes: dict[str, list[float]] = field(default_factory=dict)  # adapter label -> end times
    started: float = 0.0
    stopped: float = 0.0
    event: Any = None  # what the disruption returned (Promotion, Moved, ...)

    def counts(self) -> Counter[str]:
        return Counter(f"{f.adapter} {f.operation}: {type(f.error).__name__}" for f in self.failures)

    def summary(self) -> str:
        ops = sum(len(h) for h in self.history.values())
        per_type = Counter(type(f.error).__name__ for f in self.failures)
        lines = [
            f"{ops} writes/invalidations, {len(self.reads)} reads, {len(self.failures)} exceptions "
            f"over {self.stopped - self.started:.1f}s; by type: {dict(per_type)}; hybrid reads trailed "
            f"other instances' changes by up to {self.hybrid_lag() * 1000:.0f} ms",
            *(f"  {name}: {count}" for name, count in sorted(self.counts().items())),
        ]
        examples: dict[str, BaseException] = {}
        for f in self.failures:
            examples.setdefault(type(f.error).__name__, f.error)
        lines += [f"  e.g. {name}: {str(error)[:300]}" for name, error in examples.items()]
        return "\n".join(lines)

    def not_cache_errors(self) -> list[Failure]:
        return [f for f in self.failures if not isinstance(f.error, CacheError)]

    def failures_after(self, moment: float) -> list[Failure]:
        return [f for f in self.failures if f.at > moment]

    def adapters_without_success_after(self, moment: float) -> list[str]:
        return sorted(label for label, ends in self.successes.items() if not any(end > moment for end in ends))

    def hybrid_lag(self) -> float:
        """The longest a hybrid read trailed another instance's acknowledged change (diagnostics)."""
        worst = 0.0
        for read in self.reads:
            ops = self.history.get(read.key, [])
            if not read.adapter.hybrid or read.value in _allowed(ops, read, None, 0.0):
                continue
            low, high = 0.0, 10.0
            for _ in range(14):  # bisection to ~1 ms
                middle = (low + high) / 2
                low, high = (low, middle) if read.value in _allowed(ops, read, None, middle) else (middle, high)
            worst = max(worst, high)
        return worst

    def disagreements(self) -> list[str]:
        """Keys whose final reads differ between instances (each instance reads each key once)."""
        finals: dict[str, dict[str, int | None]] = {}
        for read in self.reads:
            if read.final:
                finals.setdefault(read.key, {})[read.adapter.label] = read.value
        return [f"{key!r}: {seen}" for key, seen in finals.items() if len(set(seen.values())) > 1]

    def stale_reads(self, *, final: bool | None = None, doubtful: Callable[[Op], bool] | None = None) -> list[str]:
        """Reads that returned what the key could not hold then (``final``: only the reads made after,
        or only those during, the load; ``doubtful``: acknowledged ops to treat as maybe-not-done)."""
        problems = []
        for read in self.reads:
            if final is not None and read.final != final:
                continue
            allowed = _allowed(self.history.get(read.key, []), read, doubtful)
            if read.value not in allowed:
                problems.append(
                    f"{read.adapter.label} read {read.key!r} = {read.value!r} at {read.start - self.started:.3f}s"
                    f"{' (final)' if read.final else ''}; allowed {sorted(allowed, key=repr)}; history: "
                    + ", ".join(
                        f"{op.kind}->{op.value!r} by {op.adapter} {op.start - self.started:.3f}-"
                        f"{op.end - self.started:.3f}{'' if op.acked else ' ?'}"
                        for op in self.history.get(read.key, [])[-6:]
                    )
                )
        return problems


def _allowed(
    ops: Sequence[Op], read: Read, doubtful: Callable[[Op], bool] | None, propagation: float = HYBRID_PROPAGATION
) -> set[int | None]:
    """Values ``read`` may return: the state after the last op it must see, or after any later op."""
    last = -1  # -1: the initial state, absent
    for index, op in enumerate(ops):
        slack = propagation if read.adapter.hybrid and op.adapter != read.adapter.label else 0.0
        if op.acked and not (doubtful and doubtful(op)) and op.end + slack < read.start:
            last = index
    allowed: set[int | None] = {ops[last].value if last >= 0 else None}
    allowed.update(op.value for op in ops[last + 1 :] if op.start < read.end)
    return allowed


class Workload:
    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers
        self.run_data = LoadRun()
        self._counter = 0

    async def run(
        self, disrupt: Callable[[], Awaitable[Any]], *, warmup: float, keep_loading: Callable[[Any], float]
    ) -> LoadRun:
        """Load for ``warmup`` s, then ``await disrupt()`` under load, then keep loading until
        ``keep_loading(event)`` (a ``time.monotonic()`` moment), then read every key once more."""
        data = self.run_data
        for worker in self.workers:
            for key in worker.keys:
                data.history[key.full_key] = []
            for labeled in (worker.writer, worker.reader):
                data.successes.setdefault(labeled.label, [])
        stop = asyncio.Event()
        data.started = time.monotonic()
        tasks = [asyncio.create_task(self._write(worker, stop)) for worker in self.workers]
        tasks += [asyncio.create_task(self._read_all(worker, stop)) for worker in self.workers]
        try:
            await asyncio.sleep(warmup)
            data.event = await disrupt()
            await asyncio.sleep(max(0.0, keep_loading(data.event) - time.monotonic()))
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        data.stopped = time.monotonic()
        # Past the hybrid's propagation slack, so the final reads allow nothing but the last state:
        # an L1 copy whose message was lost would show here, however rarely its key was written.
        await asyncio.sleep(2 * HYBRID_PROPAGATION)
        await self._final_reads()
        return data

    async def _write(self, worker: Worker, stop: asyncio.Event) -> None:
        """Paced writes: between two writes of a key its readers get many reads, so a copy left stale
        (a message lost, a read promoted from an old master) is seen beyond the propagation slack."""
        for n in range(1, MAX_OPS_PER_WORKER + 1):
            if stop.is_set():
                return
            if n % INVALIDATE_EVERY == 0:
                # Through either instance: each hybrid must also drop its copies on the other's message.
                via = worker.writer if (n // INVALIDATE_EVERY) % 2 else worker.reader
                await self._invalidate(worker, via, n // (2 * INVALIDATE_EVERY))
            else:
                await self._set(worker, worker.keys[n % len(worker.keys)])
            await asyncio.sleep(WRITE_PACE)

    async def _read_all(self, worker: Worker, stop: asyncio.Event) -> None:
        """Reads of the worker's keys, through the writer and the other instance in turn."""
        for n in range(MAX_READS_PER_WORKER):
            if stop.is_set():
                return
            key = worker.keys[n % len(worker.keys)]
            await self._read(worker.writer, key, final=False)
            await self._read(worker.reader, key, final=False)
            # An L1 hit never suspends: without a pause, hybrid readers would starve the event loop
            # (and with it the listener that applies invalidation messages).
            await asyncio.sleep(READ_PACE)

    async def _set(self, worker: Worker, key: CacheKey) -> None:
        self._counter += 1
        value = self._counter
        start = time.monotonic()
        acked = await self._call(worker.writer, "set", worker.writer.adapter.set(key, value))
        self.run_data.history[key.full_key].append(
            Op(key.full_key, "set", value, worker.writer.label, start, time.monotonic(), acked)
        )

    async def _invalidate(self, worker: Worker, via: Labeled, n: int) -> None:
        # Every key carries the worker's tag and one of two half tags: both calls cover all of them, the
        # second with two index ranges in one script per shard.
        tags = [worker.name] if n % 2 else [f"{worker.name}.0", f"{worker.name}.1"]
        start = time.monotonic()
        acked = await self._call(via, "delete_by_tags", via.adapter.delete_by_tags(tags))
        end = time.monotonic()
        for key in worker.keys:
            self.run_data.history[key.full_key].append(
                Op(key.full_key, "invalidate", None, via.label, start, end, acked)
            )

    async def _read(self, via: Labeled, key: CacheKey, *, final: bool) -> bool:
        start = time.monotonic()
        try:
            entry = await via.adapter.get(key)
        except Exception as exc:  # every exception is recorded and counted, whatever its type
            await self._failed(via, "get", exc)
            return False
        end = time.monotonic()
        self.run_data.successes[via.label].append(end)
        self.run_data.reads.append(Read(key.full_key, via, start, end, None if entry is None else entry.value, final))
        return True

    async def _call(self, via: Labeled, operation: str, call: Awaitable[Any]) -> bool:
        try:
            await call
        except Exception as exc:  # every exception is recorded and counted, whatever its type
            # Not acknowledged: it may or may not have happened. That includes CacheReplicationError:
            # the invalidation ran, but no replica confirmed it, so a failover may undo it.
            await self._failed(via, operation, exc)
            return False
        self.run_data.successes[via.label].append(time.monotonic())
        return True

    async def _failed(self, via: Labeled, operation: str, exc: BaseException) -> None:
        self.run_data.failures.append(Failure(time.monotonic(), via.label, operation, exc))
        await asyncio.sleep(PAUSE_AFTER_ERROR)  # a failing call is not repeated in a hot loop

    async def _final_reads(self) -> None:
        """Each key once through each of its worker's instances, retrying failures within a budget."""
        deadline = time.monotonic() + FINAL_READ_BUDGET
        for worker in self.workers:
            for key in worker.keys:
                for via in (worker.writer, worker.reader):
                    for _ in range(int(FINAL_READ_BUDGET / 0.1)):
                        if await self._read(via, key, final=True) or time.monotonic() > deadline:
                            break
                        await asyncio.sleep(0.1)


# -- adapters and keys ------------------------------------------------------------------------------


async def open_adapter(kind: str, url: str, key_prefix: str, **options: Any) -> Any:
    """A ``RedisCacheAdapter`` or a coherent ``HybridCacheAdapter`` on the cluster at ``url``."""
    if kind == "redis":
        return RedisCacheAdapter(url, cluster=True, key_prefix=key_prefix, **options)
    if kind == "hybrid":
        hybrid = HybridCacheAdapter(url, cluster=True, key_prefix=key_prefix, **options)
        if not await hybrid.wait_until_coherent():
            await hybrid.close()
            raise AssertionError("the hybrid adapter did not subscribe to its invalidation channel")
        return hybrid
    raise ValueError(kind)


def layout_of(adapter: Any) -> Any:
    """The adapter's shard layout (a hybrid's is its L2's)."""
    return adapter.l2.layout if isinstance(adapter, HybridCacheAdapter) else adapter.layout


def shard_slot(adapter: Any, number: int) -> int:
    return slot_of(layout_of(adapter).shards[number].ledger)


def worker_keys(adapter: Any, name: str, shards: Sequence[int]) -> list[CacheKey]:
    """A worker's keys on ``shards``: tagged with ``name`` and, alternately, ``name.0`` or ``name.1``."""
    keys = keys_on_shards(adapter, name, shards)
    return [CacheKey(key=key.key, tags=[name, f"{name}.{i % 2}"]) for i, key in enumerate(keys)]


def keys_on_shards(adapter: Any, name: str, shards: Sequence[int], tags: Sequence[str] = ()) -> list[CacheKey]:
    """One key per entry of ``shards`` (repeat a number for several keys on one shard), named ``name:<i>``."""
    layout = layout_of(adapter)
    wanted = Counter(shards)
    keys: list[CacheKey] = []
    for i in range(100_000):
        key = CacheKey(key=f"{name}:{i}", tags=list(tags))
        number = layout.shard_of(key.full_key.encode()).number
        if wanted[number] > 0:
            wanted[number] -= 1
            keys.append(key)
            if not +wanted:
                return keys
    raise AssertionError(f"no keys found for shards {dict(+wanted)}")
