"""docs/recipes/sentinel.md, run: its block, as written apart from the Sentinels' addresses and the
key prefix, against a throwaway deployment (a master, a replica and one Sentinel, with the passwords
the recipe shows), and what it says about failovers.

Each failover test gets a deployment of its own: a failover leaves the old master a replica only
some seconds later (Sentinel waits before reconfiguring it), and the next test must not wait for that.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from support.ports import LOCALHOST
from support.redis_servers import (
    REPLICA_SERVER_ARGS,
    RedisServer,
    RedisUnavailableError,
    ServerBinary,
    require_binary,
    start_local_process,
    throwaway_processes,
    wait_for_replicas,
)

from rediscache import CacheConnectionError, CacheKey, HybridCacheAdapter, RedisCacheAdapter
from rediscache.redis.pool import SENTINEL_CHECK_INTERVAL

from ._recipe import marked_block, read_until_in_l1, run_block, substituted

PAGE = "recipes/sentinel.md"
SERVICE = "mymaster"
REDIS_PASSWORD = "redis-secret"  # the recipe's: its block runs with its own credentials
SENTINEL_PASSWORD = "sentinel-secret"
RECIPE_SENTINELS = '[("sentinel-0.internal", 26379), ("sentinel-1.internal", 26379), ("sentinel-2.internal", 26379)]'
DOWN_AFTER_MS = 500  # how long the master must be unreachable before Sentinel fails it over
FAILOVER_TIMEOUT_MS = 3000
READY_TIMEOUT = 10.0
# Beyond SENTINEL_CHECK_INTERVAL, how long after Sentinel names the new master the adapter may take
# to reach it: its check's round trip, a call's budget (operation_timeout) on a connection that broke.
SETTLE_MARGIN = 2.0


@dataclass
class Deployment:
    servers: dict[int, RedisServer]  # by port: the master and the replica, whatever their roles now
    sentinel: RedisServer

    def admin(self) -> redis.Redis:
        """A client of the Sentinel, without retries (polling must see each answer as it is)."""
        return redis.Redis(
            host=self.sentinel.host,
            port=self.sentinel.port,
            password=SENTINEL_PASSWORD,
            socket_timeout=1,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )

    def master_port(self) -> int:
        with self.admin() as sentinel:
            _host, port = sentinel.sentinel_get_master_addr_by_name(SERVICE)
        return int(port)

    def master(self) -> RedisServer:
        return self.servers[self.master_port()]

    def wait_until_sentinel_knows_a_good_replica(self) -> None:
        """Sentinel learns of replicas from the master's INFO; a failover needs one it has seen
        linked to the master."""
        deadline = time.monotonic() + READY_TIMEOUT
        replicas: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            with self.admin() as sentinel:
                replicas = sentinel.sentinel_slaves(SERVICE)
            if any(r["is_slave"] and not r["is_sdown"] and r["master-link-status"] == "ok" for r in replicas):
                return
            time.sleep(0.05)
        raise AssertionError(f"Sentinel knows no replica of {SERVICE} in sync after {READY_TIMEOUT}s: {replicas}")

    def wait_for_new_master(self, old_port: int, timeout: float) -> RedisServer:
        """The server Sentinel names instead of ``old_port``, once it answers as a master."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                port = self.master_port()
            except (redis.RedisError, OSError):
                port = old_port
            if port != old_port and _role(self.servers[port]) == "master":
                return self.servers[port]
            time.sleep(0.05)
        raise AssertionError(f"Sentinel named no new master within {timeout}s:\n{self.sentinel.log_tail(30)}")


def _role(server: RedisServer) -> str:
    client = redis.Redis.from_url(server.url, socket_timeout=1, retry=Retry(NoBackoff(), 0), decode_responses=True)
    try:
        return str(client.info("replication")["role"])
    except (redis.RedisError, OSError):
        return "unreachable"
    finally:
        client.close()


def _data_node_args(port: int, workdir: Path) -> list[str]:
    return [
        "--port", str(port),
        "--bind", LOCALHOST,
        "--dir", str(workdir),
        "--save", "",
        "--appendonly", "no",
        "--requirepass", REDIS_PASSWORD,
        "--masterauth", REDIS_PASSWORD,  # a demoted master must reach the new one
        *REPLICA_SERVER_ARGS,
    ]  # fmt: skip


def _sentinel_args(master_port: int) -> Callable[[int, Path], list[str]]:
    def argv(port: int, workdir: Path) -> list[str]:
        config = workdir / "sentinel.conf"  # Sentinel rewrites it: it must be a file of its own
        config.write_text(
            f"port {port}\n"
            f"bind {LOCALHOST}\n"
            f"dir {workdir}\n"
            f"requirepass {SENTINEL_PASSWORD}\n"
            f"sentinel monitor {SERVICE} {LOCALHOST} {master_port} 1\n"
            f"sentinel auth-pass {SERVICE} {REDIS_PASSWORD}\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
        )
        return [str(config), "--sentinel"]

    return argv


