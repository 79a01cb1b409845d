"""``wait_for_replicas``: an invalidation a failover can undo is never silently acknowledged.

The master serving shard 0 holds 240 tagged entries. Its replica is made to lag (its replication
link is cut and kept down, see ``ClusterOps.cut_replication``), the entries are invalidated with
``delete_by_tags``, and the lagging replica is promoted with ``CLUSTER FAILOVER TAKEOVER``, which
does not let it catch up first. The harness checks that the replica really missed the invalidation
and that the promoted node really still holds the entries; then either the adapter no longer serves
any of them, or it told the caller (a WARNING and ``unreplicated_invalidations`` by default,
``CacheReplicationError`` with ``on_unreplicated="raise"``). With the replica in sync, the same
invalidation is acknowledged without a warning and survives the same takeover.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from support.cluster_ops import ClusterOps, TopologyError
from support.redis_servers import RedisServer

from rediscache import CacheConnectionError, CacheReplicationError

from ._load import keys_on_shards, shard_slot

pytestmark = pytest.mark.cluster

SHARD = 0
ENTRIES = 240  # under one invalidation batch (500): one script on the shard
TAG = "doomed"
READ_BUDGET = 5.0  # for the first reads after the takeover, while the adapter finds the new master


class Shard0:
    """The test's entries on shard 0, the master serving it and that master's replica."""

    def __init__(self, topology: ClusterOps, adapter: Any) -> None:
        self.topology = topology
        self.adapter = adapter
        self.keys = keys_on_shards(adapter, "e", [SHARD] * ENTRIES, tags=[TAG])
        self.slot = shard_slot(adapter, SHARD)
        self.master: RedisServer
        self.replica: RedisServer

    async def populate(self) -> None:
        await self.adapter.set_many([(key, i) for i, key in enumerate(self.keys)])
        self.master = await asyncio.to_thread(self.topology.slot_owner, self.slot)
        self.replica = await asyncio.to_thread(self.topology.replica_of, self.master)
        expected = await self.keys_on(self.master)
        # Every entry reached the replica before it is made to lag.
        await asyncio.to_thread(
            self.topology.wait_until,
            f"the replica {self.replica.address} holding slot {self.slot}'s {expected} keys",
            lambda: True if self.topology.keys_in_slot(self.replica, self.slot) == expected else None,
        )

    async def keys_on(self, server: RedisServer) -> int:
        return await asyncio.to_thread(self.topology.keys_in_slot, server, self.slot)

    async def readable(self) -> int:
        """How many of the entries the adapter serves, once it reaches the shard again."""
        deadline = time.monotonic() + READ_BUDGET
        while True:
            try:
                entries = await self.adapter.get_many(self.keys)
            except CacheConnectionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
                continue
            return sum(entry is not None for entry in entries)


async def _invalidate_behind_a_lagging_replica(shard: Shard0, invalidate: Any) -> Any:
    """Cut the replica off, run ``invalidate()``, promote the replica; returns what ``invalidate`` returned.

    Raises TopologyError unless the replica missed the invalidation and was promoted without it.
    """
    topology = shard.topology
    offset = await asyncio.to_thread(topology.cut_replication, shard.replica)
    held = await shard.keys_on(shard.replica)
    outcome = await invalidate()
    await asyncio.to_thread(topology.assert_still_cut, shard.replica, offset)
    left_on_master = await shard.keys_on(shard.master)
    if not held - left_on_master >= ENTRIES:
        raise TopologyError(f"the invalidation removed {held - left_on_master} keys on the master, not {ENTRIES}")
    if await shard.keys_on(shard.replica) != held:
        raise TopologyError("the lagging replica received the invalidation")
    await asyncio.to_thread(topology.failover, shard.master, "TAKEOVER")
    if await shard.keys_on(shard.replica) != held:
        raise TopologyError("the promoted replica does not hold the invalidated entries any more")
    return outcome


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("rediscache") and r.levelno >= logging.WARNING]


async def test_an_invalidation_a_lagging_replica_missed_is_reported_by_a_warning_and_a_counter(
    healthy_topology: ClusterOps, make_cluster_adapter: Any, caplog: pytest.LogCaptureFixture
) -> None:
    shard = Shard0(healthy_topology, await make_cluster_adapter("redis"))
    await shard.populate()

    async def invalidate() -> int:
        with caplog.at_level(logging.WARNING, logger="rediscache"):
            return int(await shard.adapter.delete_by_tags([TAG]))

    removed = await _invalidate_behind_a_lagging_replica(shard, invalidate)
    readable = await shard.readable()
    counter = shard.adapter.unreplicated_invalidations
    in_stats = (await shard.adapter.get_stats()).model_extra.get("unreplicated_invalidations")
    warnings = _warnings(caplog)
    told = bool(warnings) and counter >= 1 and (in_stats or 0) >= 1
    assert readable == 0 or told, (
        f"{readable} of {ENTRIES} invalidated entries are served again after the failover, and the caller was "
        f"not told: delete_by_tags returned {removed}, warnings {warnings}, unreplicated_invalidations "
        f"{counter} (stats: {in_stats})"
    )


async def test_an_invalidation_a_lagging_replica_missed_raises_cache_replication_error_when_asked_to(
    healthy_topology: ClusterOps, make_cluster_adapter: Any
) -> None:
    shard = Shard0(healthy_topology, await make_cluster_adapter("redis", on_unreplicated="raise"))
    await shard.populate()

    async def invalidate() -> CacheReplicationError | int:
        try:
            return int(await shard.adapter.delete_by_tags([TAG]))
        except CacheReplicationError as exc:
            return exc

    outcome = await _invalidate_behind_a_lagging_replica(shard, invalidate)
    readable = await shard.readable()
    assert readable == 0 or isinstance(outcome, CacheReplicationError), (
        f"{readable} of {ENTRIES} invalidated entries are served again after the failover, "
        f"and delete_by_tags returned {outcome!r} instead of raising CacheReplicationError"
    )
    # What the call would have returned travels with the error.
    assert not isinstance(outcome, CacheReplicationError) or outcome.result == ENTRIES, outcome.result


async def test_an_invalidation_an_in_sync_replica_acknowledged_survives_a_takeover_without_a_warning(
    healthy_topology: ClusterOps, make_cluster_adapter: Any, caplog: pytest.LogCaptureFixture
) -> None:
    shard = Shard0(healthy_topology, await make_cluster_adapter("redis"))
    await shard.populate()

    with caplog.at_level(logging.WARNING, logger="rediscache"):
        removed = await shard.adapter.delete_by_tags([TAG])
    # At once: a takeover does not let the replica catch up, only the WAIT made sure it had it all.
    await asyncio.to_thread(healthy_topology.failover, shard.master, "TAKEOVER")
    readable = await shard.readable()

    told = (_warnings(caplog), shard.adapter.unreplicated_invalidations)
    assert (removed, readable, told) == (ENTRIES, 0, ([], 0)), (
        f"removed {removed}, {readable} entries readable after the takeover, (warnings, counter) {told}"
    )
