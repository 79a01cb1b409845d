"""Fixtures of the network-fault tests: FaultProxy instances in front of the session server or a
private one (``private_server`` and ``redis_server`` come from tests/conftest.py).

Teardown order matters here: adapters are closed while their proxies still forward (restored, no
delay), then the proxies close, and last this test's keys are deleted from the session server, so
nothing an adapter writes on its way out is left behind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio
from support.factories import MakeAdapter, MakeProxy
from support.faults import FaultProxy
from support.redis_servers import RedisServer, delete_test_keys


@pytest_asyncio.fixture(autouse=True)
async def _delete_session_keys_last(request: pytest.FixtureRequest, key_prefix: str) -> AsyncIterator[None]:
    # Autouse: set up before, so torn down after, every other fixture of the test.
    yield
    if "redis_server" in request.fixturenames:
        server: RedisServer = request.getfixturevalue("redis_server")
        client = redis.asyncio.Redis.from_url(server.url)  # straight to the server, not through a proxy
        try:
            await delete_test_keys(client, key_prefix)
        finally:
            await client.aclose()


@pytest_asyncio.fixture
async def make_proxy() -> AsyncIterator[MakeProxy]:
    factory = MakeProxy()
    yield factory
    for proxy in factory.proxies:
        await proxy.close()


@pytest_asyncio.fixture
async def make_adapter(make_proxy: MakeProxy, make_adapter: MakeAdapter) -> AsyncIterator[MakeAdapter]:
    """tests/conftest.py's ``make_adapter``, set up after ``make_proxy`` so adapters close before proxies."""
    yield make_adapter
    for proxy in make_proxy.proxies:
        proxy.restore()
        proxy.set_delay(round_trip=0.0)


@pytest_asyncio.fixture
async def fault_proxy(make_proxy: MakeProxy, redis_server: RedisServer) -> FaultProxy:
    """A FaultProxy in front of the session server."""
    return await make_proxy(redis_server)
