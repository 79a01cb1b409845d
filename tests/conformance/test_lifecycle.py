"""Lifecycle: a fresh adapter is empty, ``async with`` closes it, ``close()`` twice is safe.

Also: two caches of one backend are separate."""

from __future__ import annotations

import pytest

from rediscache._models import CacheKey
from rediscache._port import CacheAdapter

from ._support import MakeSeparateCache, add


class _Boom(Exception):
    pass


def spy_on_close(adapter: CacheAdapter) -> list[str]:
    """Record calls to the adapter's public ``close()`` (still calling the real one)."""
    calls: list[str] = []
    real_close = adapter.close

    async def close() -> None:
        calls.append("close")
        await real_close()

    adapter.close = close  # type: ignore[method-assign]
    return calls


async def test_fresh_adapter_is_empty(adapter: CacheAdapter) -> None:
    stats = await adapter.get_stats()

    assert (stats.total_entries, stats.total_hits, stats.total_misses, stats.hit_rate) == (0, 0, 0, 0.0)
    assert await adapter.delete_by_pattern("*") == 0


async def test_async_with_gives_the_adapter_itself(adapter: CacheAdapter) -> None:
    async with adapter as entered:
        assert entered is adapter


async def test_adapter_works_inside_async_with(adapter: CacheAdapter) -> None:
    async with adapter as cache:
        await cache.set(CacheKey(key="k"), "v")
        entry = await cache.get(CacheKey(key="k"))

    assert entry is not None
    assert entry.value == "v"


async def test_async_with_closes_the_adapter_on_exit(adapter: CacheAdapter) -> None:
    calls = spy_on_close(adapter)

    async with adapter:
        assert calls == []

    assert calls == ["close"]


async def test_async_with_closes_the_adapter_when_the_body_raises(adapter: CacheAdapter) -> None:
    calls = spy_on_close(adapter)

    with pytest.raises(_Boom):
        async with adapter:
            raise _Boom

    assert calls == ["close"]


async def test_async_with_does_not_swallow_exceptions(adapter: CacheAdapter) -> None:
    with pytest.raises(_Boom):
        async with adapter:
            raise _Boom


async def test_close_twice_is_safe(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v")

    await adapter.close()
    await adapter.close()


async def test_close_after_async_with_is_safe(adapter: CacheAdapter) -> None:
    async with adapter:
        await adapter.set(CacheKey(key="k"), "v")

    await adapter.close()


async def test_separate_caches_do_not_share_entries(
    adapter: CacheAdapter, make_separate_cache: MakeSeparateCache
) -> None:
    other = await make_separate_cache()
    await add(adapter, CacheKey(key="k", namespace="ns", tags=["t"]))

    assert await other.get(CacheKey(key="k", namespace="ns")) is None
    assert await other.delete_by_tags(["t"]) == 0
    assert await other.delete_by_namespace("ns") == 0
    assert await adapter.exists(CacheKey(key="k", namespace="ns"))


async def test_separate_caches_do_not_share_stats(
    adapter: CacheAdapter, make_separate_cache: MakeSeparateCache
) -> None:
    other = await make_separate_cache()
    await add(adapter, CacheKey(key="k"))
    await adapter.get(CacheKey(key="k"))
    await adapter.get(CacheKey(key="missing"))

    stats = await other.get_stats()

    assert (stats.total_entries, stats.total_hits, stats.total_misses) == (0, 0, 0)


async def test_invalidations_in_one_cache_leave_the_other_alone(
    adapter: CacheAdapter, make_separate_cache: MakeSeparateCache
) -> None:
    other = await make_separate_cache()
    key = CacheKey(key="k", namespace="ns", tags=["t"])
    await add(adapter, key)
    await add(other, key)

    assert await adapter.delete_by_tags(["t"]) == 1
    assert await adapter.delete_by_namespace("ns") == 0
    assert await other.exists(key)
    assert await other.delete_by_namespace("ns") == 1
