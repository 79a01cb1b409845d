"""compose.cache(models=, options=, default_options=), ConnectionOptions on every constructor that
talks to Redis, the capability protocols, and CacheKit/cache_lifespan waiting for a coherent hybrid."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from support.redis_servers import RedisServer

from rediscache import (
    CacheKey,
    ConnectionOptions,
    EntryOptions,
    HybridCacheAdapter,
    MemoryCacheAdapter,
    RedisCacheAdapter,
    compose,
)
from rediscache._port import SupportsCodec, SupportsCoherence, SupportsLocks, SupportsStaleReads
from rediscache.kit.fastapi import cache_lifespan

from ._plain_adapter import PlainAdapter


class Product(BaseModel):
    sku: str
    price: int


@pytest.mark.parametrize("backend", ["redis", "hybrid"])
async def test_compose_registers_models_with_the_codec(
    backend: Any, redis_server: RedisServer, redis_client: Any, key_prefix: str
) -> None:
    kit = compose.cache(backend=backend, redis_url=redis_server.url, key_prefix=key_prefix, models=[Product])
    async with kit:
        await kit.service.set("p", Product(sku="a", price=3))

        assert await kit.service.get("p") == Product(sku="a", price=3)


def test_compose_rejects_models_that_are_not_pydantic_classes() -> None:
    with pytest.raises(TypeError, match="pydantic"):
        compose.cache(models=[dict])  # type: ignore[list-item]


async def test_compose_passes_connection_options_and_flat_keywords_override_them(
    redis_server: RedisServer, key_prefix: str
) -> None:
    options = ConnectionOptions(socket_timeout=0.25, retries=3)
    kit = compose.cache(backend="hybrid", redis_url=redis_server.url, key_prefix=key_prefix, options=options, retries=0)
    async with kit:
        assert isinstance(kit.adapter, HybridCacheAdapter)
        used = kit.adapter.l2.transport.options  # type: ignore[attr-defined]
        assert (used.socket_timeout, used.retries) == (0.25, 0)


def test_the_hybrid_takes_connection_options(redis_server: RedisServer, key_prefix: str) -> None:
    adapter = HybridCacheAdapter(redis_server.url, key_prefix=key_prefix, options=ConnectionOptions(retries=2))

    assert adapter.l2.transport.options.retries == 2  # type: ignore[attr-defined]


def test_compose_rejects_options_of_the_wrong_kind() -> None:
    with pytest.raises(TypeError, match="ConnectionOptions"):
        compose.cache(options=EntryOptions())  # type: ignore[arg-type]


def test_compose_gives_the_service_its_default_options() -> None:
    kit = compose.cache(default_options=EntryOptions(fail_safe=True))

    assert kit.service.default_options.fail_safe is True


def test_capabilities_are_the_ports_protocols(redis_server: RedisServer, key_prefix: str) -> None:
    redis_adapter = RedisCacheAdapter(redis_server.url, key_prefix=key_prefix)
    hybrid = HybridCacheAdapter(redis_server.url, key_prefix=key_prefix)
    memory = MemoryCacheAdapter()

    assert all(isinstance(a, SupportsStaleReads) for a in (memory, redis_adapter, hybrid))
    assert all(isinstance(a, SupportsLocks) for a in (redis_adapter, hybrid))
    assert all(isinstance(a, SupportsCodec) for a in (redis_adapter, hybrid))
    assert isinstance(hybrid, SupportsCoherence)
    assert not isinstance(memory, SupportsLocks)
    assert not isinstance(PlainAdapter(), SupportsStaleReads)


async def test_a_kit_on_the_hybrid_is_coherent_when_it_is_open(redis_server: RedisServer, key_prefix: str) -> None:
    kit = compose.cache(backend="hybrid", redis_url=redis_server.url, key_prefix=key_prefix)
    async with kit:
        assert isinstance(kit.adapter, HybridCacheAdapter)
        assert kit.adapter.l1_trusted


async def test_a_second_worker_hits_its_l1_in_its_first_burst(redis_server: RedisServer, key_prefix: str) -> None:
    async with AsyncExitStack() as stack:
        first = compose.cache(backend="hybrid", redis_url=redis_server.url, key_prefix=key_prefix)
        await stack.enter_async_context(first)
        await first.service.set("k", "v", ttl=timedelta(minutes=1))
        second = compose.cache(backend="hybrid", redis_url=redis_server.url, key_prefix=key_prefix)
        app = FastAPI(lifespan=cache_lifespan(second))
        await stack.enter_async_context(app.router.lifespan_context(app))

        for _ in range(10):
            assert await second.service.get("k") == "v"

        stats = await second.adapter.get_stats()
        assert stats.l1_hits == 9  # type: ignore[attr-defined]  # the first read promotes, the others hit L1


async def test_the_stale_read_sees_what_get_does_not(redis_server: RedisServer, key_prefix: str) -> None:
    adapter = RedisCacheAdapter(redis_server.url, key_prefix=key_prefix)
    try:
        key = CacheKey(key="k")
        await adapter.set(key, "v", timedelta(milliseconds=50), stale_ttl=timedelta(seconds=30))
        await asyncio.sleep(0.1)
        stale = await adapter.get_stale(key)

        assert await adapter.get(key) is None
        assert stale is not None and stale.value == "v"
        assert await adapter.get_stale(key, max_age=timedelta(milliseconds=1)) is None
    finally:
        await adapter.clear()
        await adapter.close()
