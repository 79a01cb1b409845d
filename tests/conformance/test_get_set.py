"""``get`` and ``exists``: touched entries, hit/miss accounting, timestamps."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from rediscache._models import CacheEntry, CacheKey
from rediscache._port import CacheAdapter

from ._support import LONG_TTL, TICK, Counters, add_expired, assert_utc, counter_delta, counters


async def test_get_of_missing_key_returns_none(adapter: CacheAdapter) -> None:
    assert await adapter.get(CacheKey(key="missing")) is None


async def test_get_returns_entry_with_value_that_was_set(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), {"name": "Alice"})

    entry = await adapter.get(CacheKey(key="k"))

    assert isinstance(entry, CacheEntry)
    assert entry.value == {"name": "Alice"}


async def test_first_get_of_fresh_entry_has_hit_count_1(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v")

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None
    assert entry.hit_count == 1


async def test_second_get_has_hit_count_2(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v")
    await adapter.get(CacheKey(key="k"))

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None
    assert entry.hit_count == 2


async def test_each_get_adds_one_to_hit_count(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v")

    seen = []
    for _ in range(5):
        entry = await adapter.get(CacheKey(key="k"))
        assert entry is not None
        seen.append(entry.hit_count)

    assert seen == [1, 2, 3, 4, 5]


async def test_get_keeps_created_at_fixed(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v")
    first = await adapter.get(CacheKey(key="k"))
    await asyncio.sleep(TICK)

    second = await adapter.get(CacheKey(key="k"))

    assert first is not None and second is not None
    assert second.created_at == first.created_at


async def test_get_advances_last_accessed(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v")
    first = await adapter.get(CacheKey(key="k"))
    await asyncio.sleep(TICK)

    second = await adapter.get(CacheKey(key="k"))

    assert first is not None and second is not None
    assert second.last_accessed > first.last_accessed


async def test_last_accessed_of_a_read_is_not_before_created_at(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v")
    await asyncio.sleep(TICK)

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None
    assert entry.last_accessed > entry.created_at


async def test_created_at_is_the_time_of_set(adapter: CacheAdapter) -> None:
    before = datetime.now(timezone.utc)
    await adapter.set(CacheKey(key="k"), "v")
    after = datetime.now(timezone.utc)

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None
    # A second of slack for a server clock; catches wrong time zones and wrong units.
    assert before - timedelta(seconds=1) <= entry.created_at <= after + timedelta(seconds=1)


async def test_get_does_not_change_the_stored_value(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), [1, 2, 3])
    await adapter.get(CacheKey(key="k"))

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None
    assert entry.value == [1, 2, 3]


async def test_all_entry_timestamps_are_timezone_aware_utc(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v", LONG_TTL)

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None
    assert_utc(entry.created_at)
    assert_utc(entry.last_accessed)
    assert_utc(entry.expires_at)


async def test_entry_key_full_key_equals_the_requested_full_key(adapter: CacheAdapter) -> None:
    key = CacheKey(key="profile", namespace="user:123", tags=["user"])
    await adapter.set(key, "v")

    entry = await adapter.get(key)

    assert entry is not None
    assert entry.key.full_key == "user:123:profile"


async def test_entry_key_carries_the_namespace_and_tags_it_was_set_with(adapter: CacheAdapter) -> None:
    key = CacheKey(key="profile", namespace="user:123", tags=["user", "profile"])
    await adapter.set(key, "v")

    entry = await adapter.get(key)

    assert entry is not None
    assert entry.key.key == "profile"
    assert entry.key.namespace == "user:123"
    assert sorted(entry.key.tags) == ["profile", "user"]


async def test_get_of_live_entry_counts_exactly_one_hit(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v")
    before = await counters(adapter)

    await adapter.get(CacheKey(key="k"))

    assert await counter_delta(adapter, before) == Counters(hits=1, misses=0)


async def test_get_of_missing_key_counts_exactly_one_miss(adapter: CacheAdapter) -> None:
    before = await counters(adapter)

    await adapter.get(CacheKey(key="missing"))

    assert await counter_delta(adapter, before) == Counters(hits=0, misses=1)


async def test_get_of_expired_entry_returns_none(adapter: CacheAdapter) -> None:
    await add_expired(adapter, CacheKey(key="k"))

    assert await adapter.get(CacheKey(key="k")) is None


async def test_get_of_expired_entry_counts_exactly_one_miss(adapter: CacheAdapter) -> None:
    await add_expired(adapter, CacheKey(key="k"))
    before = await counters(adapter)

    await adapter.get(CacheKey(key="k"))

    assert await counter_delta(adapter, before) == Counters(hits=0, misses=1)


async def test_repeated_gets_count_one_hit_or_miss_each(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="present"), "v")
    before = await counters(adapter)

    for name in ["present", "absent", "present", "present", "absent"]:
        await adapter.get(CacheKey(key=name))

    assert await counter_delta(adapter, before) == Counters(hits=3, misses=2)


async def test_none_value_is_a_hit_not_a_miss(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), None)
    before = await counters(adapter)

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None
    assert entry.value is None
    assert await counter_delta(adapter, before) == Counters(hits=1, misses=0)


async def test_exists_is_true_for_live_entry(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v")

    assert await adapter.exists(CacheKey(key="k")) is True


async def test_exists_is_false_for_missing_key(adapter: CacheAdapter) -> None:
    assert await adapter.exists(CacheKey(key="missing")) is False


async def test_exists_is_false_for_expired_entry(adapter: CacheAdapter) -> None:
    await add_expired(adapter, CacheKey(key="k"))

    assert await adapter.exists(CacheKey(key="k")) is False


async def test_exists_of_live_entry_counts_neither_hit_nor_miss(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v")
    before = await counters(adapter)

    await adapter.exists(CacheKey(key="k"))

    assert await counter_delta(adapter, before) == Counters(hits=0, misses=0)


async def test_exists_of_missing_key_counts_neither_hit_nor_miss(adapter: CacheAdapter) -> None:
    before = await counters(adapter)

    await adapter.exists(CacheKey(key="missing"))

    assert await counter_delta(adapter, before) == Counters(hits=0, misses=0)


async def test_exists_does_not_add_to_hit_count(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v")
    await adapter.exists(CacheKey(key="k"))
    await adapter.exists(CacheKey(key="k"))

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None
    assert entry.hit_count == 1


async def test_get_stats_counts_neither_hit_nor_miss(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v")
    before = await counters(adapter)

    await adapter.get_stats()
    await adapter.get_stats()

    assert await counter_delta(adapter, before) == Counters(hits=0, misses=0)


async def test_set_and_delete_count_neither_hit_nor_miss(adapter: CacheAdapter) -> None:
    before = await counters(adapter)

    await adapter.set(CacheKey(key="k"), "v")
    await adapter.set(CacheKey(key="k"), "w")
    await adapter.delete(CacheKey(key="k"))
    await adapter.delete(CacheKey(key="k"))

    assert await counter_delta(adapter, before) == Counters(hits=0, misses=0)


async def test_key_spelled_with_namespace_reads_entry_set_without(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="a:b"), "v")

    entry = await adapter.get(CacheKey(key="b", namespace="a"))

    assert entry is not None
    assert entry.value == "v"
    assert entry.key.full_key == "a:b"


async def test_entries_with_different_full_keys_are_independent(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k", namespace="one"), 1)
    await adapter.set(CacheKey(key="k", namespace="two"), 2)
    await adapter.set(CacheKey(key="k"), 3)

    values = [
        (await adapter.get(key)).value  # type: ignore[union-attr]
        for key in (CacheKey(key="k", namespace="one"), CacheKey(key="k", namespace="two"), CacheKey(key="k"))
    ]

    assert values == [1, 2, 3]
