"""compose.cache(...) builds a CacheKit for each backend from plain settings; the kit's ``async with`` runs the
periodic cleanup and closes the connections."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio
from support.redis_servers import RedisCluster, RedisServer

from rediscache import MemoryCacheAdapter, RedisCacheAdapter
from rediscache.kit import CacheKit, CacheService, compose


async def test_memory_is_the_default_backend() -> None:
    async with compose.cache() as kit:
        assert isinstance(kit, CacheKit)
        assert isinstance(kit.adapter, MemoryCacheAdapter)
        assert kit.service.adapter is kit.adapter


async def test_max_memory_items_bounds_the_memory_backend() -> None:
    async with compose.cache(max_memory_items=2) as kit:
        for key in ("a", "b", "c"):
            await kit.service.set(key, key)

        assert (await kit.service.get_stats()).total_entries == 2


async def test_the_redis_backend_writes_under_the_key_prefix(
    redis_server: RedisServer, redis_client: redis.asyncio.Redis, key_prefix: str
) -> None:
    async with compose.cache("redis", redis_url=redis_server.url, key_prefix=key_prefix) as kit:
        assert isinstance(kit.adapter, RedisCacheAdapter)
        await kit.service.set("k", "v")

        keys = [key async for key in redis_client.scan_iter(match=f"*{key_prefix}*")]
        assert keys and all(key.startswith(key_prefix.encode()) for key in keys)


async def test_default_ttl_seconds_applies_to_writes_without_a_ttl() -> None:
    async with compose.cache(default_ttl_seconds=120) as kit:
        await kit.service.set("k", 1)

        entry = await kit.service.get_entry("k")
        assert entry is not None and entry.expires_at is not None
        assert entry.expires_at - entry.created_at == timedelta(seconds=120)


async def test_default_ttl_seconds_none_means_entries_never_expire() -> None:
    async with compose.cache(default_ttl_seconds=None) as kit:
        await kit.service.set("k", 1)

        entry = await kit.service.get_entry("k")
        assert entry is not None and entry.expires_at is None


async def test_the_default_namespace_reaches_the_service() -> None:
    async with compose.cache(default_namespace="tenant:1") as kit:
        assert kit.service.default_namespace == "tenant:1"


async def test_adapter_options_reach_the_adapter(
    redis_cluster: RedisCluster, cluster_client: Any, key_prefix: str
) -> None:
    async with compose.cache("redis", redis_url=redis_cluster.url, key_prefix=key_prefix, cluster=True) as kit:
        await kit.service.set("k", 1, tags=["t"])

        assert ((await kit.service.get_stats()).model_extra or {}).get("shards") == 16  # a cluster's default
        assert await kit.service.invalidate_tags(["t"]) == 1


async def test_service_settings_reach_the_service(redis_server: RedisServer, key_prefix: str) -> None:
    kit = compose.cache(
        "redis",
        redis_url=redis_server.url,
        key_prefix=key_prefix,
        fail_open=False,
        stampede_lock=False,
        breaker_failure_threshold=None,
    )
    async with kit:
        service = kit.service
        assert (service.fail_open, service.stampede_lock, service.health().breaker_state) == (False, False, "disabled")


async def test_the_circuit_breaker_is_configured_from_seconds() -> None:
    async with compose.cache(breaker_failure_threshold=2, breaker_reset_seconds=30) as kit:
        breaker = kit.service.circuit_breaker
        assert breaker is not None
        assert (breaker.failure_threshold, breaker.reset_timeout) == (2, timedelta(seconds=30))


@pytest.mark.parametrize("backend", ["redis", "hybrid"])
def test_a_redis_backend_without_a_url_is_refused(backend: str) -> None:
    with pytest.raises(ValueError, match="needs redis_url"):
        compose.cache(backend)  # type: ignore[arg-type]


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="backend must be"):
        compose.cache("memcached")  # type: ignore[arg-type]


def test_fail_safe_is_refused_for_backends_without_a_local_copy() -> None:
    with pytest.raises(ValueError, match="hybrid"):
        compose.cache("redis", redis_url="redis://localhost:6379/0", fail_safe_max_age_seconds=30)


@pytest.mark.parametrize(
    "setting",
    [
        {"default_ttl_seconds": 0},
        {"default_ttl_seconds": -5},
        {"lock_ttl_seconds": None},
        {"lock_wait_seconds": float("inf")},
        {"cleanup_interval_seconds": 0},
        {"breaker_failure_threshold": 0},
    ],
)
def test_bad_settings_are_refused(setting: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        compose.cache(**setting)


async def test_the_kit_runs_cleanup_expired_periodically() -> None:
    kit = compose.cache(cleanup_interval_seconds=0.02)
    await kit.service.set("short", 1, ttl=timedelta(milliseconds=1))
    await kit.service.set("long", 2)
    await asyncio.sleep(0.01)

    async with kit:
        assert kit.cleanup_running
        for _ in range(250):
            if kit.cleanup_runs:
                break
            await asyncio.sleep(0.02)

    assert kit.cleanup_removed == 1
    assert not kit.cleanup_running


async def test_without_an_interval_no_cleanup_task_runs() -> None:
    async with compose.cache(cleanup_interval_seconds=None) as kit:
        assert not kit.cleanup_running


async def test_leaving_the_kit_closes_its_adapter() -> None:
    kit = compose.cache()
    adapter = kit.adapter
    assert isinstance(adapter, MemoryCacheAdapter)
    async with kit:
        adapter.start_cleanup_task(60)  # closing the adapter is what stops it

    assert adapter._cleanup_task is None


async def test_leaving_the_kit_closes_its_connections(private_server: RedisServer, key_prefix: str) -> None:
    admin = redis.asyncio.Redis.from_url(private_server.url)
    try:
        async with compose.cache("redis", redis_url=private_server.url, key_prefix=key_prefix) as kit:
            await asyncio.gather(*(kit.service.set(f"k{i}", i) for i in range(5)))
            assert (await admin.info("clients"))["connected_clients"] > 1

        for _ in range(100):  # the server notices closed sockets on its next event-loop turn
            if (await admin.info("clients"))["connected_clients"] == 1:  # the admin connection only
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the kit's connections are still open")
    finally:
        await admin.aclose()


async def test_a_closed_kit_cannot_be_started_again() -> None:
    kit = compose.cache()
    async with kit:
        pass

    with pytest.raises(RuntimeError, match="closed"):
        await kit.start()


def test_a_kit_refuses_a_service_on_another_adapter() -> None:
    with pytest.raises(ValueError, match="kit's adapter"):
        CacheKit(MemoryCacheAdapter(), CacheService(MemoryCacheAdapter()))
