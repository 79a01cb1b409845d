"""Smoke tests of the real-Redis fixtures (tests/conftest.py) and of tests/support/proxy.py."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio
from redis.exceptions import ClusterCrossSlotError, RedisClusterException
from support.proxy import CountingProxy, RespCommandParser
from support.redis_servers import (
    RedisCluster,
    RedisServer,
    delete_cluster_test_keys,
    delete_test_keys,
    key_pattern,
    local_server,
    ping,
)

# -- standalone ----------------------------------------------------------------------------------


async def test_standalone_ping_and_set_get(redis_client: redis.asyncio.Redis, key_prefix: str) -> None:
    assert await redis_client.ping() is True
    await redis_client.set(f"{key_prefix}:greeting", b"hello")
    assert await redis_client.get(f"{key_prefix}:greeting") == b"hello"


def test_standalone_server_description(redis_server: RedisServer) -> None:
    assert redis_server.url.startswith("redis")
    assert redis_server.port > 0
    if redis_server.restartable:
        assert redis_server.is_running()


async def test_delete_test_keys_removes_only_this_tests_keys(
    redis_client: redis.asyncio.Redis, key_prefix: str
) -> None:
    other = f"rct{'0' * 10}neighbour"
    await redis_client.mset({f"{key_prefix}:a": 1, f"{{{key_prefix}}}:tagged": 2, other: 3})
    try:
        assert await delete_test_keys(redis_client, key_prefix) == 2
        assert await redis_client.exists(f"{key_prefix}:a", f"{{{key_prefix}}}:tagged") == 0
        assert await redis_client.get(other) == b"3"
    finally:
        await redis_client.delete(other)


def test_key_prefix_is_unique_and_safe(key_prefix: str) -> None:
    assert key_prefix.startswith("rct") and key_prefix.isalnum() and len(key_prefix) == 13
    assert key_pattern(key_prefix) == f"*{key_prefix}*"


async def test_owned_local_server_restarts_on_the_same_port(redis_server: RedisServer) -> None:
    if not shutil.which("redis-server"):
        # Servers from REDIS_URL or Docker cannot be restarted, and say so.
        with pytest.raises(RuntimeError, match="cannot stop"):
            redis_server.stop()
        return
    # A private server: stopping the session one would disturb the other tests.
    with local_server() as server:
        assert server.restartable and server.is_running()
        server.stop()
        assert not server.is_running()
        assert not ping(server.host, server.port)
        server.start()
        server.kill()
        assert not server.is_running()
        server.start()
        client = redis.asyncio.Redis.from_url(server.url)
        try:
            assert await client.ping() is True
        finally:
            await client.aclose()


# -- cluster -------------------------------------------------------------------------------------


@pytest.mark.cluster
async def test_cluster_is_up_with_three_masters(
    redis_cluster: RedisCluster, cluster_client: redis.asyncio.RedisCluster
) -> None:
    assert await cluster_client.ping() is True
    primaries = cluster_client.get_primaries()
    assert len(primaries) == 3
    assert {f"{node.host}:{node.port}" for node in primaries} == {node.address for node in redis_cluster.nodes}
    for node in primaries:
        info = await cluster_client.cluster_info(target_nodes=node)
        assert info["cluster_state"] == "ok"
        assert int(info["cluster_slots_assigned"]) == 16384


@pytest.mark.cluster
async def test_cluster_refuses_cross_slot_and_accepts_same_slot(
    redis_cluster: RedisCluster, cluster_client: redis.asyncio.RedisCluster, key_prefix: str
) -> None:
    cross_slot = {f"{key_prefix}{{a}}x": "1", f"{key_prefix}{{b}}y": "2"}
    # The server itself refuses (asked directly, bypassing redis-py's own client-side check)...
    node = redis.asyncio.Redis.from_url(redis_cluster.nodes[0].url)
    try:
        with pytest.raises(ClusterCrossSlotError):  # redis-py's class for the CROSSSLOT error code
            await node.mset(cross_slot)
    finally:
        await node.aclose()
    # ...and redis-py's cluster client does not even send it.
    with pytest.raises(RedisClusterException, match="same key slot"):
        await cluster_client.mset(cross_slot)

    same_slot = {f"{key_prefix}{{t}}a": "1", f"{key_prefix}{{t}}b": "2"}
    assert await cluster_client.mset(same_slot) is True
    assert await cluster_client.mget(list(same_slot)) == [b"1", b"2"]


@pytest.mark.cluster
async def test_delete_cluster_test_keys_covers_every_primary(
    redis_cluster: RedisCluster, cluster_client: redis.asyncio.RedisCluster, key_prefix: str
) -> None:
    keys = [f"{key_prefix}:{i}" for i in range(30)]  # 30 slots: lands on all 3 masters
    for key in keys:
        await cluster_client.set(key, b"x")
    other = f"rct{'0' * 10}neighbour"
    await cluster_client.set(other, b"y")
    # A fresh, not yet initialized client, as the fixture's clean-up uses.
    cleaner = redis.asyncio.RedisCluster.from_url(redis_cluster.url)
    try:
        assert await delete_cluster_test_keys(cleaner, key_prefix) == len(keys)
        assert await cluster_client.exists(*keys) == 0
        assert await cluster_client.get(other) == b"y"
    finally:
        await cleaner.aclose()
        await cluster_client.delete(other)


# -- counting proxy ------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def proxied(counting_proxy: CountingProxy) -> AsyncIterator[redis.asyncio.Redis]:
    """A client through the proxy, connected, with the connection handshake not counted."""
    client = redis.asyncio.Redis.from_url(counting_proxy.url)
    await client.ping()
    await counting_proxy.settle()
    counting_proxy.reset()
    yield client
    await client.aclose()


async def test_proxy_counts_one_command_one_round_trip(
    counting_proxy: CountingProxy, proxied: redis.asyncio.Redis
) -> None:
    assert await proxied.ping() is True
    assert counting_proxy.commands == ["PING"]
    assert counting_proxy.round_trips == 1


async def test_proxy_counts_a_pipeline_as_one_round_trip(
    counting_proxy: CountingProxy, proxied: redis.asyncio.Redis, key_prefix: str
) -> None:
    async with proxied.pipeline(transaction=False) as pipe:
        pipe.set(f"{key_prefix}:p", b"1")
        pipe.get(f"{key_prefix}:p")
        pipe.delete(f"{key_prefix}:p")
        assert await pipe.execute() == [True, b"1", 1]
    assert counting_proxy.commands == ["SET", "GET", "DEL"]
    assert counting_proxy.round_trips == 1


async def test_proxy_counts_awaited_commands_as_separate_round_trips(
    counting_proxy: CountingProxy, proxied: redis.asyncio.Redis, key_prefix: str
) -> None:
    for i in range(3):
        assert await proxied.get(f"{key_prefix}:missing{i}") is None
    assert counting_proxy.commands == ["GET", "GET", "GET"]
    assert counting_proxy.round_trips == 3
    assert counting_proxy.count("get") == 3


async def test_proxy_forwards_large_values(
    counting_proxy: CountingProxy, proxied: redis.asyncio.Redis, key_prefix: str
) -> None:
    value = bytes(range(256)) * 4096  # 1 MiB, binary: crosses many reads on both sides
    await proxied.set(f"{key_prefix}:big", value)
    assert await proxied.get(f"{key_prefix}:big") == value
    assert counting_proxy.commands == ["SET", "GET"]
    assert counting_proxy.round_trips == 2


def test_resp_parser_handles_split_input_and_inline_commands() -> None:
    stream = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nxy\r\n*2\r\n$7\r\nevalsha\r\n$2\r\nab\r\nping\r\n\r\n"
    parser = RespCommandParser()
    names = [name for byte in stream for name in parser.feed(bytes([byte]))]  # worst case: 1 byte at a time
    assert names == ["SET", "EVALSHA", "PING"]
    assert RespCommandParser().feed(stream) == ["SET", "EVALSHA", "PING"]
