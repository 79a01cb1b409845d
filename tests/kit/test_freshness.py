"""Freshness and resilience of ``get_or_set`` (``EntryOptions``) on the memory, Redis and hybrid
backends: fail-safe, factory timeouts, eager refresh, jitter, ``cache_timeout``, ``cache_none``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from support.redis_servers import RedisServer

from rediscache import CacheAdapter, CacheKey, EntryOptions, HybridCacheAdapter, MemoryCacheAdapter, RedisCacheAdapter
from rediscache.kit import CacheService

from ._plain_adapter import PlainAdapter

TTL = timedelta(milliseconds=200)
PAST_TTL = 0.3
FAIL_SAFE = EntryOptions(fail_safe=True, fail_safe_throttle=timedelta(seconds=1))


@pytest.fixture(params=["memory", "redis", "hybrid"])
def backend_url(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """The backend, and its Redis server's URL (the Redis fixtures are only set up for those)."""
    if request.param == "memory":
        return "memory", None
    server: RedisServer = request.getfixturevalue("redis_server")
    request.getfixturevalue("redis_client")  # deletes the prefix's keys afterwards
    return str(request.param), server.url


@pytest_asyncio.fixture
async def cache(backend_url: tuple[str, str | None], key_prefix: str) -> AsyncIterator[CacheAdapter]:
    backend, url = backend_url
    adapter: CacheAdapter
    if url is None:
        adapter = MemoryCacheAdapter()
    elif backend == "redis":
        adapter = RedisCacheAdapter(url, key_prefix=key_prefix)
    else:
        hybrid = HybridCacheAdapter(url, key_prefix=key_prefix)
        assert await hybrid.wait_until_coherent()
        adapter = hybrid
    yield adapter
    await adapter.close()


def counting(value: Any = "fresh", *, delay: float = 0.0, error: Exception | None = None) -> Any:
    """A factory that counts its calls (``factory.calls``)."""

    async def factory() -> Any:
        factory.calls += 1  # type: ignore[attr-defined]
        if delay:
            await asyncio.sleep(delay)
        if error is not None:
            raise error
        return value

    factory.calls = 0  # type: ignore[attr-defined]
    return factory


async def stale_entry(service: CacheService, options: EntryOptions = FAIL_SAFE) -> None:
    """Store "old" under "k" with fail-safe, and let its TTL pass."""
    assert await service.get_or_set("k", counting("old"), ttl=TTL, options=options) == "old"
    await asyncio.sleep(PAST_TTL)


