"""How big a run is: the full run of ``make bench`` (6 to 7 minutes on 2 cores) and ``--quick`` (CI-sized)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["FULL", "QUICK", "Settings"]


@dataclass(frozen=True)
class Settings:
    mode: str
    units: int  # operations per timed run of a single-op workload
    batch_units: int  # keys per timed run of a batch workload (get_many/set_many of 100 keys, 100 single calls)
    repetitions: int  # timed runs per subject (interleaved); the median is reported
    warmup_fraction: float  # size of the warm-up run, as a fraction of a timed run
    concurrency: tuple[int, ...]
    invalidation_sizes: tuple[int, ...]  # members of the tag invalidated by delete_by_tags
    invalidation_repetitions: int
    cluster_invalidation_size: int
    memory_entries: int  # entries per memory case (12 cases: 3 payload sizes, TTL or not, tagged or not)
    server_ops: int  # operations per loop of the server-cost rows (server CPU per get)
    server_repetitions: int
    aof_ops: int  # operations per AOF measurement
    probe_min_size: int  # invalidations of at least this many members are watched by another client's GETs
    staleness_changes: int
    profile_ops: int  # 0: no profiling

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


FULL = Settings(
    mode="full",
    units=2000,
    batch_units=4000,
    repetitions=11,
    warmup_fraction=0.25,
    concurrency=(1, 32),
    invalidation_sizes=(1_000, 10_000, 100_000),
    invalidation_repetitions=3,
    cluster_invalidation_size=10_000,
    memory_entries=10_000,
    server_ops=3000,
    server_repetitions=7,
    aof_ops=1000,
    probe_min_size=10_000,
    staleness_changes=500,
    profile_ops=5000,
)

QUICK = Settings(
    mode="quick",
    units=1000,
    batch_units=3200,
    repetitions=3,
    warmup_fraction=0.25,
    concurrency=(1, 32),
    invalidation_sizes=(1_000, 10_000),
    invalidation_repetitions=2,
    cluster_invalidation_size=10_000,
    memory_entries=5_000,
    server_ops=2000,
    server_repetitions=5,
    aof_ops=1000,
    probe_min_size=10_000,
    staleness_changes=100,
    profile_ops=0,
)
