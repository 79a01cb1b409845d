"""Stampede protection across instances: a Redis lock lets one instance compute while the others wait.

Each "instance" is a CacheService on an adapter of its own (its own connections and its own single
flight), all on the same server and prefix, as separate processes would be. The lock name a service
uses for a key is ``"get_or_set:" + full_key``; tests that play another instance holding it use that.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from support.factories import MakeAdapter
from support.redis_servers import RedisCluster, RedisServer

from rediscache import CacheKey, MemoryCacheAdapter, RedisCacheAdapter
from rediscache.kit import CacheService


def lock_name(key: str) -> str:
    return "get_or_set:" + key


class SlowFactory:
    def __init__(self, value: object, delay: float = 0.2, error: Exception | None = None) -> None:
        self.value = value
        self.delay = delay
        self.error = error
        self.calls = 0
        self.started = asyncio.Event()

    async def __call__(self) -> object:
        self.calls += 1
        self.started.set()
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.value


async def instances(make: MakeAdapter, url: str, count: int) -> list[CacheService]:
    return [CacheService(await make(url)) for _ in range(count)]


async def test_redis_backed_services_lock_across_processes_by_default(redis_adapter: RedisCacheAdapter) -> None:
    assert CacheService(redis_adapter).stampede_lock is True


def test_the_memory_backend_has_no_cross_process_lock() -> None:
    assert CacheService(MemoryCacheAdapter()).stampede_lock is False
    with pytest.raises(ValueError, match="cannot lock"):
        CacheService(MemoryCacheAdapter(), stampede_lock=True)


async def test_instances_share_one_factory_call_on_a_cold_key(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: object
) -> None:
    services = await instances(make_adapter, redis_server.url, 3)
    factory = SlowFactory("v")

    results = await asyncio.gather(*(service.get_or_set("k", factory) for service in services for _ in range(10)))

    assert results == ["v"] * 30
    assert factory.calls == 1
    assert sum(service.health().lock_waits for service in services) == 2


async def test_without_the_lock_each_instance_computes(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: object
) -> None:
    # The control for the test above: the lock, not luck, is what saves the calls.
    services = [CacheService(await make_adapter(redis_server.url), stampede_lock=False) for _ in range(3)]
    factory = SlowFactory("v")

    await asyncio.gather(*(service.get_or_set("k", factory) for service in services))

    assert factory.calls == 3


async def test_a_waiter_gets_the_value_the_holder_stores(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: object
) -> None:
    holder = await make_adapter(redis_server.url)
    assert await holder.try_lock(lock_name("k"), "other-instance", timedelta(seconds=30))
    service = CacheService(await make_adapter(redis_server.url))
    factory = SlowFactory("mine", delay=0)

    waiter = asyncio.ensure_future(service.get_or_set("k", factory))
    await asyncio.sleep(0.05)
    await CacheService(holder).set("k", "theirs")
    await holder.unlock(lock_name("k"), "other-instance")

    assert await waiter == "theirs"
    assert factory.calls == 0


async def test_the_lock_of_a_holder_that_died_expires_and_a_waiter_computes(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: object
) -> None:
    dead = await make_adapter(redis_server.url)
    assert await dead.try_lock(lock_name("k"), "dead-instance", timedelta(milliseconds=150))
    service = CacheService(await make_adapter(redis_server.url), lock_wait=timedelta(seconds=10))
    factory = SlowFactory("v", delay=0)

    assert await service.get_or_set("k", factory) == "v"

    health = service.health()
    assert factory.calls == 1
    assert (health.lock_waits, health.lock_wait_timeouts) == (1, 0)


async def test_a_waiter_computes_itself_when_the_wait_times_out(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: object
) -> None:
    stuck = await make_adapter(redis_server.url)
    assert await stuck.try_lock(lock_name("k"), "stuck-instance", timedelta(seconds=60))
    service = CacheService(await make_adapter(redis_server.url), lock_wait=timedelta(milliseconds=100))
    factory = SlowFactory("v", delay=0)

    assert await service.get_or_set("k", factory) == "v"

    assert factory.calls == 1
    assert service.health().lock_wait_timeouts == 1
    assert await service.get("k") == "v"


async def test_a_value_stored_between_the_miss_and_the_lock_is_not_computed_again(
    redis_server: RedisServer, redis_client: object, key_prefix: str
) -> None:
    class AnotherInstanceFinishesFirst(RedisCacheAdapter):
        """Plays the race: another instance stores the value and unlocks just before this one locks."""

        async def try_lock(self, name: str, token: str, ttl: timedelta) -> bool:
            await self.set(CacheKey(key="k"), "theirs")
            return await super().try_lock(name, token, ttl)

    adapter = AnotherInstanceFinishesFirst(redis_server.url, key_prefix=key_prefix)
    factory = SlowFactory("mine", delay=0)
    try:
        assert await CacheService(adapter).get_or_set("k", factory) == "theirs"
    finally:
        await adapter.close()

    assert factory.calls == 0


async def test_the_lock_is_released_once_the_value_is_stored(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: object
) -> None:
    adapter = await make_adapter(redis_server.url)

    await CacheService(adapter).get_or_set("k", lambda: "v")

    assert await adapter.try_lock(lock_name("k"), "next", timedelta(seconds=1))


async def test_a_failing_holder_releases_the_lock_and_a_waiting_instance_computes(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: object
) -> None:
    first, second = await instances(make_adapter, redis_server.url, 2)
    failing = SlowFactory(None, delay=0.1, error=LookupError("source down"))
    working = SlowFactory("v", delay=0)

    holder = asyncio.ensure_future(first.get_or_set("k", failing))
    await failing.started.wait()  # the factory runs under the lock: the holder has it
    waiter = asyncio.ensure_future(second.get_or_set("k", working))

    with pytest.raises(LookupError):
        await holder
    assert await waiter == "v"
    assert (failing.calls, working.calls) == (1, 1)
    assert second.health().lock_waits == 1


async def test_a_cancelled_computation_releases_its_lock(
    make_adapter: MakeAdapter, redis_server: RedisServer, redis_client: object
) -> None:
    adapter = await make_adapter(redis_server.url)
    started = asyncio.Event()

    async def forever() -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    caller = asyncio.ensure_future(CacheService(adapter).get_or_set("k", forever))
    await started.wait()
    caller.cancel()

    for _ in range(100):  # the release runs in the computation's task, just after the cancellation
        if await adapter.try_lock(lock_name("k"), "next", timedelta(seconds=1)):
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("the lock of a cancelled computation was not released")


@pytest.mark.cluster
async def test_instances_on_a_cluster_share_one_factory_call(
    make_adapter: MakeAdapter, redis_cluster: RedisCluster, cluster_client: object
) -> None:
    services = [CacheService(await make_adapter(redis_cluster.url, cluster=True)) for _ in range(3)]
    factory = SlowFactory("v")

    results = await asyncio.gather(
        *(service.get_or_set(f"k{n}", factory) for service in services for n in range(4) for _ in range(5))
    )

    assert results == ["v"] * 60
    assert factory.calls == 4  # one per key, whatever master its lock lives on
