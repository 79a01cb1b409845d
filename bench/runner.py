"""Throughput measurement: warm-up, repetitions interleaved round-robin, medians and paired ratios.

A *group* is one workload at one concurrency, with one *subject* per library (or variant). Each
timed run performs a fixed number of operations (not a fixed time): ``concurrency`` coroutines
each run their share, started together with ``asyncio.gather``, and the run's throughput is
operations / wall time. Within a group every subject is warmed up once, then the repetitions are
interleaved: repetition ``r`` runs every subject once, starting from a different subject each time
(round-robin rotation), so that drift of the machine (CPU frequency, another process, Redis
growing) affects all subjects alike. Reported per subject: the median over the repetitions, and
the ratio to the group's baseline taken per repetition (both measured back to back) and then the
median of those ratios.

Every timed run also records the client's CPU time: ``getrusage(RUSAGE_SELF)`` user + system
before and after the run (the same timed loop, ``gc.collect()`` outside it), divided by the run's
operations (keys, for batch subjects): ``cpu_runs`` in µs per operation, ``cpu_us_per_op`` their
median. It is the whole process (event loop, socket calls, redis-py, hiredis and the library under
test), not the Redis servers, which are child processes.

A subject that raises is recorded with its error and skipped for the rest of the group; the other
subjects and groups go on.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import statistics
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Group",
    "Op",
    "Subject",
    "cpu_seconds",
    "describe_error",
    "measured_run",
    "paired_ratio",
    "run_group",
    "timed_run",
]

#: One call of a workload: ``op(i)`` for the i-th call of a run.
Op = Callable[[int], Awaitable[Any]]

RUN_TIMEOUT = 180.0  # seconds; a run that hangs is recorded as an error


@dataclass
class Subject:
    """One library (or one variant of it) in a group.

    ``units_per_call``: operations one call stands for (100 for ``get_many(100)`` or for a loop of
    100 single gets), so throughputs are comparable as operations (keys) per second.
    """

    library: str
    op: Op
    row: str = ""
    note: str = ""
    units_per_call: int = 1

    @property
    def label(self) -> str:
        parts = [self.library, self.row, f"({self.note})" if self.note else ""]
        return " ".join(part for part in parts if part)


@dataclass
class Group:
    id: str
    topology: str
    workload: str
    concurrency: int
    units: int
    subjects: list[Subject]  # the first one is the baseline of the ratios
    unit: str = "ops/s"
    prepare: Callable[[], Awaitable[None]] | None = None  # populate: not timed
    description: str = ""


@dataclass
class SubjectResult:
    label: str
    library: str
    row: str
    note: str
    runs: list[float | None] = field(default_factory=list)  # ops/s per repetition, in repetition order
    cpu: list[float | None] = field(default_factory=list)  # client CPU µs per operation, same order
    error: str | None = None

    @property
    def valid_runs(self) -> list[float]:
        return [run for run in self.runs if run is not None]

    @property
    def median(self) -> float | None:
        runs = self.valid_runs
        return statistics.median(runs) if runs else None

    def to_json(self, baseline: SubjectResult | None) -> dict[str, Any]:
        runs = self.valid_runs
        median = self.median
        cpu = [c for c in self.cpu if c is not None]
        return {
            "label": self.label,
            "library": self.library,
            "row": self.row,
            "note": self.note,
            "median": median,
            "min": min(runs) if runs else None,
            "max": max(runs) if runs else None,
            "spread": (max(runs) - min(runs)) / median if runs and median else None,
            "runs": self.runs,
            "ratio": paired_ratio(self, baseline) if baseline is not None else None,
            "cpu_us_per_op": statistics.median(cpu) if cpu else None,
            "cpu_runs": self.cpu,
            "error": self.error,
        }


def paired_ratio(subject: SubjectResult, baseline: SubjectResult) -> float | None:
    """Median over the repetitions of subject / baseline, each pair measured in the same repetition."""
    ratios = [
        run / base
        for run, base in zip(subject.runs, baseline.runs, strict=False)
        if run is not None and base is not None and base > 0
    ]
    return statistics.median(ratios) if ratios else None


def describe_error(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def cpu_seconds() -> float:
    """This process's CPU time so far, user + system (``getrusage(RUSAGE_SELF)``: every thread of it).

    Child processes (the Redis servers the bench started) are not included.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def timed_run(op: Op, calls: int, concurrency: int) -> float:
    """Wall time of ``calls`` calls of ``op`` spread over ``concurrency`` coroutines."""
    wall, _ = await measured_run(op, calls, concurrency)
    return wall


