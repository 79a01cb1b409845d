"""wait_for_replicas on one server: invalidations WAIT for a replica in the same round trip, and the
caller is told when none acknowledged in time."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis
from support.proxy import CountingProxy
from support.redis_servers import RedisServer, local_server

from rediscache import CacheKey, CacheReplicationError, RedisCacheAdapter


def _replication(server: RedisServer) -> dict[str, str]:
    client = redis.Redis(host=server.host, port=server.port, decode_responses=True)
    try:
        return {key: str(value) for key, value in client.info("replication").items()}
    finally:
        client.close()


@pytest.fixture
def replica(private_server: RedisServer) -> Iterator[RedisServer]:
    """A second private server replicating ``private_server``, in sync before the test starts."""
    with replica_of(private_server) as server:
        yield server


@contextlib.contextmanager
def replica_of(private_server: RedisServer) -> Iterator[RedisServer]:
    """A new server replicating ``private_server``, in sync on entry, stopped on exit."""
    master = redis.Redis(host=private_server.host, port=private_server.port)
    try:
        # A full sync starts at once: by default the master waits 5 s for more replicas to share a
        # diskless transfer, which cost every test here 5 s of set-up.
        master.config_set("repl-diskless-sync-delay", 0)
    finally:
        master.close()
    with local_server() as server:
        client = redis.Redis(host=server.host, port=server.port)
        try:
            client.replicaof(private_server.host, private_server.port)
        finally:
            client.close()
        deadline = time.monotonic() + 10
        while (
            _replication(server).get("master_link_status") != "up"
            or _replication(private_server).get("connected_slaves") != "1"
        ):
            assert time.monotonic() < deadline, "the replica did not come in sync"
            time.sleep(0.05)
        yield server


@pytest_asyncio.fixture
async def proxy(private_server: RedisServer) -> AsyncIterator[CountingProxy]:
    async with CountingProxy(private_server.host, private_server.port) as counting:
        yield counting


async def _seed(cache: RedisCacheAdapter, count: int) -> None:
    await cache.set_many([(CacheKey(key=f"k{i}", tags=["t"]), i) for i in range(count)])


async def test_auto_sends_no_wait_to_a_server_without_replicas(proxy: CountingProxy, key_prefix: str) -> None:
    cache = RedisCacheAdapter(proxy.url, key_prefix=key_prefix)
    try:
        await _seed(cache, 3)
        await proxy.settle()
        proxy.reset()

        assert await cache.delete(CacheKey(key="k0", tags=["t"])) is True
        assert await cache.delete_by_tags(["t"]) == 2

        # One INFO replication per invalidation, in its round trip: a replica attached later is seen.
        assert proxy.commands == ["EVALSHA", "INFO", "EVALSHA", "INFO"] and proxy.round_trips == 2
        assert cache.unreplicated_invalidations == 0
    finally:
        await cache.close()


async def test_auto_waits_for_the_replica_in_the_same_round_trip(
    proxy: CountingProxy, replica: RedisServer, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = RedisCacheAdapter(proxy.url, key_prefix=key_prefix, replica_timeout=2.0)  # an ack, however slow the host
    try:
        await _seed(cache, 3)
        await proxy.settle()
        proxy.reset()

        with caplog.at_level(logging.WARNING, logger="rediscache"):
            assert await cache.delete(CacheKey(key="k0", tags=["t"])) is True

        assert proxy.commands == ["EVALSHA", "WAIT"]
        assert proxy.round_trips == 1
        assert cache.unreplicated_invalidations == 0 and not caplog.records
    finally:
        await cache.close()


async def test_a_replica_attached_after_first_use_is_waited_for_from_the_next_invalidation(
    proxy: CountingProxy, private_server: RedisServer, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A generous WAIT: the test is about whether the WAIT is sent, not how fast a new replica acks.
    cache = RedisCacheAdapter(proxy.url, key_prefix=key_prefix, replica_timeout=2.0)
    try:
        await _seed(cache, 3)  # first use: no replica yet, so "auto" knows of none
        with replica_of(private_server):
            await proxy.settle()
            proxy.reset()

            with caplog.at_level(logging.WARNING, logger="rediscache"):
                assert await cache.delete(CacheKey(key="k0", tags=["t"])) is True

            # The invalidation's own INFO shows the replica: a WAIT follows on the same connection.
            assert proxy.commands == ["EVALSHA", "INFO", "WAIT"]
            assert proxy.round_trips == 2
            assert cache.unreplicated_invalidations == 0 and not caplog.records
            proxy.reset()
            assert await cache.delete_by_tags(["t"]) == 2
            assert proxy.commands == ["EVALSHA", "WAIT"] and proxy.round_trips == 1
    finally:
        await cache.close()


async def test_a_frozen_replica_makes_an_invalidation_warn_and_count(
    replica: RedisServer, private_server: RedisServer, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = RedisCacheAdapter(private_server.url, key_prefix=key_prefix, replica_timeout=0.05)
    try:
        await _seed(cache, 5)
        assert replica.process is not None
        os.kill(replica.process.pid, signal.SIGSTOP)
        try:
            with caplog.at_level(logging.WARNING, logger="rediscache"):
                removed = await cache.delete_by_tags(["t"])
        finally:
            os.kill(replica.process.pid, signal.SIGCONT)

        assert removed == 5  # done on the primary all the same
        assert cache.unreplicated_invalidations == 1
        assert (await cache.get_stats()).unreplicated_invalidations == 1  # type: ignore[attr-defined]
        assert any("not acknowledged by enough replicas" in record.getMessage() for record in caplog.records)
    finally:
        await cache.close()


async def test_on_unreplicated_raise_tells_the_caller_with_the_result(
    replica: RedisServer, private_server: RedisServer, key_prefix: str
) -> None:
    cache = RedisCacheAdapter(private_server.url, key_prefix=key_prefix, replica_timeout=0.05, on_unreplicated="raise")
    try:
        await _seed(cache, 4)
        assert replica.process is not None
        os.kill(replica.process.pid, signal.SIGSTOP)
        try:
            with pytest.raises(CacheReplicationError) as raised:
                await cache.delete_by_tags(["t"])
            # k0 went with the tag: this removes nothing, so a failover could bring nothing back.
            assert await cache.delete(CacheKey(key="k0")) is False
        finally:
            os.kill(replica.process.pid, signal.SIGCONT)

        assert raised.value.result == 4
        assert await cache.get(CacheKey(key="k1")) is None
    finally:
        await cache.close()


async def test_wait_for_replicas_0_never_waits(proxy: CountingProxy, replica: RedisServer, key_prefix: str) -> None:
    cache = RedisCacheAdapter(proxy.url, key_prefix=key_prefix, wait_for_replicas=0)
    try:
        await _seed(cache, 2)
        await proxy.settle()
        proxy.reset()

        assert await cache.delete_by_tags(["t"]) == 2

        assert "WAIT" not in proxy.commands
    finally:
        await cache.close()


async def test_an_explicit_count_waits_even_without_known_replicas(proxy: CountingProxy, key_prefix: str) -> None:
    cache = RedisCacheAdapter(proxy.url, key_prefix=key_prefix, wait_for_replicas=1, replica_timeout=0.02)
    try:
        await _seed(cache, 2)

        assert await cache.delete_many([CacheKey(key="k0"), CacheKey(key="k1")]) == 2

        assert "WAIT" in proxy.commands
        assert cache.unreplicated_invalidations == 1
    finally:
        await cache.close()
