"""Fixtures for the tests of what is specific to ``RedisCacheAdapter`` (the port's rules are in
``tests/conformance``; ``make_adapter`` and ``private_server`` come from ``tests/conftest.py``).

Every test here that uses a server runs on Redis and on Valkey: ``server_kind`` is parametrized, and
``redis_server``, ``redis_cluster`` (and so ``redis_client``, ``cluster_client``, ``counting_proxy``)
and ``private_server`` give the server of the test's kind.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio
from support.factories import MakeAdapter
from support.redis_servers import SERVER_KINDS, RedisCluster, RedisServer, ServerKind

from rediscache import RedisCacheAdapter


@pytest.fixture(
    params=[pytest.param(kind, marks=(pytest.mark.valkey,) if kind == "valkey" else ()) for kind in SERVER_KINDS]
)
def server_kind(request: pytest.FixtureRequest) -> ServerKind:
    """Redis, then Valkey."""
    kind: ServerKind = request.param
    return kind


@pytest.fixture
def redis_server(server_kind: ServerKind, redis_server: RedisServer, request: pytest.FixtureRequest) -> RedisServer:
    """The session's standalone server of this test's kind."""
    if server_kind == "redis":
        return redis_server
    server: RedisServer = request.getfixturevalue(f"{server_kind}_server")
    return server


@pytest.fixture
def redis_cluster(server_kind: ServerKind, request: pytest.FixtureRequest) -> RedisCluster:
    """The session's cluster of this test's kind."""
    cluster: RedisCluster = request.getfixturevalue(f"{server_kind}_cluster")
    return cluster


@pytest_asyncio.fixture
async def cache(make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: Any) -> RedisCacheAdapter:
    """A standalone adapter on this test's prefix (``redis_client`` deletes its keys afterwards)."""
    return await make_adapter(redis_server.url)


@pytest_asyncio.fixture
async def cluster_cache(
    make_adapter: MakeAdapter, redis_cluster: RedisCluster, cluster_client: Any
) -> RedisCacheAdapter:
    """A cluster adapter (16 shards) on this test's prefix (``cluster_client`` deletes its keys afterwards)."""
    return await make_adapter(redis_cluster.url, cluster=True)