async def measured_run(op: Op, calls: int, concurrency: int, *, collect: bool = True) -> tuple[float, float]:
    """Wall time and this process's CPU time of ``calls`` calls of ``op`` over ``concurrency`` coroutines."""

    async def worker(first: int) -> None:
        for i in range(first, calls, concurrency):
            await op(i)

    workers = min(concurrency, calls)
    if collect:
        gc.collect()  # not in the measurement: every run starts with the same clean heap
    cpu = cpu_seconds()
    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker(w) for w in range(workers))), RUN_TIMEOUT)
    return time.perf_counter() - start, cpu_seconds() - cpu


async def run_group(
    group: Group, *, repetitions: int, warmup_fraction: float, log: Callable[[str], None]
) -> dict[str, Any]:
    results = [SubjectResult(s.label, s.library, s.row, s.note) for s in group.subjects]
    started = time.perf_counter()
    group_error: str | None = None
    try:
        if group.prepare is not None:
            await group.prepare()
    except Exception as exc:
        group_error = f"prepare: {describe_error(exc)}"
        log(f"  ! {group.id}: {group_error}")
    if group_error is None:
        # Warm-up: every subject once (connections opened, scripts loaded, caches of the
        # interpreter and of Redis warm); also where a broken subject shows up first.
        for subject, result in zip(group.subjects, results, strict=True):
            calls = max(group.concurrency, int(group.units * warmup_fraction) // subject.units_per_call, 1)
            try:
                await timed_run(subject.op, calls, group.concurrency)
            except Exception as exc:
                result.error = f"warm-up: {describe_error(exc)}"
                log(f"  ! {group.id} {subject.label}: {result.error}")
        for rep in range(repetitions):
            shift = rep % len(group.subjects)
            order = list(range(shift, len(group.subjects))) + list(range(shift))
            runs: dict[int, float | None] = {}
            cpus: dict[int, float | None] = {}
            for index in order:
                subject, result = group.subjects[index], results[index]
                if result.error is not None:
                    runs[index] = None
                    continue
                calls = max(group.units // subject.units_per_call, 1)
                units = calls * subject.units_per_call
                try:
                    elapsed, cpu = await measured_run(subject.op, calls, group.concurrency)
                    runs[index] = units / elapsed
                    cpus[index] = cpu / units * 1e6
                except Exception as exc:
                    result.error = f"repetition {rep + 1}: {describe_error(exc)}"
                    runs[index] = None
                    log(f"  ! {group.id} {subject.label}: {result.error}")
            for index, result in enumerate(results):
                result.runs.append(runs.get(index))
                result.cpu.append(cpus.get(index))
    baseline = results[0] if results else None
    summary = {
        "id": group.id,
        "topology": group.topology,
        "workload": group.workload,
        "description": group.description,
        "concurrency": group.concurrency,
        "units": group.units,
        "unit": group.unit,
        "repetitions": repetitions,
        "baseline": baseline.label if baseline else None,
        "seconds": round(time.perf_counter() - started, 2),
        "error": group_error,
        "subjects": [r.to_json(baseline) for r in results],
    }
    log(_one_line(summary))
    return summary


def _one_line(summary: dict[str, Any]) -> str:
    cells = []
    for s in summary["subjects"]:
        if s["error"]:
            cells.append(f"{s['label']}=ERROR")
        elif s["median"] is not None:
            ratio = f" {s['ratio']:.2f}x" if s["ratio"] is not None else ""
            cells.append(f"{s['label']}={s['median']:.0f}{ratio}")
    return f"  {summary['id']:<34} {summary['seconds']:>5.1f}s  " + ", ".join(cells)
