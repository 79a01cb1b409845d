"""Fixtures for the tests of what is specific to ``RedisCacheAdapter`` (the port's rules are in
``tests/conformance``)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from support.factories import MakeAdapter
from support.redis_servers import RedisCluster, RedisServer, how_to_get_redis, local_server

from rediscache import RedisCacheAdapter


@pytest.fixture
def private_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own, for tests that stop, freeze or reconfigure it."""
    if shutil.which("redis-server") is None:
        pytest.fail(how_to_get_redis("a local redis-server binary (to stop and restart a server)"), pytrace=False)
    with local_server() as server:
        yield server


@pytest_asyncio.fixture
async def make_adapter(key_prefix: str) -> AsyncIterator[MakeAdapter]:
    """Build adapters (default: this test's prefix) and close them all after the test."""
    made: list[RedisCacheAdapter] = []

    async def make(url: str, **options: Any) -> RedisCacheAdapter:
        options.setdefault("key_prefix", key_prefix)
        adapter = RedisCacheAdapter(url, **options)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.close()


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
