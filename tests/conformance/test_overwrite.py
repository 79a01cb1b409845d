"""``set`` replaces the whole entry of a ``full_key``: value, TTL, namespace, tags, and its access history."""

from __future__ import annotations

import asyncio

from rediscache._models import CacheKey
from rediscache._port import CacheAdapter

from ._support import LONG_TTL, SHORT_TTL, TICK, wait_past_short_ttl

# Two spellings of one entry: same full_key "a:b".
PLAIN = CacheKey(key="a:b")
NAMESPACED = CacheKey(key="b", namespace="a")


async def test_two_keys_with_the_same_full_key_name_one_entry(adapter: CacheAdapter) -> None:
    await adapter.set(NAMESPACED, "first")
    await adapter.set(PLAIN, "second")

    entry = await adapter.get(NAMESPACED)

    assert entry is not None
    assert entry.value == "second"
    assert (await adapter.get_stats()).total_entries == 1


async def test_set_replaces_the_value(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "old")
    await adapter.set(CacheKey(key="k"), "new")

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None
    assert entry.value == "new"


async def test_ttl_entry_overwritten_without_ttl_has_no_expiry(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "old", LONG_TTL)
    await adapter.set(CacheKey(key="k"), "new")

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None
    assert entry.expires_at is None


async def test_ttl_entry_overwritten_without_ttl_no_longer_expires(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "old", SHORT_TTL)
    await adapter.set(CacheKey(key="k"), "new")
    await wait_past_short_ttl()

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None
    assert entry.value == "new"


async def test_entry_without_ttl_overwritten_with_ttl_expires(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "old")
    await adapter.set(CacheKey(key="k"), "new", SHORT_TTL)
    assert await adapter.exists(CacheKey(key="k"))
    await wait_past_short_ttl()

    assert await adapter.get(CacheKey(key="k")) is None


async def test_overwrite_with_longer_ttl_replaces_the_short_one(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "old", SHORT_TTL)
    await adapter.set(CacheKey(key="k"), "new", LONG_TTL)
    await wait_past_short_ttl()

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None
    assert entry.value == "new"


async def test_overwrite_with_other_tags_drops_the_old_tag(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k", tags=["old"]), 1)
    await adapter.set(CacheKey(key="k", tags=["new"]), 2)

    assert await adapter.delete_by_tags(["old"]) == 0
    assert await adapter.exists(CacheKey(key="k"))


async def test_overwrite_with_other_tags_adds_the_new_tag(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k", tags=["old"]), 1)
    await adapter.set(CacheKey(key="k", tags=["new"]), 2)

    assert await adapter.delete_by_tags(["new"]) == 1
    assert not await adapter.exists(CacheKey(key="k"))


async def test_overwrite_without_tags_drops_every_tag(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k", tags=["t1", "t2"]), 1)
    await adapter.set(CacheKey(key="k"), 2)

    assert await adapter.delete_by_tags(["t1", "t2"]) == 0
    assert await adapter.exists(CacheKey(key="k"))


async def test_overwrite_with_the_same_tag_keeps_one_membership(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k", tags=["t"]), 1)
    await adapter.set(CacheKey(key="k", tags=["t"]), 2)

    assert await adapter.delete_by_tags(["t"]) == 1


async def test_overwrite_without_namespace_drops_the_old_namespace(adapter: CacheAdapter) -> None:
    await adapter.set(NAMESPACED, 1)
    await adapter.set(PLAIN, 2)

    assert await adapter.delete_by_namespace("a") == 0
    assert await adapter.exists(PLAIN)


async def test_overwrite_with_namespace_joins_the_namespace(adapter: CacheAdapter) -> None:
    await adapter.set(PLAIN, 1)
    await adapter.set(NAMESPACED, 2)

    assert await adapter.delete_by_namespace("a") == 1
    assert not await adapter.exists(PLAIN)


async def test_overwrite_records_the_new_key_in_the_entry(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="b", namespace="a", tags=["old"]), 1)
    await adapter.set(CacheKey(key="a:b", tags=["new"]), 2)

    entry = await adapter.get(PLAIN)

    assert entry is not None
    assert entry.key.namespace is None
    assert entry.key.key == "a:b"
    assert entry.key.tags == ["new"]


async def test_overwrite_resets_hit_count(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "old")
    await adapter.get(CacheKey(key="k"))
    await adapter.get(CacheKey(key="k"))
    await adapter.set(CacheKey(key="k"), "new")

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None
    assert entry.hit_count == 1


async def test_overwrite_gives_a_new_created_at(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "old")
    old = await adapter.get(CacheKey(key="k"))
    await asyncio.sleep(TICK)
    await adapter.set(CacheKey(key="k"), "new")

    new = await adapter.get(CacheKey(key="k"))

    assert old is not None and new is not None
    assert new.created_at > old.created_at


async def test_overwrite_of_expired_entry_makes_it_live_again(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k", tags=["t"]), "old", SHORT_TTL)
    await wait_past_short_ttl()
    await adapter.set(CacheKey(key="k", tags=["t"]), "new")

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None
    assert entry.value == "new"
    assert entry.hit_count == 1
    assert await adapter.delete_by_tags(["t"]) == 1
