"""Root conftest: real servers and clients for every Redis test.

Servers are session-wide and lazy: a run that requests none of these fixtures starts nothing. See
tests/support/redis_servers.py for where they come from (REDIS_URL / REDIS_CLUSTER_URL and
VALKEY_URL / VALKEY_CLUSTER_URL, local redis-server / valkey-server processes, or Docker), and
tests/support/ports.py for ``REDISCACHE_TEST_PORTS``.

``redis_server`` / ``redis_cluster`` are Redis, ``valkey_server`` / ``valkey_cluster`` Valkey. A
directory whose tests should run on both overrides ``server_kind`` with both kinds as parameters
(tests/redis_adapter/conftest.py does); ``private_server`` follows ``server_kind``.

Each test gets its own ``key_prefix``; the client fixtures delete the keys containing it after the
test, so tests never need FLUSHDB and can share one server (even one that is not ours). The deletes
go through ``key_cleaner``: one client per server for the whole session.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import uuid4

import pytest
import pytest_asyncio
import redis.asyncio
from support.factories import MakeAdapter
from support.key_cleaner import KeyCleaner
from support.proxy import CountingProxy
from support.redis_servers import (
    SERVER_KINDS,
    RedisCluster,
    RedisServer,
    RedisUnavailableError,
    ServerKind,
    describe_servers,
    local_server,
    provide_redis_cluster,
    provide_redis_server,
    require_binary,
    server_version,
)

from rediscache import RedisCacheAdapter


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The servers of each kind the run would use: kind, version, and where they come from."""
    return describe_servers()


# What the session's shared servers turned out to be, for the summary (shown even with -q).
_STARTED: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in dict.fromkeys(_STARTED):
        terminalreporter.write_line(line)


# Under pytest-xdist (make test runs the suite in parallel workers) each worker starts its own
# servers: it hands its lines to the controller, which prints them in its summary.
def pytest_sessionfinish(session: pytest.Session) -> None:
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "?")
        output["rediscache_servers"] = [f"{line} (worker {worker})" for line in _STARTED]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    _STARTED.extend(getattr(node, "workeroutput", {}).get("rediscache_servers", []))


def _server(kind: ServerKind) -> Iterator[RedisServer]:
    try:
        with provide_redis_server(kind) as server:
            _STARTED.append(f"{kind} standalone: {server_version(server.url)} at {server.address}")
            yield server
    except RedisUnavailableError as exc:
        # A failure (not a skip): a test that needs a server must not pass silently without it.
        raise pytest.fail.Exception(str(exc), pytrace=False) from None


def _cluster(kind: ServerKind) -> Iterator[RedisCluster]:
    try:
        with provide_redis_cluster(kind) as cluster:
            _STARTED.append(f"{kind} cluster: {server_version(cluster.url)}, {len(cluster.nodes)} masters")
            yield cluster
    except RedisUnavailableError as exc:
        # A failure (not a skip): a test that needs a server must not pass silently without it.
        raise pytest.fail.Exception(str(exc), pytrace=False) from None


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The session's standalone Redis."""
    yield from _server("redis")


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """The session's 3-master Redis Cluster."""
    yield from _cluster("redis")


@pytest.fixture(scope="session")
def valkey_server() -> Iterator[RedisServer]:
    """The session's standalone Valkey."""
    yield from _server("valkey")


@pytest.fixture(scope="session")
def valkey_cluster() -> Iterator[RedisCluster]:
    """The session's 3-master Valkey cluster."""
    yield from _cluster("valkey")


@pytest.fixture
def server_kind() -> ServerKind:
    """The kind of server this test runs on: Redis, unless a directory's conftest parametrizes it."""
    return SERVER_KINDS[0]


@pytest.fixture
def private_server(server_kind: ServerKind) -> Iterator[RedisServer]:
    """A server of this test's own (of ``server_kind``), for tests that stop, freeze, restart or
    reconfigure it."""
    try:
        binary = require_binary(server_kind)
    except RedisUnavailableError as exc:
        raise pytest.fail.Exception(f"{exc}\n(to stop and restart a server of its own)", pytrace=False) from None
    with local_server(binary=binary) as server:
        yield server


@pytest_asyncio.fixture(scope="session")
async def key_cleaner() -> AsyncIterator[KeyCleaner]:
    """Deletes a test's keys, with one client per server or cluster for the whole session."""
    cleaner = KeyCleaner()
    try:
        yield cleaner
    finally:
        await cleaner.aclose()


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

    try:
        yield make
    finally:
        for adapter in made:
            await adapter.close()


@pytest.fixture
def key_prefix() -> str:
    """Unique per test; letters and digits only, so it is safe in hash tags and SCAN patterns."""
    return f"rct{uuid4().hex[:10]}"


# The clean-ups do not use the test's client: the test may have closed it, or left it in a state
# (SELECTed database, CLIENT REPLY OFF, broken pipeline) where it cannot be trusted.


@pytest_asyncio.fixture
async def redis_client(
    redis_server: RedisServer, key_prefix: str, key_cleaner: KeyCleaner
) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=False)
    try:
        yield client
    finally:
        try:
            await client.aclose()
        finally:
            await key_cleaner.delete_standalone(redis_server.url, key_prefix)


@pytest_asyncio.fixture
async def cluster_client(
    redis_cluster: RedisCluster, key_prefix: str, key_cleaner: KeyCleaner
) -> AsyncIterator[redis.asyncio.RedisCluster]:
    client = redis.asyncio.RedisCluster.from_url(redis_cluster.url, decode_responses=False)
    try:
        await client.initialize()
        yield client
    finally:
        try:
            await client.aclose()
        finally:
            await key_cleaner.delete_cluster(redis_cluster.url, key_prefix)


@pytest_asyncio.fixture
async def counting_proxy(
    redis_server: RedisServer, key_prefix: str, key_cleaner: KeyCleaner
) -> AsyncIterator[CountingProxy]:
    """A CountingProxy in front of ``redis_server``; connect with ``Redis.from_url(counting_proxy.url)``."""
    try:
        async with CountingProxy(redis_server.host, redis_server.port) as proxy:
            yield proxy
    finally:
        await key_cleaner.delete_standalone(redis_server.url, key_prefix)