def _binary() -> ServerBinary:
    try:
        return require_binary("redis")
    except RedisUnavailableError as exc:
        raise pytest.fail.Exception(str(exc), pytrace=False) from None


@contextmanager
def deployment() -> Iterator[Deployment]:
    """A master, its replica and a Sentinel monitoring it, once the Sentinel knows the replica."""
    binary = _binary()
    with throwaway_processes("sentinel") as (workdir, servers):
        master = start_local_process(workdir, _data_node_args, binary=binary, password=REDIS_PASSWORD)
        servers.append(master)
        replica = start_local_process(
            workdir,
            lambda port, node_dir: [*_data_node_args(port, node_dir), "--replicaof", LOCALHOST, str(master.port)],
            binary=binary,
            password=REDIS_PASSWORD,
        )
        servers.append(replica)
        wait_for_replicas([master, replica], 1)
        sentinel = start_local_process(workdir, _sentinel_args(master.port), binary=binary, password=SENTINEL_PASSWORD)
        servers.append(sentinel)
        found = Deployment({master.port: master, replica.port: replica}, sentinel)
        found.wait_until_sentinel_knows_a_good_replica()
        yield found


@pytest.fixture(scope="module")
def shared_deployment() -> Iterator[Deployment]:
    """For the tests that fail nothing over."""
    with deployment() as found:
        yield found


@pytest.fixture
def own_deployment() -> Iterator[Deployment]:
    """For a test that fails the master over."""
    with deployment() as found:
        yield found


def _recipe(found: Deployment, key_prefix: str) -> dict[str, Any]:
    """The recipe's block, run: its globals (``sentinel``, ``master``, ``cache``)."""
    code = substituted(
        marked_block(PAGE),
        {
            RECIPE_SENTINELS: f'[("{LOCALHOST}", {found.sentinel.port})]',
            'key_prefix="myapp"': f'key_prefix="{key_prefix}"',
        },
    )
    return run_block(code)


async def _close(made: dict[str, Any]) -> None:
    """What the recipe says to close at shutdown: the adapter never closes a client it was given."""
    await made["cache"].close()
    await made["master"].aclose()
    if hasattr(made["sentinel"], "aclose"):  # redis-py 8; before it, nothing closed the Sentinels' clients
        await made["sentinel"].aclose()


@pytest.fixture
async def recipe(request: pytest.FixtureRequest, key_prefix: str) -> AsyncIterator[dict[str, Any]]:
    """The recipe's objects on the test's deployment; the adapter and the client closed after."""
    found: Deployment = request.getfixturevalue(request.param)
    made = _recipe(found, key_prefix)
    made["deployment"] = found
    try:
        yield made
    finally:
        await _close(made)


async def _on(server: RedisServer, key_prefix: str, key: CacheKey) -> Any:
    """The value of ``key`` read straight from ``server`` (not through Sentinel): where it was written."""
    direct = RedisCacheAdapter(server.url, key_prefix=key_prefix)
    try:
        entry = await direct.get(key)
    finally:
        await direct.close()
    return None if entry is None else entry.value


@pytest.mark.parametrize("recipe", ["shared_deployment"], indirect=True)
async def test_the_recipe_block_works_through_sentinel(recipe: dict[str, Any], key_prefix: str) -> None:
    cache: RedisCacheAdapter = recipe["cache"]
    key = CacheKey(key=f"{key_prefix}:user:1", tags=["user:1"])
    await cache.set(key, {"name": "Ada"})
    entry = await cache.get(key)
    assert entry is not None and entry.value == {"name": "Ada"}
    assert await _on(recipe["deployment"].master(), key_prefix, key) == {"name": "Ada"}  # the master has it
    assert await cache.delete_by_tags(["user:1"]) == 1
    assert await cache.get(key) is None


async def _write_until_on(server: RedisServer, cache: RedisCacheAdapter, key_prefix: str, timeout: float) -> float:
    """Write fresh values through ``cache`` until one lands on ``server``; the seconds it took.
    Calls may fail meanwhile, with ``CacheConnectionError`` only (the recipe says so)."""
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        key = CacheKey(key=f"{key_prefix}:attempt{attempt}")
        try:
            await cache.set(key, attempt)
        except CacheConnectionError:
            pass
        else:
            if await _on(server, key_prefix, key) == attempt:
                return time.monotonic() - started
        assert time.monotonic() - started < timeout, (
            f"{attempt} writes in {timeout} s after Sentinel named {server.address}, none landed there"
        )
        await asyncio.sleep(0.05)


