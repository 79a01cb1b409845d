"""OpenTelemetry metrics, read with the SDK's in-memory reader (rediscache.metrics.configure)."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from support.factories import MakeAdapter
from support.redis_servers import RedisServer

from rediscache import CacheConnectionError, CacheKey, CacheService, HybridCacheAdapter, metrics


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    # The suite makes thousands of caches: collect the dead ones, so that the observed counters
    # stay within the SDK's 2,000 series per instrument (configure() forgets the closed ones).
    gc.collect()
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    metrics.configure(provider)
    yield reader
    metrics.configure()  # back to the global provider
    provider.shutdown()


def _points(reader: InMemoryMetricReader, name: str, prefix: str) -> list[Any]:
    data = reader.get_metrics_data()
    assert data is not None
    found = []
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "rediscache"
            for metric in scope.metrics:
                if metric.name == name:
                    found += [p for p in metric.data.data_points if p.attributes.get("rediscache.prefix") == prefix]
    return found


def _value(reader: InMemoryMetricReader, name: str, prefix: str) -> int:
    return sum(point.value for point in _points(reader, name, prefix))


async def test_hits_and_misses_are_counted_with_the_prefix(
    reader: InMemoryMetricReader,
    make_adapter: MakeAdapter,
    redis_server: RedisServer,
    redis_client: Any,
    key_prefix: str,
) -> None:
    adapter = await make_adapter(redis_server.url)
    await adapter.set(CacheKey(key="k"), 1)
    for _ in range(3):
        await adapter.get(CacheKey(key="k"))
    for _ in range(2):
        await adapter.get(CacheKey(key="absent"))

    assert _value(reader, "rediscache.hits", key_prefix) == 3
    assert _value(reader, "rediscache.misses", key_prefix) == 2


async def test_the_duration_histogram_has_the_operations(
    reader: InMemoryMetricReader,
    make_adapter: MakeAdapter,
    redis_server: RedisServer,
    redis_client: Any,
    key_prefix: str,
) -> None:
    adapter = await make_adapter(redis_server.url)
    await adapter.set(CacheKey(key="k", tags=["t"]), 1)
    await adapter.get(CacheKey(key="k"))
    await adapter.get_many([CacheKey(key="k")])
    await adapter.delete_by_tags(["t"])

    points = _points(reader, "rediscache.operation.duration", key_prefix)
    operations = {point.attributes["rediscache.operation"]: point.count for point in points}
    assert operations == {"set": 1, "get": 1, "get_many": 1, "delete_by_tags": 1}
    assert all(point.sum > 0 for point in points)


async def test_writes_and_invalidated_entries_are_counted(
    reader: InMemoryMetricReader,
    make_adapter: MakeAdapter,
    redis_server: RedisServer,
    redis_client: Any,
    key_prefix: str,
) -> None:
    adapter = await make_adapter(redis_server.url)
    await adapter.set(CacheKey(key="a", tags=["t"]), 1)
    await adapter.set_many(iter([(CacheKey(key="b", tags=["t"]), 2), (CacheKey(key="c"), 3)]))
    await adapter.delete_by_tags(["t"])
    await adapter.delete(CacheKey(key="c"))

    assert _value(reader, "rediscache.writes", key_prefix) == 3
    assert _value(reader, "rediscache.invalidated", key_prefix) == 3
    assert await adapter.get(CacheKey(key="b")) is None  # set_many wrote what the iterator gave


async def test_errors_are_counted_per_operation(
    reader: InMemoryMetricReader, make_adapter: MakeAdapter, key_prefix: str
) -> None:
    adapter = await make_adapter("redis://127.0.0.1:1/0", operation_timeout=0.2, connect_timeout=0.2)
    with pytest.raises(CacheConnectionError):
        await adapter.get(CacheKey(key="k"))

    (point,) = _points(reader, "rediscache.errors", key_prefix)
    assert (point.value, point.attributes["rediscache.operation"]) == (1, "get")


async def test_factory_calls_of_get_or_set_are_counted(
    reader: InMemoryMetricReader,
    make_adapter: MakeAdapter,
    redis_server: RedisServer,
    redis_client: Any,
    key_prefix: str,
) -> None:
    service = CacheService(await make_adapter(redis_server.url), default_ttl=timedelta(minutes=1))
    for _ in range(3):
        await service.get_or_set("k", lambda: 42)

    assert _value(reader, "rediscache.factory.calls", key_prefix) == 1


def test_fail_safe_served_is_recorded_by_its_function(reader: InMemoryMetricReader) -> None:
    metrics.record_fail_safe_served("fs-prefix", 2)

    assert _value(reader, "rediscache.fail_safe.served", "fs-prefix") == 2


async def test_l1_hits_are_counted_apart_from_the_shared_hits(
    reader: InMemoryMetricReader, redis_server: RedisServer, redis_client: Any, key_prefix: str
) -> None:
    async with HybridCacheAdapter(redis_server.url, key_prefix=key_prefix) as cache:
        assert await cache.wait_until_coherent()
        await cache.set(CacheKey(key="k"), 1)
        for _ in range(3):
            await cache.get(CacheKey(key="k"))  # one from Redis, then two from L1

        assert _value(reader, "rediscache.hits", key_prefix) == 1
        assert _value(reader, "rediscache.l1.hits", key_prefix) == 2


async def test_a_closed_adapter_keeps_its_counts(
    reader: InMemoryMetricReader,
    make_adapter: MakeAdapter,
    redis_server: RedisServer,
    redis_client: Any,
    key_prefix: str,
) -> None:
    adapter = await make_adapter(redis_server.url)
    await adapter.get(CacheKey(key="absent"))
    await adapter.close()

    assert _value(reader, "rediscache.misses", key_prefix) == 1


def test_without_the_api_the_adapter_imports_and_is_left_unwrapped() -> None:
    program = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # as if opentelemetry-api were not installed\n"
        "from rediscache import RedisCacheAdapter, metrics\n"
        "adapter = RedisCacheAdapter('redis://127.0.0.1:1/0', key_prefix='p')\n"
        "print(metrics.available(), 'get_with_payload' in vars(adapter), 'set' in vars(adapter))\n"
        "metrics.record_factory_call('p')\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True)

    assert result.stdout.split() == ["False", "False", "False"]


async def test_a_call_is_timed_once_even_through_another_timed_method(
    reader: InMemoryMetricReader,
    make_adapter: MakeAdapter,
    redis_server: RedisServer,
    redis_client: Any,
    key_prefix: str,
) -> None:
    adapter = await make_adapter(redis_server.url)
    await adapter.get(CacheKey(key="k"))  # get() reads through get_with_payload()
    await adapter.get_with_payload(CacheKey(key="k"))

    points = _points(reader, "rediscache.operation.duration", key_prefix)
    assert [(point.attributes["rediscache.operation"], point.count) for point in points] == [("get", 2)]
