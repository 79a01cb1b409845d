"""A server that refuses, dies or freezes gives a CacheConnectionError within seconds, never a raw
redis exception and never a hang; and a burst larger than the pool waits instead of failing."""

from __future__ import annotations

import asyncio
import os
import signal
import socket

import pytest
from support.factories import MakeAdapter
from support.redis_servers import RedisServer

from rediscache import CacheConnectionError, CacheKey, RedisCacheAdapter

# The contract: a refused or frozen server raises within 10 s. The bound here is that promise,
# not a performance figure.
PROMISED = 10.0


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_refused_connection_is_a_cache_connection_error_naming_operation_and_server(
    make_adapter: MakeAdapter,
) -> None:
    port = _closed_port()
    cache = await make_adapter(f"redis://127.0.0.1:{port}/0")

    with pytest.raises(CacheConnectionError) as raised:
        await asyncio.wait_for(cache.get(CacheKey(key="k")), PROMISED)

    assert f"127.0.0.1:{port}" in str(raised.value)
    assert "get failed on" in str(raised.value)


async def test_a_frozen_server_is_a_cache_connection_error_within_the_promised_time(
    make_adapter: MakeAdapter, private_server: RedisServer
) -> None:
    cache = await make_adapter(private_server.url)
    await cache.set(CacheKey(key="k"), 1)
    assert private_server.process is not None
    os.kill(private_server.process.pid, signal.SIGSTOP)
    try:
        with pytest.raises(CacheConnectionError) as raised:
            await asyncio.wait_for(cache.get(CacheKey(key="k")), PROMISED)
    finally:
        os.kill(private_server.process.pid, signal.SIGCONT)
    assert "get failed" in str(raised.value)


async def test_a_server_that_died_mid_session_is_a_cache_connection_error(
    make_adapter: MakeAdapter, private_server: RedisServer
) -> None:
    cache = await make_adapter(private_server.url)
    await cache.set(CacheKey(key="k"), 1)
    private_server.kill()

    with pytest.raises(CacheConnectionError):
        await asyncio.wait_for(cache.set(CacheKey(key="k"), 2), PROMISED)


async def test_a_password_in_the_url_never_appears_in_errors(make_adapter: MakeAdapter) -> None:
    cache = await make_adapter(f"redis://user:s3cret@127.0.0.1:{_closed_port()}/0")

    with pytest.raises(CacheConnectionError) as raised:
        await asyncio.wait_for(cache.get(CacheKey(key="k")), PROMISED)

    assert "s3cret" not in str(raised.value)


async def test_a_burst_of_1000_calls_on_a_pool_of_5_all_succeed(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: object
) -> None:
    cache = await make_adapter(redis_server.url, max_connections=5)
    await cache.set(CacheKey(key="k"), "v")

    entries = await asyncio.gather(*(cache.get(CacheKey(key="k")) for _ in range(1000)))

    assert all(entry is not None and entry.value == "v" for entry in entries)
    assert (await cache.get_stats()).total_hits == 1000


@pytest.mark.cluster
async def test_a_burst_of_1000_calls_on_a_cluster_all_succeed(cluster_cache: RedisCacheAdapter) -> None:
    keys = [CacheKey(key=f"k{i}") for i in range(50)]
    await cluster_cache.set_many([(key, i) for i, key in enumerate(keys)])

    entries = await asyncio.gather(*(cluster_cache.get(keys[i % 50]) for i in range(1000)))

    assert [entry.value if entry else None for entry in entries] == [i % 50 for i in range(1000)]


@pytest.mark.cluster
async def test_a_fresh_cluster_adapter_serves_a_burst_before_it_was_ever_used(
    make_adapter: MakeAdapter, redis_cluster: object, cluster_client: object
) -> None:
    from support.redis_servers import RedisCluster

    assert isinstance(redis_cluster, RedisCluster)
    cache = await make_adapter(redis_cluster.url, cluster=True, max_connections=4)

    results = await asyncio.gather(*(cache.get(CacheKey(key=f"k{i}")) for i in range(500)))

    assert results == [None] * 500


async def test_a_caller_cancelling_mid_call_leaves_the_adapter_usable(
    make_adapter: MakeAdapter, private_server: RedisServer
) -> None:
    cache = await make_adapter(private_server.url, max_connections=1)
    await cache.set(CacheKey(key="k"), "v")
    assert private_server.process is not None
    os.kill(private_server.process.pid, signal.SIGSTOP)
    try:
        pending = asyncio.create_task(cache.get(CacheKey(key="k")))
        await asyncio.sleep(0.1)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
    finally:
        os.kill(private_server.process.pid, signal.SIGCONT)

    # The one connection was mid-command when cancelled: its unread answer must not reach this read.
    entry = await cache.get(CacheKey(key="k"))
    assert entry is not None and entry.value == "v"
    assert (await cache.get_stats()).total_hits >= 1
