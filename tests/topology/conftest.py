"""Fixtures of the topology tests: one private 3-master + 3-replica cluster for the whole session.

The cluster is this session's own (never ``REDIS_CLUSTER_URL``): the tests fail its nodes over, kill,
freeze and reshard them. Each test or scenario starts from a healthy cluster (every node up, one
in-sync replica per master) and puts it back that way afterwards, flushing what it wrote, so the
cluster is started once, which costs a few seconds, and shared.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from support.cluster_ops import ClusterOps
from support.redis_servers import RedisCluster, how_to_get_redis, local_cluster_with_replicas

from ._load import open_adapter

# Short, so that a dead master is replaced in about 3 s; long enough that a loaded 2-core machine
# never makes a healthy node look dead.
NODE_TIMEOUT_MS = 1500


@pytest.fixture(scope="session")
def replicated_cluster() -> Iterator[RedisCluster]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.fail(how_to_get_redis("local redis-server and redis-cli binaries (a private cluster)"), pytrace=False)
    with local_cluster_with_replicas(masters=3, replicas_per_master=1, node_timeout_ms=NODE_TIMEOUT_MS) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def topology(replicated_cluster: RedisCluster) -> ClusterOps:
    return ClusterOps(replicated_cluster)


@pytest_asyncio.fixture
async def healthy_topology(topology: ClusterOps) -> AsyncIterator[ClusterOps]:
    """The cluster, healthy before the test and made healthy (and empty) again after it."""
    await asyncio.to_thread(topology.restore)
    try:
        yield topology
    finally:
        await asyncio.to_thread(topology.restore)
        await asyncio.to_thread(topology.flush)


@pytest_asyncio.fixture
async def make_cluster_adapter(replicated_cluster: RedisCluster, key_prefix: str) -> AsyncIterator[Any]:
    """``await make_cluster_adapter("redis" | "hybrid", **options)``: adapters on the private cluster
    with this test's prefix, closed after the test."""
    made: list[Any] = []

    async def make(kind: str = "redis", **options: Any) -> Any:
        adapter = await open_adapter(kind, replicated_cluster.url, key_prefix, **options)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.close()