async def timed(call: Awaitable[Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = await call
    return result, time.perf_counter() - started


# -- fail-safe ---------------------------------------------------------------------------------------


async def test_a_failing_factory_gives_way_to_the_stale_value(cache: CacheAdapter) -> None:
    service = CacheService(cache)
    await stale_entry(service)
    failing = counting(error=ConnectionError("database is down"))

    assert await service.get_or_set("k", failing, ttl=TTL, options=FAIL_SAFE) == "old"
    assert failing.calls == 1
    assert service.health().fail_safe_served == 1


async def test_without_fail_safe_the_factory_error_reaches_the_caller(cache: CacheAdapter) -> None:
    service = CacheService(cache)
    await service.get_or_set("k", counting("old"), ttl=TTL)
    await asyncio.sleep(PAST_TTL)

    with pytest.raises(ConnectionError, match="database is down"):
        await service.get_or_set("k", counting(error=ConnectionError("database is down")), ttl=TTL)


async def test_with_no_stale_value_the_factory_error_reaches_the_caller(cache: CacheAdapter) -> None:
    service = CacheService(cache, default_options=FAIL_SAFE)

    with pytest.raises(ConnectionError):
        await service.get_or_set("never-set", counting(error=ConnectionError("down")), ttl=TTL)


async def test_the_factory_is_not_tried_again_within_the_throttle(cache: CacheAdapter) -> None:
    service = CacheService(cache)
    await stale_entry(service)
    failing = counting(error=ConnectionError("database is down"))

    answers = [await service.get_or_set("k", failing, ttl=TTL, options=FAIL_SAFE) for _ in range(5)]

    assert answers == ["old"] * 5
    assert failing.calls == 1


async def test_after_the_throttle_the_factory_is_tried_again(cache: CacheAdapter) -> None:
    service = CacheService(cache)
    options = EntryOptions(fail_safe=True, fail_safe_throttle=timedelta(milliseconds=200))
    await stale_entry(service, options)
    await service.get_or_set("k", counting(error=ConnectionError("down")), ttl=TTL, options=options)
    await asyncio.sleep(PAST_TTL)

    assert await service.get_or_set("k", counting("new"), ttl=TTL, options=options) == "new"


async def test_a_logically_expired_entry_is_invisible_to_reads_and_counts(cache: CacheAdapter) -> None:
    service = CacheService(cache)
    await stale_entry(service)
    key = CacheKey(key="k")

    assert await cache.get(key) is None
    assert await cache.exists(key) is False
    assert await cache.get_many([key]) == [None]
    assert (await cache.get_stats()).total_entries == 0
    stale_reads: Any = cache
    stale = await stale_reads.get_stale(key)
    assert stale is not None and stale.value == "old"


@pytest.mark.parametrize(
    "invalidate",
    [
        lambda s: s.delete("k", namespace="ns"),
        lambda s: s.invalidate_tags(["t"]),
        lambda s: s.invalidate_namespace("ns"),
        lambda s: s.invalidate_pattern("k*", namespace="ns"),
        lambda s: s.clear_all(),
    ],
    ids=["delete", "tags", "namespace", "pattern", "clear"],
)
async def test_an_invalidation_removes_the_stale_copy_too(
    cache: CacheAdapter, invalidate: Callable[[CacheService], Awaitable[Any]]
) -> None:
    service = CacheService(cache)
    await service.get_or_set("k", counting("old"), ttl=TTL, namespace="ns", tags=["t"], options=FAIL_SAFE)
    await asyncio.sleep(PAST_TTL)

    await invalidate(service)

    with pytest.raises(ConnectionError):
        await service.get_or_set(
            "k", counting(error=ConnectionError("down")), ttl=TTL, namespace="ns", tags=["t"], options=FAIL_SAFE
        )


async def test_an_invalidation_of_a_stale_entry_does_not_count_it_as_live(cache: CacheAdapter) -> None:
    service = CacheService(cache)
    await stale_entry(service)

    assert await service.delete("k") is False


async def test_fail_safe_needs_an_adapter_with_stale_reads() -> None:
    with pytest.raises(ValueError, match="SupportsStaleReads"):
        CacheService(PlainAdapter(), default_options=FAIL_SAFE)
    with pytest.raises(ValueError, match="SupportsStaleReads"):
        await CacheService(PlainAdapter()).get_or_set("k", counting(), options=FAIL_SAFE)


async def test_another_instance_with_no_copy_serves_the_stale_value_from_redis(
    redis_server: RedisServer, redis_client: Any, key_prefix: str
) -> None:
    first = RedisCacheAdapter(redis_server.url, key_prefix=key_prefix)
    second = HybridCacheAdapter(redis_server.url, key_prefix=key_prefix)
    try:
        await stale_entry(CacheService(first))
        other = CacheService(second)

        answer = await other.get_or_set("k", counting(error=ConnectionError("down")), ttl=TTL, options=FAIL_SAFE)

        assert answer == "old"
    finally:
        await first.close()
        await second.close()


# -- factory timeouts ------------------------------------------------------------------------------


async def test_a_soft_timeout_answers_with_the_stale_value_and_stores_the_late_result(cache: CacheAdapter) -> None:
    service = CacheService(cache)
    options = FAIL_SAFE.merged(EntryOptions(factory_soft_timeout=timedelta(milliseconds=100)))
    await stale_entry(service, options)
    slow = counting("new", delay=1.0)

    answers = await asyncio.gather(
        *(timed(service.get_or_set("k", slow, ttl=timedelta(minutes=1), options=options)) for _ in range(10))
    )

    assert [answer for answer, _ in answers] == ["old"] * 10
    assert max(elapsed for _, elapsed in answers) < 0.3
    await asyncio.sleep(1.2)
    assert await service.get("k") == "new"
    assert slow.calls == 1


async def test_a_hard_timeout_without_stale_raises_timeout_error(cache: CacheAdapter) -> None:
    service = CacheService(cache)
    options = EntryOptions(factory_hard_timeout=timedelta(milliseconds=200))

    started = time.perf_counter()
    with pytest.raises(TimeoutError):
        await service.get_or_set("k", counting(delay=2.0), options=options)

    assert time.perf_counter() - started < 0.5
    assert await service.exists("k") is False


async def test_a_hard_timeout_with_stale_serves_it(cache: CacheAdapter) -> None:
    service = CacheService(cache)
    options = FAIL_SAFE.merged(EntryOptions(factory_hard_timeout=timedelta(milliseconds=100)))
    await stale_entry(service, options)

    answer, elapsed = await timed(service.get_or_set("k", counting(delay=2.0), ttl=TTL, options=options))

    assert answer == "old"
    assert elapsed < 0.5
    assert service.health().factory_hard_timeouts == 1


# -- eager refresh ---------------------------------------------------------------------------------


async def test_a_hit_past_the_threshold_returns_at_once_and_refreshes_once(cache: CacheAdapter) -> None:
    service = CacheService(cache)
    options = EntryOptions(eager_refresh_threshold=0.5)
    ttl = timedelta(seconds=2)
    await service.get_or_set("k", counting("old"), ttl=ttl, options=options)
    before = await service.get_entry("k")
    await asyncio.sleep(1.1)
    refresh = counting("new", delay=0.3)

    answers = await asyncio.gather(
        *(timed(service.get_or_set("k", refresh, ttl=ttl, options=options)) for _ in range(20))
    )

    assert [answer for answer, _ in answers] == ["old"] * 20
    assert max(elapsed for _, elapsed in answers) < 0.05 + 0.1  # no caller waits for the 0.3 s factory
    await asyncio.sleep(0.6)
    after = await service.get_entry("k")
    assert refresh.calls == 1
    assert before is not None and after is not None and after.value == "new"
    assert before.expires_at is not None and after.expires_at is not None and after.expires_at > before.expires_at


async def test_a_hit_before_the_threshold_does_not_refresh(cache: CacheAdapter) -> None:
    service = CacheService(cache)
    options = EntryOptions(eager_refresh_threshold=0.9)
    await service.get_or_set("k", counting("old"), ttl=timedelta(seconds=10), options=options)
    refresh = counting("new")

    await service.get_or_set("k", refresh, ttl=timedelta(seconds=10), options=options)
    await asyncio.sleep(0.05)

    assert refresh.calls == 0


# -- jitter, cache_none --------------------------------------------------------------------------------


async def test_jitter_spreads_stored_ttls_over_ttl_to_ttl_plus_jitter(cache: CacheAdapter) -> None:
    service = CacheService(cache, default_options=EntryOptions(jitter=timedelta(seconds=10)))
    ttl = timedelta(seconds=60)
    for i in range(40):
        await service.set(f"k{i}", i, ttl=ttl)

    lifetimes = []
    for i in range(40):
        entry = await service.get_entry(f"k{i}")
        assert entry is not None and entry.expires_at is not None
        lifetimes.append((entry.expires_at - entry.created_at).total_seconds())

    tolerance = 0.002  # Redis rounds expiries to the millisecond
    assert all(60 - tolerance <= lifetime <= 70 + tolerance for lifetime in lifetimes)
    assert max(lifetimes) - min(lifetimes) > 5  # spread, not one shifted TTL


async def test_cache_none_false_does_not_store_none(cache: CacheAdapter) -> None:
    service = CacheService(cache)
    factory = counting(None)

    for _ in range(2):
        assert await service.get_or_set("k", factory, options=EntryOptions(cache_none=False)) is None

    assert factory.calls == 2
    assert await service.exists("k") is False


async def test_cache_none_by_default_stores_none(cache: CacheAdapter) -> None:
    service = CacheService(cache)
    factory = counting(None)

    for _ in range(2):
        await service.get_or_set("k", factory)

    assert factory.calls == 1


# -- cache_timeout -------------------------------------------------------------------------------------


async def test_a_slow_cache_does_not_delay_callers_past_the_cache_timeout() -> None:
    slow = PlainAdapter(read_delay=0.5)
    service = CacheService(slow, default_options=EntryOptions(cache_timeout=timedelta(milliseconds=50)))

    answers = await asyncio.gather(*(timed(service.get_or_set(f"k{i}", counting(i))) for i in range(10)))

    assert [answer for answer, _ in answers] == list(range(10))
    assert max(elapsed for _, elapsed in answers) < 0.2
    assert service.health().cache_timeouts >= 10


async def test_a_write_past_the_cache_timeout_completes_in_the_background() -> None:
    class SlowWrites(PlainAdapter):
        async def set(self, key: CacheKey, value: Any, ttl: timedelta | None = None) -> None:
            await asyncio.sleep(0.3)
            await super().set(key, value, ttl)

    adapter = SlowWrites()
    service = CacheService(adapter, default_options=EntryOptions(cache_timeout=timedelta(milliseconds=50)))

    written, elapsed = await timed(service.set("k", "v"))
    assert written is True and elapsed < 0.2
    await asyncio.sleep(0.4)
    assert await service.get("k") == "v"


# -- options ----------------------------------------------------------------------------------------


def test_call_options_override_service_options_field_by_field() -> None:
    service = CacheService(
        MemoryCacheAdapter(),
        default_options=EntryOptions(fail_safe=True, factory_soft_timeout=timedelta(seconds=1), jitter=timedelta(1)),
    )

    merged = service.options_for(EntryOptions(jitter=timedelta(seconds=2)))

    assert merged.fail_safe is True
    assert merged.factory_soft_timeout == timedelta(seconds=1)
    assert merged.jitter == timedelta(seconds=2)


def test_an_explicit_ttl_wins_over_options_ttl_which_wins_over_default_ttl() -> None:
    service = CacheService(
        MemoryCacheAdapter(), default_ttl=timedelta(seconds=1), default_options=EntryOptions(ttl=timedelta(seconds=2))
    )

    assert service.resolve()[0] == timedelta(seconds=2)
    assert service.resolve(options=EntryOptions(ttl=timedelta(seconds=3)))[0] == timedelta(seconds=3)
    assert service.resolve(timedelta(seconds=4), EntryOptions(ttl=timedelta(seconds=3)))[0] == timedelta(seconds=4)


@pytest.mark.parametrize(
    "fields",
    [
        {"eager_refresh_threshold": 1.0},
        {"eager_refresh_threshold": 0},
        {"jitter": timedelta(0)},
        {"factory_soft_timeout": -1},
        {"fail_safe": "yes"},
        {"cache_timeout": "fast"},
        {"unknown": 1},
    ],
)
def test_bad_entry_options_raise_value_error(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        EntryOptions(**fields)


def test_entry_options_are_frozen() -> None:
    options = EntryOptions()
    with pytest.raises(ValueError):
        options.fail_safe = True  # type: ignore[misc]
