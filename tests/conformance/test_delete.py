"""``delete``: ``True`` only when a live entry was removed; memberships go with the entry."""

from __future__ import annotations

from rediscache._models import CacheKey
from rediscache._port import CacheAdapter

from ._support import add_expired


async def test_delete_of_live_entry_returns_true(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v")

    assert await adapter.delete(CacheKey(key="k")) is True


async def test_delete_removes_the_entry(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v")
    await adapter.delete(CacheKey(key="k"))

    assert await adapter.get(CacheKey(key="k")) is None
    assert await adapter.exists(CacheKey(key="k")) is False


async def test_delete_of_missing_key_returns_false(adapter: CacheAdapter) -> None:
    assert await adapter.delete(CacheKey(key="missing")) is False


async def test_delete_of_expired_entry_returns_false(adapter: CacheAdapter) -> None:
    await add_expired(adapter, CacheKey(key="k"))

    assert await adapter.delete(CacheKey(key="k")) is False


async def test_second_delete_returns_false(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v")
    await adapter.delete(CacheKey(key="k"))

    assert await adapter.delete(CacheKey(key="k")) is False


async def test_delete_leaves_other_entries_alone(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v")
    await adapter.set(CacheKey(key="k2"), "v2")
    await adapter.set(CacheKey(key="k", namespace="ns"), "v3")

    await adapter.delete(CacheKey(key="k"))

    assert await adapter.exists(CacheKey(key="k2"))
    assert await adapter.exists(CacheKey(key="k", namespace="ns"))
    assert (await adapter.get_stats()).total_entries == 2


async def test_delete_by_other_spelling_of_the_full_key_removes_the_entry(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="b", namespace="a"), "v")

    assert await adapter.delete(CacheKey(key="a:b")) is True
    assert await adapter.exists(CacheKey(key="b", namespace="a")) is False


async def test_delete_ignores_the_tags_of_the_key_given(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k", tags=["t"]), "v")

    assert await adapter.delete(CacheKey(key="k", tags=["other"])) is True
    assert await adapter.exists(CacheKey(key="k")) is False


async def test_delete_removes_the_tag_membership(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k", tags=["t"]), "v")
    await adapter.delete(CacheKey(key="k"))
    await adapter.set(CacheKey(key="k"), "untagged")

    assert await adapter.delete_by_tags(["t"]) == 0
    assert await adapter.exists(CacheKey(key="k"))


async def test_delete_removes_the_namespace_membership(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="b", namespace="a"), "v")
    await adapter.delete(CacheKey(key="b", namespace="a"))
    await adapter.set(CacheKey(key="a:b"), "no namespace")

    assert await adapter.delete_by_namespace("a") == 0
    assert await adapter.exists(CacheKey(key="a:b"))


async def test_deleted_entry_is_not_counted_in_stats(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v")
    await adapter.set(CacheKey(key="k2"), "v")

    await adapter.delete(CacheKey(key="k"))

    assert (await adapter.get_stats()).total_entries == 1


async def test_entry_can_be_set_again_after_delete(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "old")
    await adapter.delete(CacheKey(key="k"))
    await adapter.set(CacheKey(key="k"), "new")

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None
    assert entry.value == "new"
    assert entry.hit_count == 1
