"""Fixtures of the kit tests: adapters on real Redis (standalone and cluster) and in memory.

Every Redis adapter here uses the test's ``key_prefix``; the ``redis_client``/``cluster_client``
fixtures delete the keys carrying it after the test.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio
from support.factories import MakeAdapter
from support.redis_servers import RedisCluster, RedisServer

from rediscache import CacheAdapter, MemoryCacheAdapter, RedisCacheAdapter


@pytest_asyncio.fixture
async def redis_adapter(make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: Any) -> RedisCacheAdapter:
    return await make_adapter(redis_server.url)


@pytest_asyncio.fixture
async def cluster_adapter(
    make_adapter: MakeAdapter, redis_cluster: RedisCluster, cluster_client: Any
) -> RedisCacheAdapter:
    return await make_adapter(redis_cluster.url, cluster=True)


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def adapter(backend: str, request: pytest.FixtureRequest) -> CacheAdapter:
    """The same test on the in-process adapter and on Redis (the Redis fixtures are only set up for it)."""
    if backend == "memory":
        return MemoryCacheAdapter()  # nothing to close: no cleanup task is started
    adapter: CacheAdapter = request.getfixturevalue("redis_adapter")
    return adapter


class FakeClock:
    """Monotonic seconds that move only when told: circuit-breaker cool-downs without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
