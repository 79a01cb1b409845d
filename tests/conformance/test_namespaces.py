"""``delete_by_namespace``: exactly the entries whose namespace is the one given."""

from __future__ import annotations

import pytest

from rediscache._models import CacheKey
from rediscache._port import CacheAdapter

from ._support import add, add_expired, live_full_keys


async def test_delete_by_namespace_removes_every_entry_of_the_namespace(adapter: CacheAdapter) -> None:
    keys = [CacheKey(key=name, namespace="ns") for name in ("a", "b", "c")]
    await add(adapter, *keys)

    assert await adapter.delete_by_namespace("ns") == 3
    assert await live_full_keys(adapter, keys) == set()


async def test_delete_by_namespace_keeps_other_namespaces(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a", namespace="ns"), CacheKey(key="a", namespace="other"))

    await adapter.delete_by_namespace("ns")

    assert await adapter.exists(CacheKey(key="a", namespace="other"))


async def test_delete_by_namespace_keeps_entries_without_namespace(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a", namespace="ns"), CacheKey(key="a"))

    assert await adapter.delete_by_namespace("ns") == 1
    assert await adapter.exists(CacheKey(key="a"))


async def test_delete_by_namespace_keeps_sub_namespace(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="x", namespace="ns"), CacheKey(key="x", namespace="ns:sub"))

    assert await adapter.delete_by_namespace("ns") == 1
    assert await adapter.exists(CacheKey(key="x", namespace="ns:sub"))


async def test_delete_by_namespace_keeps_keys_that_merely_start_with_the_namespace(
    adapter: CacheAdapter,
) -> None:
    await add(adapter, CacheKey(key="ns:x"), CacheKey(key="y", namespace="ns"))

    assert await adapter.delete_by_namespace("ns") == 1
    assert await adapter.exists(CacheKey(key="ns:x"))
    assert not await adapter.exists(CacheKey(key="y", namespace="ns"))


async def test_delete_by_namespace_keeps_namespaces_sharing_a_prefix(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="x", namespace="ns"), CacheKey(key="x", namespace="nsx"))

    assert await adapter.delete_by_namespace("ns") == 1
    assert await adapter.exists(CacheKey(key="x", namespace="nsx"))


async def test_delete_by_parent_of_a_colon_namespace_removes_nothing(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="profile", namespace="user:123"))

    assert await adapter.delete_by_namespace("user") == 0
    assert await adapter.exists(CacheKey(key="profile", namespace="user:123"))


async def test_delete_by_colon_namespace_removes_its_entries(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="profile", namespace="user:123"), CacheKey(key="profile", namespace="user:1"))

    assert await adapter.delete_by_namespace("user:123") == 1
    assert await adapter.exists(CacheKey(key="profile", namespace="user:1"))


async def test_delete_by_unknown_namespace_returns_0(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a", namespace="ns"))

    assert await adapter.delete_by_namespace("unknown") == 0
    assert await adapter.exists(CacheKey(key="a", namespace="ns"))


async def test_delete_by_namespace_does_not_count_expired_entries(adapter: CacheAdapter) -> None:
    await add_expired(adapter, CacheKey(key="old", namespace="ns"))
    await add(adapter, CacheKey(key="live", namespace="ns"))

    assert await adapter.delete_by_namespace("ns") == 1


async def test_delete_by_namespace_twice_returns_0_the_second_time(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a", namespace="ns"))
    await adapter.delete_by_namespace("ns")

    assert await adapter.delete_by_namespace("ns") == 0


@pytest.mark.parametrize("namespace", ["a*", "a?", "[ab]", "a\\", "a%"])
async def test_delete_by_namespace_takes_the_namespace_literally(adapter: CacheAdapter, namespace: str) -> None:
    await add(
        adapter,
        CacheKey(key="x", namespace=namespace),
        CacheKey(key="x", namespace="a"),
        CacheKey(key="x", namespace="ab"),
        CacheKey(key="x", namespace="b"),
    )

    assert await adapter.delete_by_namespace(namespace) == 1
    assert await adapter.exists(CacheKey(key="x", namespace=namespace)) is False
    assert (await adapter.get_stats()).total_entries == 3


async def test_namespace_match_is_case_sensitive(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="x", namespace="NS"), CacheKey(key="x", namespace="ns"))

    assert await adapter.delete_by_namespace("ns") == 1
    assert await adapter.exists(CacheKey(key="x", namespace="NS"))


async def test_delete_by_namespace_removes_tag_memberships(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="x", namespace="ns", tags=["t"]))
    await adapter.delete_by_namespace("ns")
    await add(adapter, CacheKey(key="ns:x"))

    assert await adapter.delete_by_tags(["t"]) == 0
    assert await adapter.exists(CacheKey(key="ns:x"))
