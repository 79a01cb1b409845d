"""The load's stale-read check (``_load.LoadRun.stale_reads``) flags what it should and only that:
a topology test that passes must not pass because its checker is blind."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import uuid4

import pytest
from support.cluster_ops import ClusterOps

from ._load import HYBRID_PROPAGATION, Labeled, LoadRun, Op, Read, Worker, Workload, open_adapter, worker_keys

PLAIN = Labeled("redis-b", None)
HYBRID = Labeled("hybrid-b", None)


def _run(ops: list[Op], *reads: Read) -> LoadRun:
    return LoadRun(history={"k": ops}, reads=list(reads))


def _set(value: int, start: float, end: float, *, acked: bool = True, by: str = "redis-a") -> Op:
    return Op("k", "set", value, by, start, end, acked)


def _read(value: int | None, start: float, via: Labeled = PLAIN) -> Read:
    return Read("k", via, start, start + 0.001, value, final=False)


def test_a_value_older_than_the_last_acknowledged_write_is_stale() -> None:
    run = _run([_set(1, 0.0, 0.1), _set(2, 0.2, 0.3)], _read(1, 0.4))
    assert len(run.stale_reads()) == 1


def test_an_entry_read_after_an_acknowledged_invalidation_is_stale() -> None:
    invalidation = Op("k", "invalidate", None, "redis-a", 0.2, 0.3, True)
    run = _run([_set(1, 0.0, 0.1), invalidation], _read(1, 0.4))
    assert len(run.stale_reads()) == 1


def test_a_miss_for_an_acknowledged_write_is_a_lost_value() -> None:
    assert len(_run([_set(1, 0.0, 0.1)], _read(None, 0.2)).stale_reads()) == 1


def test_either_outcome_of_an_unacknowledged_write_is_allowed() -> None:
    ops = [_set(1, 0.0, 0.1), _set(2, 0.2, 0.3, acked=False)]
    assert _run(ops, _read(1, 0.4), _read(2, 0.5)).stale_reads() == []


def test_a_write_in_flight_may_be_seen_before_it_is_acknowledged() -> None:
    assert _run([_set(1, 0.0, 0.1), _set(2, 0.2, 0.3)], _read(2, 0.25)).stale_reads() == []


def test_a_doubtful_acknowledged_write_may_be_lost() -> None:
    run = _run([_set(1, 0.0, 0.1), _set(2, 0.2, 0.3)], _read(1, 0.4))
    assert run.stale_reads(doubtful=lambda op: op.value == 2) == []


def test_another_hybrid_instance_may_trail_a_change_by_the_propagation_slack_only() -> None:
    ops = [_set(1, 0.0, 0.1), _set(2, 0.2, 0.3, by="hybrid-a")]
    within = _read(1, 0.3 + HYBRID_PROPAGATION / 2, HYBRID)
    beyond = _read(1, 0.3 + HYBRID_PROPAGATION * 2, HYBRID)
    assert [read.start for read in (within, beyond) if _run(ops, read).stale_reads()] == [beyond.start]


def test_a_plain_adapter_gets_no_propagation_slack() -> None:
    ops = [_set(1, 0.0, 0.1), _set(2, 0.2, 0.3, by="hybrid-a")]
    assert len(_run(ops, _read(1, 0.3 + HYBRID_PROPAGATION / 2)).stale_reads()) == 1


@pytest.mark.cluster
async def test_the_load_sees_an_l1_copy_that_a_silent_writer_left_stale(healthy_topology: ClusterOps) -> None:
    # A writer that announces nothing (publish_invalidations=False) leaves the other instance's L1
    # copies stale until that instance changes the keys itself: the load must report those reads.
    prefix = f"rct{uuid4().hex[:10]}"
    silent = await open_adapter("redis", healthy_topology.cluster.url, prefix, publish_invalidations=False)
    hybrid = await open_adapter("hybrid", healthy_topology.cluster.url, prefix)
    try:
        keys = worker_keys(silent, "w0", [0, 5, 10])
        worker = Worker("w0", Labeled("redis-a", silent), Labeled("hybrid-b", hybrid), keys)

        async def nothing() -> Any:
            await asyncio.sleep(1.0)

        run = await Workload([worker]).run(nothing, warmup=0.1, keep_loading=lambda _: 0.0)
    finally:
        await silent.close()
        await hybrid.close()
    stale = run.stale_reads()
    assert stale and all(line.startswith("hybrid-b") for line in stale), run.summary()
