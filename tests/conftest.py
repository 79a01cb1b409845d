"""Root conftest: real Redis servers and clients for every Redis test.

Servers are session-wide and lazy: a run that requests none of these fixtures starts nothing. See
tests/support/redis_servers.py for where they come from (REDIS_URL / REDIS_CLUSTER_URL, local
redis-server processes, or Docker).

Each test gets its own ``key_prefix``; the client fixtures delete the keys containing it after the
test, so tests never need FLUSHDB and can share one server (even one that is not ours).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import uuid4

import pytest
import pytest_asyncio
import redis.asyncio
from support.factories import MakeAdapter
from support.proxy import CountingProxy
from support.redis_servers import (
    RedisCluster,
    RedisServer,
    RedisUnavailableError,
    delete_cluster_test_keys,
    delete_test_keys,
    how_to_get_redis,
    local_server,
    provide_redis_cluster,
    provide_redis_server,
)

from rediscache import RedisCacheAdapter


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    try:
        with provide_redis_server() as server:
            yield server
    except RedisUnavailableError as exc:
        # A failure (not a skip): a test that needs Redis must not pass silently without it.
        raise pytest.fail.Exception(str(exc), pytrace=False) from None


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    try:
        with provide_redis_cluster() as cluster:
            yield cluster
    except RedisUnavailableError as exc:
        # A failure (not a skip): a test that needs Redis must not pass silently without it.
        raise pytest.fail.Exception(str(exc), pytrace=False) from None


@pytest.fixture
def private_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own, for tests that stop, freeze, restart or reconfigure it."""
    if shutil.which("redis-server") is None:
        pytest.fail(how_to_get_redis("a local redis-server binary (to stop and restart a server)"), pytrace=False)
    with local_server() as server:
        yield server


@pytest_asyncio.fixture
async def make_adapter(key_prefix: str) -> AsyncIterator[MakeAdapter]:
    """``await make_adapter(url, **options)``: RedisCacheAdapters (default: this test's prefix), all
    closed after the test."""
    made: list[RedisCacheAdapter] = []

    async def make(url: str, **options: Any) -> RedisCacheAdapter:
        options.setdefault("key_prefix", key_prefix)
        adapter = RedisCacheAdapter(url, **options)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.close()


@pytest.fixture
def key_prefix() -> str:
    """Unique per test; letters and digits only, so it is safe in hash tags and SCAN patterns."""
    return f"rct{uuid4().hex[:10]}"


@pytest_asyncio.fixture
async def redis_client(redis_server: RedisServer, key_prefix: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=False)
    try:
        yield client
    finally:
        await client.aclose()
        await _delete_standalone_keys(redis_server, key_prefix)


@pytest_asyncio.fixture
async def cluster_client(redis_cluster: RedisCluster, key_prefix: str) -> AsyncIterator[redis.asyncio.RedisCluster]:
    client = redis.asyncio.RedisCluster.from_url(redis_cluster.url, decode_responses=False)
    await client.initialize()
    try:
        yield client
    finally:
        await client.aclose()
        await _delete_cluster_keys(redis_cluster, key_prefix)


@pytest_asyncio.fixture
async def counting_proxy(redis_server: RedisServer, key_prefix: str) -> AsyncIterator[CountingProxy]:
    """A CountingProxy in front of ``redis_server``; connect with ``Redis.from_url(counting_proxy.url)``."""
    async with CountingProxy(redis_server.host, redis_server.port) as proxy:
        yield proxy
    await _delete_standalone_keys(redis_server, key_prefix)


# The clean-ups use fresh clients: the test may have closed its client, or left it in a state
# (SELECTed database, CLIENT REPLY OFF, broken pipeline) where it cannot be trusted.


async def _delete_standalone_keys(server: RedisServer, key_prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(server.url)
    try:
        await delete_test_keys(client, key_prefix)
    finally:
        await client.aclose()


async def _delete_cluster_keys(cluster: RedisCluster, key_prefix: str) -> None:
    client = redis.asyncio.RedisCluster.from_url(cluster.url)
    try:
        await delete_cluster_test_keys(client, key_prefix)
    finally:
        await client.aclose()
