"""Batch operations: ``get_many``, ``set_many``, ``delete_many``."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rediscache._models import CacheKey
from rediscache._port import CacheAdapter

from ._support import SHORT_TTL, Counters, add, add_expired, counter_delta, counters, wait_past_short_ttl


async def test_get_many_returns_entries_in_request_order(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="a"), "A")
    await adapter.set(CacheKey(key="b"), "B")
    await adapter.set(CacheKey(key="c"), "C")

    entries = await adapter.get_many([CacheKey(key="c"), CacheKey(key="a"), CacheKey(key="b")])

    assert [entry.value if entry else None for entry in entries] == ["C", "A", "B"]


async def test_get_many_puts_none_in_place_of_each_miss(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="a"), "A")
    await adapter.set(CacheKey(key="c"), "C")

    entries = await adapter.get_many([CacheKey(key="x"), CacheKey(key="a"), CacheKey(key="y"), CacheKey(key="c")])

    assert [entry.value if entry else None for entry in entries] == [None, "A", None, "C"]
    assert entries[0] is None and entries[2] is None


async def test_get_many_puts_none_in_place_of_expired_entries(adapter: CacheAdapter) -> None:
    await add_expired(adapter, CacheKey(key="old"))
    await adapter.set(CacheKey(key="live"), "L")

    entries = await adapter.get_many([CacheKey(key="old"), CacheKey(key="live")])

    assert entries[0] is None
    assert entries[1] is not None and entries[1].value == "L"


async def test_get_many_of_no_keys_returns_an_empty_list(adapter: CacheAdapter) -> None:
    assert await adapter.get_many([]) == []


async def test_get_many_counts_one_hit_or_miss_per_key(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a"), CacheKey(key="b"))
    before = await counters(adapter)

    await adapter.get_many([CacheKey(key="a"), CacheKey(key="x"), CacheKey(key="b")])

    assert await counter_delta(adapter, before) == Counters(hits=2, misses=1)


async def test_get_many_returns_touched_entries(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a"), CacheKey(key="b"))
    await adapter.get(CacheKey(key="b"))

    entries = await adapter.get_many([CacheKey(key="a"), CacheKey(key="b")])

    assert [entry.hit_count if entry else None for entry in entries] == [1, 2]


async def test_get_many_returns_one_result_per_requested_key_even_when_repeated(
    adapter: CacheAdapter,
) -> None:
    await adapter.set(CacheKey(key="a"), "A")

    entries = await adapter.get_many([CacheKey(key="a"), CacheKey(key="x"), CacheKey(key="a")])

    assert [entry.value if entry else None for entry in entries] == ["A", None, "A"]


async def test_get_many_finds_entries_by_full_key(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="b", namespace="a"), "AB")

    (entry,) = await adapter.get_many([CacheKey(key="a:b")])

    assert entry is not None and entry.value == "AB"


async def test_set_many_then_get_many(adapter: CacheAdapter) -> None:
    keys = [CacheKey(key=f"k{i}", namespace="ns" if i % 2 else None) for i in range(10)]

    await adapter.set_many([(key, {"i": i}) for i, key in enumerate(keys)])

    entries = await adapter.get_many(keys)
    assert [entry.value if entry else None for entry in entries] == [{"i": i} for i in range(10)]


async def test_set_many_accepts_any_iterable_of_pairs(adapter: CacheAdapter) -> None:
    await adapter.set_many((CacheKey(key=f"k{i}"), i) for i in range(3))

    assert (await adapter.get_stats()).total_entries == 3


async def test_set_many_of_nothing_writes_nothing(adapter: CacheAdapter) -> None:
    await adapter.set_many([])

    assert (await adapter.get_stats()).total_entries == 0


async def test_set_many_without_ttl_sets_no_expiry(adapter: CacheAdapter) -> None:
    await adapter.set_many([(CacheKey(key="a"), 1)])

    entry = await adapter.get(CacheKey(key="a"))

    assert entry is not None
    assert entry.expires_at is None


async def test_set_many_applies_the_ttl_to_every_entry(adapter: CacheAdapter) -> None:
    keys = [CacheKey(key="a"), CacheKey(key="b")]
    await adapter.set_many([(key, 1) for key in keys], SHORT_TTL)
    assert [await adapter.exists(key) for key in keys] == [True, True]
    await wait_past_short_ttl()

    assert await adapter.get_many(keys) == [None, None]


async def test_set_many_records_tags_and_namespaces(adapter: CacheAdapter) -> None:
    await adapter.set_many(
        [
            (CacheKey(key="a", tags=["t"]), 1),
            (CacheKey(key="b", namespace="ns"), 2),
            (CacheKey(key="c", namespace="ns", tags=["t"]), 3),
        ]
    )

    assert await adapter.delete_by_tags(["t"]) == 2
    assert await adapter.delete_by_namespace("ns") == 1


async def test_set_many_replaces_existing_entries_whole(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="a", tags=["old"]), "old", SHORT_TTL)

    await adapter.set_many([(CacheKey(key="a", tags=["new"]), "new")])

    entry = await adapter.get(CacheKey(key="a"))
    assert entry is not None
    assert (entry.value, entry.expires_at, entry.hit_count) == ("new", None, 1)
    assert await adapter.delete_by_tags(["old"]) == 0


async def test_set_many_last_pair_for_a_full_key_wins(adapter: CacheAdapter) -> None:
    await adapter.set_many(
        [
            (CacheKey(key="b", namespace="a", tags=["first"]), "first"),
            (CacheKey(key="a:b", tags=["last"]), "last"),
        ]
    )

    entry = await adapter.get(CacheKey(key="a:b"))
    assert entry is not None
    assert entry.value == "last"
    assert (await adapter.get_stats()).total_entries == 1
    assert await adapter.delete_by_tags(["first"]) == 0


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-1)], ids=["zero", "negative"])
async def test_set_many_with_a_ttl_that_is_not_positive_raises_and_writes_nothing(
    adapter: CacheAdapter, ttl: timedelta
) -> None:
    with pytest.raises(ValueError):
        await adapter.set_many([(CacheKey(key="a"), 1), (CacheKey(key="b"), 2)], ttl)

    assert (await adapter.get_stats()).total_entries == 0


async def test_delete_many_removes_the_entries(adapter: CacheAdapter) -> None:
    keys = [CacheKey(key="a"), CacheKey(key="b", namespace="ns"), CacheKey(key="c", tags=["t"])]
    await add(adapter, *keys, CacheKey(key="keep"))

    await adapter.delete_many(keys)

    assert [await adapter.exists(key) for key in keys] == [False, False, False]
    assert await adapter.exists(CacheKey(key="keep"))


async def test_delete_many_counts_live_entries_only(adapter: CacheAdapter) -> None:
    await add_expired(adapter, CacheKey(key="old"))
    await add(adapter, CacheKey(key="live1"), CacheKey(key="live2"))

    count = await adapter.delete_many(
        [CacheKey(key="live1"), CacheKey(key="missing"), CacheKey(key="old"), CacheKey(key="live2")]
    )

    assert count == 2


async def test_delete_many_counts_a_repeated_key_once(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a"))

    assert await adapter.delete_many([CacheKey(key="a"), CacheKey(key="a")]) == 1


async def test_delete_many_of_nothing_returns_0(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a"))

    assert await adapter.delete_many([]) == 0
    assert await adapter.exists(CacheKey(key="a"))


async def test_delete_many_removes_tag_memberships(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a", tags=["t"]))
    await adapter.delete_many([CacheKey(key="a")])
    await add(adapter, CacheKey(key="a"))

    assert await adapter.delete_by_tags(["t"]) == 0
