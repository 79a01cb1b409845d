"""``cleanup_expired`` and ``clear``."""

from __future__ import annotations

import pytest

from rediscache._models import CacheKey
from rediscache._port import CacheAdapter

from ._support import LONG_TTL, MakeSeparateCache, add, add_expired


async def test_cleanup_expired_returns_the_number_of_expired_entries_removed(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="live"))
    await add_expired(adapter, CacheKey(key="old1", tags=["t"]), CacheKey(key="old2", namespace="ns"))

    assert await adapter.cleanup_expired() == 2


async def test_cleanup_expired_again_at_once_returns_0(adapter: CacheAdapter) -> None:
    await add_expired(adapter, CacheKey(key="old1"), CacheKey(key="old2"))
    await adapter.cleanup_expired()

    assert await adapter.cleanup_expired() == 0


async def test_cleanup_expired_on_a_fresh_cache_returns_0(adapter: CacheAdapter) -> None:
    assert await adapter.cleanup_expired() == 0


async def test_cleanup_expired_with_only_live_entries_returns_0(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a"))
    await adapter.set(CacheKey(key="b"), "v", LONG_TTL)

    assert await adapter.cleanup_expired() == 0


async def test_cleanup_expired_keeps_live_entries(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="ttl", tags=["t"]), "v", LONG_TTL)
    await add(adapter, CacheKey(key="forever", namespace="ns"))
    await add_expired(adapter, CacheKey(key="old"))

    await adapter.cleanup_expired()

    entry = await adapter.get(CacheKey(key="ttl"))
    assert entry is not None and entry.value == "v"
    assert await adapter.exists(CacheKey(key="forever", namespace="ns"))


async def test_live_entries_keep_their_memberships_after_cleanup(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="ttl", namespace="ns", tags=["t"]), "v", LONG_TTL)
    await add_expired(adapter, CacheKey(key="old", namespace="ns", tags=["t"]))
    await adapter.cleanup_expired()

    assert await adapter.delete_by_tags(["t"]) == 1


async def test_total_entries_after_cleanup_is_the_live_count(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a"), CacheKey(key="b"))
    await add_expired(adapter, CacheKey(key="old1"), CacheKey(key="old2"), CacheKey(key="old3"))

    await adapter.cleanup_expired()

    assert (await adapter.get_stats()).total_entries == 2


async def test_cleanup_expired_counts_neither_hit_nor_miss(adapter: CacheAdapter) -> None:
    await add_expired(adapter, CacheKey(key="old"))

    await adapter.cleanup_expired()

    stats = await adapter.get_stats()
    assert (stats.total_hits, stats.total_misses) == (0, 0)


async def test_clear_removes_every_entry(adapter: CacheAdapter) -> None:
    keys = [CacheKey(key="a"), CacheKey(key="b", namespace="ns"), CacheKey(key="c", tags=["t"])]
    await add(adapter, *keys)

    await adapter.clear()

    for key in keys:
        assert await adapter.exists(key) is False


async def test_clear_keeps_the_hit_and_miss_counters(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a"))
    await adapter.get(CacheKey(key="a"))
    await adapter.get(CacheKey(key="a"))
    await adapter.get(CacheKey(key="missing"))

    await adapter.clear()

    stats = await adapter.get_stats()
    assert (stats.total_hits, stats.total_misses) == (2, 1)
    assert stats.hit_rate == pytest.approx(2 / 3)


async def test_stats_after_clear_show_an_empty_cache(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a"), CacheKey(key="b"))

    await adapter.clear()

    stats = await adapter.get_stats()
    assert stats.total_entries == 0
    assert stats.oldest_entry is None
    assert stats.newest_entry is None


async def test_clear_removes_tag_memberships(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a", tags=["t"]))
    await adapter.clear()
    await add(adapter, CacheKey(key="a"))

    assert await adapter.delete_by_tags(["t"]) == 0
    assert await adapter.exists(CacheKey(key="a"))


async def test_clear_removes_namespace_memberships(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a", namespace="ns"))
    await adapter.clear()
    await add(adapter, CacheKey(key="ns:a"))

    assert await adapter.delete_by_namespace("ns") == 0
    assert await adapter.exists(CacheKey(key="ns:a"))


async def test_clear_on_an_empty_cache_is_harmless(adapter: CacheAdapter) -> None:
    await adapter.clear()
    await adapter.clear()

    assert (await adapter.get_stats()).total_entries == 0


async def test_cache_works_after_clear(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a"))
    await adapter.clear()
    await adapter.set(CacheKey(key="a", tags=["t"]), "new")

    entry = await adapter.get(CacheKey(key="a"))

    assert entry is not None
    assert entry.value == "new"
    assert entry.hit_count == 1
    assert await adapter.delete_by_tags(["t"]) == 1


async def test_cleanup_after_clear_returns_0(adapter: CacheAdapter) -> None:
    await add_expired(adapter, CacheKey(key="old"))
    await adapter.clear()

    assert await adapter.cleanup_expired() == 0


async def test_clear_touches_only_this_cache(adapter: CacheAdapter, make_separate_cache: MakeSeparateCache) -> None:
    other = await make_separate_cache()
    await add(adapter, CacheKey(key="a"))
    await add(other, CacheKey(key="a", tags=["t"]))

    await adapter.clear()

    assert await other.exists(CacheKey(key="a"))
    assert await other.delete_by_tags(["t"]) == 1
