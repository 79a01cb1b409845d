"""``get_stats``: live entry count, hit/miss counters, hit rate, memory, oldest/newest live entry."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime

import pytest

from rediscache._models import CacheKey, CacheStats
from rediscache._port import CacheAdapter

from ._support import TICK, add, add_expired, assert_same_instant, assert_utc


async def created_at(adapter: CacheAdapter, key: CacheKey) -> datetime:
    entry = await adapter.get(key)
    assert entry is not None
    return entry.created_at


async def set_spaced(adapter: CacheAdapter, *keys: CacheKey) -> None:
    """Set the keys in order, far enough apart that their ``created_at`` values differ."""
    for index, key in enumerate(keys):
        if index:
            await asyncio.sleep(TICK)
        await adapter.set(key, key.key)


async def test_get_stats_returns_cache_stats(adapter: CacheAdapter) -> None:
    assert isinstance(await adapter.get_stats(), CacheStats)


async def test_fresh_cache_has_zero_entries_hits_and_misses(adapter: CacheAdapter) -> None:
    stats = await adapter.get_stats()

    assert (stats.total_entries, stats.total_hits, stats.total_misses) == (0, 0, 0)


async def test_hit_rate_is_0_with_no_reads(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a"))

    assert (await adapter.get_stats()).hit_rate == 0.0


async def test_hit_rate_is_hits_over_reads(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a"))
    for name in ["a", "a", "a", "missing"]:
        await adapter.get(CacheKey(key=name))

    stats = await adapter.get_stats()

    assert (stats.total_hits, stats.total_misses) == (3, 1)
    assert stats.hit_rate == pytest.approx(0.75)


async def test_hit_rate_is_1_with_only_hits(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a"))
    await adapter.get(CacheKey(key="a"))

    assert (await adapter.get_stats()).hit_rate == pytest.approx(1.0)


async def test_hit_rate_is_0_with_only_misses(adapter: CacheAdapter) -> None:
    await adapter.get(CacheKey(key="missing"))

    stats = await adapter.get_stats()

    assert stats.total_misses == 1
    assert stats.hit_rate == 0.0


async def test_total_hits_counts_every_hit(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a"), CacheKey(key="b"))
    for name in ["a", "b", "a", "a"]:
        await adapter.get(CacheKey(key=name))

    assert (await adapter.get_stats()).total_hits == 4


async def test_total_misses_counts_every_miss(adapter: CacheAdapter) -> None:
    for name in ["x", "y", "x"]:
        await adapter.get(CacheKey(key=name))

    assert (await adapter.get_stats()).total_misses == 3


async def test_counters_survive_deleting_the_entries_read(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a"))
    await adapter.get(CacheKey(key="a"))
    await adapter.get(CacheKey(key="missing"))
    await adapter.delete(CacheKey(key="a"))
    await adapter.delete_by_pattern("*")

    stats = await adapter.get_stats()

    assert (stats.total_hits, stats.total_misses) == (1, 1)


async def test_total_entries_counts_live_entries(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a"), CacheKey(key="b", namespace="n"), CacheKey(key="c", tags=["t"]))

    assert (await adapter.get_stats()).total_entries == 3


async def test_total_entries_excludes_expired_entries_before_cleanup(adapter: CacheAdapter) -> None:
    await add_expired(adapter, CacheKey(key="old1"), CacheKey(key="old2"))
    await add(adapter, CacheKey(key="live"))

    assert (await adapter.get_stats()).total_entries == 1


async def test_memory_usage_is_a_positive_int_with_entries(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a"), value={"name": "Alice", "tags": [1, 2, 3]})

    usage = (await adapter.get_stats()).memory_usage_bytes

    assert isinstance(usage, int)
    assert usage > 0


async def test_memory_usage_grows_by_at_least_half_a_large_value(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="small"))
    before = (await adapter.get_stats()).memory_usage_bytes
    await adapter.set(CacheKey(key="large"), os.urandom(64 * 1024))

    after = (await adapter.get_stats()).memory_usage_bytes

    assert isinstance(before, int) and isinstance(after, int)
    assert after - before >= 32 * 1024


async def test_memory_usage_shrinks_when_a_large_entry_is_deleted(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="small"))
    await adapter.set(CacheKey(key="large"), os.urandom(64 * 1024))
    before = (await adapter.get_stats()).memory_usage_bytes
    await adapter.delete(CacheKey(key="large"))

    after = (await adapter.get_stats()).memory_usage_bytes

    assert isinstance(before, int) and isinstance(after, int)
    assert before - after >= 32 * 1024


async def test_oldest_and_newest_entry_are_none_when_empty(adapter: CacheAdapter) -> None:
    stats = await adapter.get_stats()

    assert stats.oldest_entry is None
    assert stats.newest_entry is None


async def test_oldest_entry_is_created_at_of_the_oldest_live_entry(adapter: CacheAdapter) -> None:
    await set_spaced(adapter, CacheKey(key="first"), CacheKey(key="second"), CacheKey(key="third"))

    stats = await adapter.get_stats()

    assert_same_instant(stats.oldest_entry, await created_at(adapter, CacheKey(key="first")))


async def test_newest_entry_is_created_at_of_the_newest_live_entry(adapter: CacheAdapter) -> None:
    await set_spaced(adapter, CacheKey(key="first"), CacheKey(key="second"), CacheKey(key="third"))

    stats = await adapter.get_stats()

    assert_same_instant(stats.newest_entry, await created_at(adapter, CacheKey(key="third")))


async def test_oldest_and_newest_are_equal_with_one_entry(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="only"))

    stats = await adapter.get_stats()

    assert stats.oldest_entry is not None
    assert stats.oldest_entry == stats.newest_entry


async def test_deleting_the_oldest_entry_moves_oldest_entry(adapter: CacheAdapter) -> None:
    await set_spaced(adapter, CacheKey(key="first"), CacheKey(key="second"), CacheKey(key="third"))
    await adapter.delete(CacheKey(key="first"))

    stats = await adapter.get_stats()

    assert_same_instant(stats.oldest_entry, await created_at(adapter, CacheKey(key="second")))


async def test_deleting_the_newest_entry_moves_newest_entry(adapter: CacheAdapter) -> None:
    await set_spaced(adapter, CacheKey(key="first"), CacheKey(key="second"), CacheKey(key="third"))
    await adapter.delete(CacheKey(key="third"))

    stats = await adapter.get_stats()

    assert_same_instant(stats.newest_entry, await created_at(adapter, CacheKey(key="second")))


async def test_overwriting_the_oldest_entry_makes_it_the_newest(adapter: CacheAdapter) -> None:
    await set_spaced(adapter, CacheKey(key="first"), CacheKey(key="second"))
    await asyncio.sleep(TICK)
    await adapter.set(CacheKey(key="first"), "again")

    stats = await adapter.get_stats()

    assert_same_instant(stats.oldest_entry, await created_at(adapter, CacheKey(key="second")))
    assert_same_instant(stats.newest_entry, await created_at(adapter, CacheKey(key="first")))


async def test_oldest_entry_ignores_expired_entries(adapter: CacheAdapter) -> None:
    await add_expired(adapter, CacheKey(key="expired"))
    await add(adapter, CacheKey(key="live"))

    stats = await adapter.get_stats()

    assert_same_instant(stats.oldest_entry, await created_at(adapter, CacheKey(key="live")))


async def test_newest_entry_ignores_expired_entries(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="live"))
    await asyncio.sleep(TICK)
    await add_expired(adapter, CacheKey(key="expired"))

    stats = await adapter.get_stats()

    assert_same_instant(stats.newest_entry, await created_at(adapter, CacheKey(key="live")))


async def test_oldest_and_newest_are_none_when_only_expired_entries_remain(adapter: CacheAdapter) -> None:
    await add_expired(adapter, CacheKey(key="expired"))

    stats = await adapter.get_stats()

    assert stats.total_entries == 0
    assert stats.oldest_entry is None
    assert stats.newest_entry is None


async def test_oldest_and_newest_are_none_after_every_entry_is_deleted(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a"), CacheKey(key="b"))
    await adapter.delete(CacheKey(key="a"))
    await adapter.delete(CacheKey(key="b"))

    stats = await adapter.get_stats()

    assert stats.oldest_entry is None
    assert stats.newest_entry is None


async def test_stats_timestamps_are_timezone_aware_utc(adapter: CacheAdapter) -> None:
    await set_spaced(adapter, CacheKey(key="a"), CacheKey(key="b"))

    stats = await adapter.get_stats()

    assert_utc(stats.oldest_entry)
    assert_utc(stats.newest_entry)


async def test_reads_do_not_change_oldest_entry(adapter: CacheAdapter) -> None:
    await set_spaced(adapter, CacheKey(key="first"), CacheKey(key="second"))
    before = await adapter.get_stats()
    await asyncio.sleep(TICK)
    await adapter.get(CacheKey(key="first"))

    after = await adapter.get_stats()

    assert after.oldest_entry == before.oldest_entry
    assert after.newest_entry == before.newest_entry
