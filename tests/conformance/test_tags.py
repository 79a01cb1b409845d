"""``delete_by_tags``: entries carrying any of the tags, each counted once, live ones only."""

from __future__ import annotations

import pytest

from rediscache._models import CacheKey
from rediscache._port import CacheAdapter

from ._support import add, add_expired, live_full_keys


async def test_delete_by_tags_removes_the_entries_carrying_the_tag(adapter: CacheAdapter) -> None:
    tagged = [CacheKey(key=name, tags=["t"]) for name in ("a", "b")]
    await add(adapter, *tagged)

    assert await adapter.delete_by_tags(["t"]) == 2
    assert await live_full_keys(adapter, tagged) == set()


async def test_delete_by_tags_keeps_entries_without_the_tag(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a", tags=["t"]), CacheKey(key="b", tags=["u"]), CacheKey(key="c"))

    await adapter.delete_by_tags(["t"])

    assert await live_full_keys(adapter, [CacheKey(key="b"), CacheKey(key="c")]) == {"b", "c"}


async def test_delete_by_tags_removes_entries_carrying_any_of_the_tags(adapter: CacheAdapter) -> None:
    await add(
        adapter,
        CacheKey(key="a", tags=["t1"]),
        CacheKey(key="b", tags=["t2"]),
        CacheKey(key="c", tags=["t3"]),
    )

    assert await adapter.delete_by_tags(["t1", "t2"]) == 2
    assert await live_full_keys(adapter, [CacheKey(key=n) for n in "abc"]) == {"c"}


async def test_entry_with_two_matching_tags_counts_once(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a", tags=["t1", "t2"]))

    assert await adapter.delete_by_tags(["t1", "t2"]) == 1


async def test_repeated_tag_in_the_request_counts_each_entry_once(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a", tags=["t"]), CacheKey(key="b", tags=["t"]))

    assert await adapter.delete_by_tags(["t", "t"]) == 2


async def test_delete_by_tags_with_empty_list_returns_0(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a", tags=["t"]))

    assert await adapter.delete_by_tags([]) == 0


async def test_delete_by_tags_with_empty_list_deletes_nothing(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a", tags=["t"]), CacheKey(key="b"))

    await adapter.delete_by_tags([])

    assert (await adapter.get_stats()).total_entries == 2


async def test_delete_by_unknown_tag_returns_0(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a", tags=["t"]))

    assert await adapter.delete_by_tags(["unknown"]) == 0
    assert await adapter.exists(CacheKey(key="a"))


async def test_delete_by_tags_does_not_count_expired_entries(adapter: CacheAdapter) -> None:
    await add_expired(adapter, CacheKey(key="old", tags=["t"]))
    await add(adapter, CacheKey(key="live", tags=["t"]))

    assert await adapter.delete_by_tags(["t"]) == 1


async def test_delete_by_tags_of_only_expired_entries_returns_0(adapter: CacheAdapter) -> None:
    await add_expired(adapter, CacheKey(key="old1", tags=["t"]), CacheKey(key="old2", tags=["t"]))

    assert await adapter.delete_by_tags(["t"]) == 0


@pytest.mark.parametrize("requested", ["prod", "products", "Product", "prod*", "p?oduct"])
async def test_tag_match_is_exact(adapter: CacheAdapter, requested: str) -> None:
    await add(adapter, CacheKey(key="a", tags=["product"]))

    assert await adapter.delete_by_tags([requested]) == 0
    assert await adapter.exists(CacheKey(key="a"))


async def test_entry_removed_by_one_tag_is_gone_from_its_other_tags(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a", tags=["t1", "t2"]))
    await adapter.delete_by_tags(["t1"])

    assert await adapter.delete_by_tags(["t2"]) == 0


async def test_tag_can_be_used_again_after_invalidation(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a", tags=["t"]))
    await adapter.delete_by_tags(["t"])
    await add(adapter, CacheKey(key="b", tags=["t"]))

    assert await adapter.delete_by_tags(["t"]) == 1
    assert not await adapter.exists(CacheKey(key="b"))


async def test_delete_by_tags_twice_returns_0_the_second_time(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a", tags=["t"]))
    await adapter.delete_by_tags(["t"])

    assert await adapter.delete_by_tags(["t"]) == 0


async def test_delete_by_tags_reaches_entries_in_every_namespace(adapter: CacheAdapter) -> None:
    await add(
        adapter,
        CacheKey(key="a", namespace="n1", tags=["t"]),
        CacheKey(key="a", namespace="n2", tags=["t"]),
        CacheKey(key="a", tags=["t"]),
    )

    assert await adapter.delete_by_tags(["t"]) == 3
    assert (await adapter.get_stats()).total_entries == 0


async def test_delete_by_tags_removes_namespace_membership(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="x", namespace="ns", tags=["t"]))
    await adapter.delete_by_tags(["t"])
    await add(adapter, CacheKey(key="ns:x"))

    assert await adapter.delete_by_namespace("ns") == 0
    assert await adapter.exists(CacheKey(key="ns:x"))


async def test_delete_by_many_tags_counts_each_entry_once(adapter: CacheAdapter) -> None:
    await add(
        adapter,
        CacheKey(key="a", tags=["t1", "t2", "t3"]),
        CacheKey(key="b", tags=["t2", "t3"]),
        CacheKey(key="c", tags=["t3"]),
        CacheKey(key="d", tags=["t4"]),
    )

    assert await adapter.delete_by_tags(["t1", "t2", "t3"]) == 3
    assert await live_full_keys(adapter, [CacheKey(key=n) for n in "abcd"]) == {"d"}
