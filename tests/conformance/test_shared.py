"""Two adapter objects over one shared cache (same server and prefix): each sees the other's work.

Generated only for backends whose registry entry has a ``pair_factory``; with none registered these
tests are deselected, not skipped. ``pair.settle()`` waits out the backend's declared propagation delay.
"""

from __future__ import annotations

from rediscache._models import CacheKey

from ._support import SHORT_TTL, SharedPair, wait_past_short_ttl


async def test_entry_set_through_one_is_read_through_the_other(adapter_pair: SharedPair) -> None:
    await adapter_pair.first.set(CacheKey(key="k", namespace="ns", tags=["t"]), {"v": 1})
    await adapter_pair.settle()

    entry = await adapter_pair.second.get(CacheKey(key="k", namespace="ns"))

    assert entry is not None
    assert entry.value == {"v": 1}
    assert await adapter_pair.second.exists(CacheKey(key="k", namespace="ns"))


async def test_overwrite_through_one_is_seen_by_the_other(adapter_pair: SharedPair) -> None:
    await adapter_pair.first.set(CacheKey(key="k"), "old")
    await adapter_pair.settle()
    assert await adapter_pair.second.get(CacheKey(key="k")) is not None
    await adapter_pair.first.set(CacheKey(key="k"), "new")
    await adapter_pair.settle()

    entry = await adapter_pair.second.get(CacheKey(key="k"))

    assert entry is not None
    assert entry.value == "new"


async def test_delete_through_one_is_seen_by_the_other(adapter_pair: SharedPair) -> None:
    await adapter_pair.first.set(CacheKey(key="k"), "v")
    await adapter_pair.settle()
    assert await adapter_pair.second.get(CacheKey(key="k")) is not None

    assert await adapter_pair.first.delete(CacheKey(key="k")) is True
    await adapter_pair.settle()

    assert await adapter_pair.second.get(CacheKey(key="k")) is None
    assert await adapter_pair.second.delete(CacheKey(key="k")) is False


async def test_tag_invalidation_through_one_is_seen_by_the_other(adapter_pair: SharedPair) -> None:
    await adapter_pair.second.set(CacheKey(key="a", tags=["t"]), 1)
    await adapter_pair.second.set(CacheKey(key="b", tags=["t"]), 2)
    await adapter_pair.settle()
    await adapter_pair.second.get(CacheKey(key="a"))

    assert await adapter_pair.first.delete_by_tags(["t"]) == 2
    await adapter_pair.settle()

    assert await adapter_pair.second.get(CacheKey(key="a")) is None
    assert await adapter_pair.second.exists(CacheKey(key="b")) is False


async def test_namespace_invalidation_through_one_is_seen_by_the_other(adapter_pair: SharedPair) -> None:
    await adapter_pair.second.set(CacheKey(key="a", namespace="ns"), 1)
    await adapter_pair.settle()
    await adapter_pair.second.get(CacheKey(key="a", namespace="ns"))

    assert await adapter_pair.first.delete_by_namespace("ns") == 1
    await adapter_pair.settle()

    assert await adapter_pair.second.get(CacheKey(key="a", namespace="ns")) is None


async def test_pattern_invalidation_through_one_is_seen_by_the_other(adapter_pair: SharedPair) -> None:
    await adapter_pair.second.set(CacheKey(key="user:1"), 1)
    await adapter_pair.second.set(CacheKey(key="user:2"), 2)
    await adapter_pair.settle()
    await adapter_pair.second.get(CacheKey(key="user:1"))

    assert await adapter_pair.first.delete_by_pattern("user:*") == 2
    await adapter_pair.settle()

    assert await adapter_pair.second.get(CacheKey(key="user:1")) is None
    assert await adapter_pair.second.exists(CacheKey(key="user:2")) is False


async def test_clear_through_one_is_seen_by_the_other(adapter_pair: SharedPair) -> None:
    await adapter_pair.second.set(CacheKey(key="a", tags=["t"]), 1)
    await adapter_pair.settle()
    await adapter_pair.second.get(CacheKey(key="a"))

    await adapter_pair.first.clear()
    await adapter_pair.settle()

    assert await adapter_pair.second.get(CacheKey(key="a")) is None
    assert (await adapter_pair.second.get_stats()).total_entries == 0


async def test_hit_and_miss_counters_are_shared(adapter_pair: SharedPair) -> None:
    await adapter_pair.first.set(CacheKey(key="a"), 1)
    await adapter_pair.settle()
    await adapter_pair.first.get(CacheKey(key="a"))
    await adapter_pair.second.get(CacheKey(key="a"))
    await adapter_pair.second.get(CacheKey(key="missing"))
    await adapter_pair.settle()

    for cache in (adapter_pair.first, adapter_pair.second):
        stats = await cache.get_stats()
        assert (stats.total_hits, stats.total_misses) == (2, 1)


async def test_entry_count_is_shared(adapter_pair: SharedPair) -> None:
    await adapter_pair.first.set(CacheKey(key="a"), 1)
    await adapter_pair.second.set(CacheKey(key="b"), 2)
    await adapter_pair.settle()

    assert (await adapter_pair.first.get_stats()).total_entries == 2
    assert (await adapter_pair.second.get_stats()).total_entries == 2


async def test_cleanup_through_one_counts_entries_written_through_the_other(adapter_pair: SharedPair) -> None:
    await adapter_pair.first.set(CacheKey(key="old"), 1, SHORT_TTL)
    await adapter_pair.settle()
    await wait_past_short_ttl()

    assert await adapter_pair.second.cleanup_expired() == 1
    assert await adapter_pair.first.cleanup_expired() == 0
