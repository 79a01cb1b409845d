"""Fixtures for the tests of what is specific to ``RedisCacheAdapter`` (the port's rules are in
``tests/conformance``; ``make_adapter`` and ``private_server`` come from ``tests/conftest.py``)."""

from __future__ import annotations

from typing import Any

import pytest_asyncio
from support.factories import MakeAdapter
from support.redis_servers import RedisCluster, RedisServer

from rediscache import RedisCacheAdapter


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
