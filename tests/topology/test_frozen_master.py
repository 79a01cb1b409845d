"""A frozen master (SIGSTOP: its sockets stay open, nothing answers) costs a read about one
``operation_timeout``, and a fail-open ``CacheService`` then serves the factory's value."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from support.cluster_ops import ClusterOps

from rediscache import CacheConnectionError, CacheKey
from rediscache.kit import CacheService

from ._load import keys_on_shards, shard_slot

pytestmark = pytest.mark.cluster

OPERATION_TIMEOUT = 1.0
CONNECT_TIMEOUT = 0.5
# The contract: a call costs at most operation_timeout, plus connect_timeout when it had to open a
# connection (a retry after a timed-out attempt may need a fresh one); the slack is for scheduling.
BOUND = OPERATION_TIMEOUT + CONNECT_TIMEOUT + 0.5
HANG_GUARD = 10.0  # a call that hangs fails the test instead of blocking the run


@asynccontextmanager
async def frozen_master(topology: ClusterOps, slot: int) -> AsyncIterator[None]:
    """SIGSTOP the master serving ``slot``; SIGCONT on exit, whatever happened."""
    master = await asyncio.to_thread(topology.slot_owner, slot)
    replica = await asyncio.to_thread(topology.replica_of, master)
    # These tests are about a master that does not answer, not about its replacement: its replica
    # must not take over while it is frozen (the fixture restores the setting).
    await asyncio.to_thread(topology.forbid_automatic_failover, replica)
    topology.freeze(master)
    try:
        yield
    finally:
        topology.thaw(master)


async def _warm_adapter(make_cluster_adapter: Any) -> tuple[Any, CacheKey]:
    adapter = await make_cluster_adapter("redis", operation_timeout=OPERATION_TIMEOUT, connect_timeout=CONNECT_TIMEOUT)
    key = keys_on_shards(adapter, "k", [0])[0]
    await adapter.set(key, "cached")
    # The adapter knows the slot map and holds a connection to the master: the frozen call below
    # needs no new connection for its first attempt.
    entry = await adapter.get(key)
    assert entry is not None and entry.value == "cached"
    return adapter, key


async def test_a_get_from_a_frozen_master_raises_cache_connection_error_within_operation_timeout(
    healthy_topology: ClusterOps, make_cluster_adapter: Any
) -> None:
    adapter, key = await _warm_adapter(make_cluster_adapter)
    async with frozen_master(healthy_topology, shard_slot(adapter, 0)):
        started = time.monotonic()
        with pytest.raises(CacheConnectionError):
            await asyncio.wait_for(adapter.get(key), HANG_GUARD)
        elapsed = time.monotonic() - started
    assert elapsed <= BOUND, f"the get took {elapsed:.2f}s against a frozen master (bound {BOUND}s)"


async def test_get_or_set_of_a_fail_open_service_serves_the_factory_value_while_the_master_is_frozen(
    healthy_topology: ClusterOps, make_cluster_adapter: Any
) -> None:
    adapter, key = await _warm_adapter(make_cluster_adapter)
    service = CacheService(adapter, fail_open=True)
    calls = 0

    async def factory() -> str:
        nonlocal calls
        calls += 1
        return "fresh"

    async with frozen_master(healthy_topology, shard_slot(adapter, 0)):
        value = await asyncio.wait_for(service.get_or_set(key, factory), HANG_GUARD)
    # "cached" would mean the frozen master answered; the factory ran once for the failed read.
    assert (value, calls) == ("fresh", 1), f"value {value!r}, factory calls {calls}, health {service.health()}"
