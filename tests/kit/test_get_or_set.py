"""get_or_set: a cached value (None included) is served, a miss runs the factory once per process (single
flight), and the factory's exception reaches every caller without being cached. On memory and Redis."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from rediscache import CacheAdapter, MemoryCacheAdapter
from rediscache.kit import CacheService


class Factory:
    """A factory that counts its calls and can be held until released."""

    def __init__(self, value: object = "computed", *, error: Exception | None = None) -> None:
        self.value = value
        self.error = error
        self.calls = 0
        self.release = asyncio.Event()
        self.release.set()
        self.started = asyncio.Event()

    async def __call__(self) -> object:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.value

    def hold(self) -> Factory:
        self.release.clear()
        return self


async def test_a_miss_runs_the_factory_and_stores_its_value(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)
    factory = Factory(42)

    assert await service.get_or_set("k", factory) == 42

    assert await service.get("k") == 42
    assert factory.calls == 1


async def test_a_hit_does_not_run_the_factory(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)
    await service.set("k", "cached")
    factory = Factory()

    assert await service.get_or_set("k", factory) == "cached"

    assert factory.calls == 0


async def test_a_cached_none_is_served_without_recomputing(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)
    factory = Factory(None)

    assert await service.get_or_set("k", factory) is None
    assert await service.get_or_set("k", factory) is None

    assert factory.calls == 1


async def test_a_sync_factory_is_called_and_not_awaited(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)

    assert await service.get_or_set("k", lambda: [1, 2]) == [1, 2]


async def test_an_awaitable_returned_by_a_plain_callable_is_awaited(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)
    factory = Factory("from a coroutine")

    assert await service.get_or_set("k", lambda: factory()) == "from a coroutine"


async def test_get_or_set_async_takes_the_keyword_names(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)

    value = await service.get_or_set_async(key="k", value_factory=lambda: "v", ttl=timedelta(minutes=1))

    entry = await service.get_entry("k")
    assert value == "v" and entry is not None and entry.expires_at is not None


async def test_the_value_is_stored_with_the_given_namespace_tags_and_ttl(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)

    await service.get_or_set("k", lambda: 1, ttl=timedelta(minutes=1), namespace="ns", tags=["t"])

    entry = await service.get_entry("k", namespace="ns")
    assert entry is not None and entry.expires_at is not None
    assert await service.invalidate_tags(["t"]) == 1


async def test_concurrent_callers_of_a_cold_key_share_one_factory_call(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)
    factory = Factory("shared").hold()

    callers = [asyncio.ensure_future(service.get_or_set("k", factory)) for _ in range(100)]
    await factory.started.wait()
    factory.release.set()
    results = await asyncio.gather(*callers)

    assert results == ["shared"] * 100
    assert factory.calls == 1


async def test_callers_arriving_during_a_computation_join_it() -> None:
    # The in-process adapter answers without yielding, so every caller is sure to arrive mid-flight.
    service = CacheService(MemoryCacheAdapter())
    factory = Factory("shared").hold()

    callers = [asyncio.ensure_future(service.get_or_set("k", factory)) for _ in range(100)]
    await factory.started.wait()
    factory.release.set()
    await asyncio.gather(*callers)

    assert service.health().coalesced_calls == 99


async def test_callers_of_different_keys_do_not_share(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)

    results = await asyncio.gather(*(service.get_or_set(f"k{i}", lambda i=i: i) for i in range(5)))

    assert results == [0, 1, 2, 3, 4]


async def test_the_factory_exception_reaches_every_concurrent_caller() -> None:
    # In memory every caller is sure to join the flight before it fails (reads do not yield); on Redis a
    # caller whose read is still in flight when the flight fails starts a new one, as it should.
    service = CacheService(MemoryCacheAdapter())
    factory = Factory(error=LookupError("source down")).hold()

    callers = [asyncio.ensure_future(service.get_or_set("k", factory)) for _ in range(10)]
    await factory.started.wait()
    factory.release.set()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)

    assert all(isinstance(outcome, LookupError) for outcome in outcomes)
    assert factory.calls == 1


async def test_a_factory_exception_is_not_cached(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)

    with pytest.raises(LookupError):
        await service.get_or_set("k", Factory(error=LookupError("once")))

    assert not await service.exists("k")
    assert await service.get_or_set("k", Factory("recovered")) == "recovered"


async def test_a_cancelled_caller_does_not_cancel_the_others() -> None:
    service = CacheService(MemoryCacheAdapter())  # reads do not yield: both callers are in the flight
    factory = Factory("v").hold()
    first = asyncio.ensure_future(service.get_or_set("k", factory))
    second = asyncio.ensure_future(service.get_or_set("k", factory))
    await factory.started.wait()

    first.cancel()
    factory.release.set()

    assert await second == "v"
    assert first.cancelled()
    assert factory.calls == 1


async def test_the_factory_is_cancelled_when_every_caller_is(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)
    cancelled = asyncio.Event()

    async def slow() -> str:
        try:
            await asyncio.Event().wait()  # forever
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    started = asyncio.Event()

    def factory() -> object:
        started.set()
        return slow()

    caller = asyncio.ensure_future(service.get_or_set("k", factory))
    await started.wait()
    caller.cancel()

    await asyncio.wait_for(cancelled.wait(), 5)
    assert not await service.exists("k")


async def test_a_new_caller_after_a_failed_flight_runs_the_factory_again(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)
    failing = Factory(error=RuntimeError("boom"))
    with pytest.raises(RuntimeError):
        await service.get_or_set("k", failing)
    working = Factory("ok")

    assert await service.get_or_set("k", working) == "ok"
    assert working.calls == 1


async def test_a_factory_that_is_not_callable_is_refused(adapter: CacheAdapter) -> None:
    with pytest.raises(TypeError, match="callable"):
        await CacheService(adapter).get_or_set("k", 42)  # type: ignore[call-overload]


async def test_a_bad_ttl_is_refused_before_the_factory_runs(adapter: CacheAdapter) -> None:
    factory = Factory()

    with pytest.raises(ValueError):
        await CacheService(adapter).get_or_set("k", factory, ttl=timedelta(0))

    assert factory.calls == 0