async def _check_it_stays_on(server: RedisServer, cache: RedisCacheAdapter, key_prefix: str) -> None:
    """From now on every call succeeds, and what is written is on ``server`` and read back."""
    for n in range(20):
        key = CacheKey(key=f"{key_prefix}:settled{n}", tags=["settled"])
        await cache.set(key, n)
        entry = await cache.get(key)
        assert entry is not None and entry.value == n
        assert await _on(server, key_prefix, key) == n
    assert await cache.delete_by_tags(["settled"]) == 20


@pytest.mark.parametrize("recipe", ["own_deployment"], indirect=True)
async def test_after_a_failover_that_leaves_the_old_master_up_calls_and_the_hybrid_follow_the_new_one(
    recipe: dict[str, Any], key_prefix: str
) -> None:
    """``SENTINEL FAILOVER``: the old master stays up and keeps accepting writes until Sentinel demotes
    it, about ten seconds later. The adapter's open connections to it must not be used meanwhile
    (what they wrote would be lost): the adapter asks Sentinel again every
    ``SENTINEL_CHECK_INTERVAL`` seconds, idle or not, so it moves within about that long. And the
    recipe's hybrid bullet, with two instances: a reader still subscribed on the old master would go
    on serving its L1 copy of an entry changed on the new one; it must subscribe there instead.

    (One test for both: each failover costs a second or two of Sentinel's own pace.)"""
    found: Deployment = recipe["deployment"]
    other = _recipe(found, key_prefix)  # a second instance, as another process would have
    writer = HybridCacheAdapter.from_redis(recipe["cache"])
    reader = HybridCacheAdapter.from_redis(other["cache"])
    key = CacheKey(key=f"{key_prefix}:user:3")
    try:
        assert await writer.wait_until_coherent() and await reader.wait_until_coherent()
        # Connections to the old master, left idle in the pool.
        await asyncio.gather(*(writer.l2.set(CacheKey(key=f"{key_prefix}:before{n}"), n) for n in range(5)))
        await writer.set(key, "v1")
        await read_until_in_l1(reader, key, "v1")
        old = found.master()

        with found.admin() as sentinel:
            sentinel.execute_command("SENTINEL", "FAILOVER", SERVICE)
        new = found.wait_for_new_master(old.port, timeout=READY_TIMEOUT)
        assert _role(old) == "master"  # still: what this test is about

        # Idle meanwhile, as between requests: the first call after the adapter's next question to
        # Sentinel must neither fail nor reach the old master.
        await asyncio.sleep(SENTINEL_CHECK_INTERVAL + SETTLE_MARGIN / 2)
        await _check_it_stays_on(new, writer.l2, key_prefix)

        await writer.set(key, "v2")  # published on the new master
        started = time.monotonic()
        while True:
            try:
                entry = await reader.get(key)
            except CacheConnectionError:
                entry = None
            if entry is not None and entry.value == "v2":
                break
            assert time.monotonic() - started < SENTINEL_CHECK_INTERVAL + SETTLE_MARGIN, (
                f"the reader still serves {entry and entry.value!r} (trusted: {reader.l1_trusted})"
            )
            await asyncio.sleep(0.05)
    finally:
        await writer.close()  # and its L2, the fixture's adapter
        await _close(other)


@pytest.mark.parametrize("recipe", ["own_deployment"], indirect=True)
async def test_after_the_master_dies_calls_fail_then_go_to_the_new_one(recipe: dict[str, Any], key_prefix: str) -> None:
    """The master is killed: calls fail with ``CacheConnectionError`` until Sentinel has promoted the
    replica (``down-after-milliseconds`` plus the election), then succeed on the new master."""
    found: Deployment = recipe["deployment"]
    cache: RedisCacheAdapter = recipe["cache"]
    before = CacheKey(key=f"{key_prefix}:before")
    await cache.set(before, "before")
    old = found.master()
    replica = next(server for port, server in found.servers.items() if port != old.port)
    # Replication is asynchronous: the write is on the replica before the kill, or it is lost with it.
    deadline = time.monotonic() + READY_TIMEOUT
    while await _on(replica, key_prefix, before) != "before":
        assert time.monotonic() < deadline, "the write did not reach the replica"
        await asyncio.sleep(0.02)

    old.kill()
    with pytest.raises(CacheConnectionError):
        await cache.set(CacheKey(key=f"{key_prefix}:during"), "during")
    new = found.wait_for_new_master(old.port, timeout=READY_TIMEOUT)

    await _write_until_on(new, cache, key_prefix, timeout=SENTINEL_CHECK_INTERVAL + SETTLE_MARGIN)
    await _check_it_stays_on(new, cache, key_prefix)
    entry = await cache.get(before)  # replicated before the kill
    assert entry is not None and entry.value == "before"
