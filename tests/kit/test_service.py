"""CacheService basics: keys, defaults, cached None, batches, invalidation and maintenance, on memory and Redis."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from rediscache import CacheAdapter, CacheKey, RedisCacheAdapter
from rediscache.kit import CacheService


async def test_get_returns_the_value_that_was_set(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)

    await service.set("user:1", {"name": "Ada"})

    assert await service.get("user:1") == {"name": "Ada"}


async def test_get_of_a_missing_key_is_none(adapter: CacheAdapter) -> None:
    assert await CacheService(adapter).get("absent") is None


async def test_a_cached_none_is_an_entry_not_a_miss(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)

    await service.set("nothing", None)

    entry = await service.get_entry("nothing")
    assert entry is not None and entry.value is None
    assert await service.exists("nothing")
    assert await service.get_entry("absent") is None


async def test_the_default_namespace_applies_to_str_keys(adapter: CacheAdapter) -> None:
    service = CacheService(adapter, default_namespace="tenant:1")

    await service.set("profile", "p")

    entry = await adapter.get(CacheKey(key="profile", namespace="tenant:1"))
    assert entry is not None and entry.value == "p"


async def test_an_explicit_namespace_wins_over_the_default(adapter: CacheAdapter) -> None:
    service = CacheService(adapter, default_namespace="tenant:1")

    await service.set("profile", "p", namespace="tenant:2")

    assert await service.get("profile") is None
    assert await service.get("profile", namespace="tenant:2") == "p"


async def test_the_default_ttl_applies_when_none_is_given(adapter: CacheAdapter) -> None:
    service = CacheService(adapter, default_ttl=timedelta(minutes=5))

    await service.set("k", 1)

    entry = await service.get_entry("k")
    assert entry is not None and entry.expires_at is not None
    assert entry.expires_at - entry.created_at == timedelta(minutes=5)


async def test_an_explicit_ttl_wins_over_the_default(adapter: CacheAdapter) -> None:
    service = CacheService(adapter, default_ttl=timedelta(minutes=5))

    await service.set("k", 1, ttl=timedelta(seconds=30))

    entry = await service.get_entry("k")
    assert entry is not None and entry.expires_at is not None
    assert entry.expires_at - entry.created_at == timedelta(seconds=30)


async def test_without_a_default_ttl_entries_never_expire(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)

    await service.set("k", 1)

    entry = await service.get_entry("k")
    assert entry is not None and entry.expires_at is None


async def test_a_cache_key_is_used_as_it_is(adapter: CacheAdapter) -> None:
    service = CacheService(adapter, default_namespace="ignored")
    key = CacheKey(key="k", namespace="own", tags=["t"])

    await service.set(key, 1)

    assert await adapter.exists(CacheKey(key="k", namespace="own"))
    assert await service.invalidate_tags(["t"]) == 1


async def test_a_namespace_beside_a_cache_key_is_refused(adapter: CacheAdapter) -> None:
    with pytest.raises(ValueError, match="inside the CacheKey"):
        await CacheService(adapter).get(CacheKey(key="k"), namespace="ns")


async def test_delete_reports_whether_a_live_entry_was_removed(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)
    await service.set("k", 1)

    assert await service.delete("k") is True
    assert await service.delete("k") is False
    assert not await service.exists("k")


async def test_invalidate_tags_removes_the_tagged_entries_and_counts_them(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)
    await service.set("a", 1, tags=["product", "category:7"])
    await service.set("b", 2, tags=["category:7"])
    await service.set("c", 3, tags=["category:8"])

    assert await service.invalidate_tags(["category:7"]) == 2

    assert await service.get("c") == 3
    assert not await service.exists("a")


async def test_a_single_tag_string_is_refused_rather_than_read_as_characters(adapter: CacheAdapter) -> None:
    with pytest.raises(ValueError, match="not a str"):
        await CacheService(adapter).invalidate_tags("product")


async def test_invalidate_namespace_defaults_to_the_service_namespace(adapter: CacheAdapter) -> None:
    service = CacheService(adapter, default_namespace="tenant:1")
    await service.set("a", 1)
    await service.set("b", 2)
    await service.set("c", 3, namespace="tenant:2")

    assert await service.invalidate_namespace() == 2

    assert await service.get("c", namespace="tenant:2") == 3


async def test_invalidate_namespace_with_no_namespace_at_all_is_refused(adapter: CacheAdapter) -> None:
    with pytest.raises(ValueError, match="needs a namespace"):
        await CacheService(adapter).invalidate_namespace()


async def test_invalidate_pattern_matches_inside_the_namespace_taken_literally(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)
    await service.set("user:1", 1, namespace="t*")
    await service.set("user:2", 2, namespace="t*")
    await service.set("user:1", 3, namespace="tx")  # would match if the namespace's * were a wildcard
    await service.set("order:1", 4, namespace="t*")

    assert await service.invalidate_pattern("user:*", namespace="t*") == 2

    assert await service.get("user:1", namespace="tx") == 3
    assert await service.get("order:1", namespace="t*") == 4


async def test_invalidate_pattern_without_a_namespace_matches_whole_keys(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)
    await service.set("user:1", 1, namespace="a")
    await service.set("user:2", 2, namespace="b")

    assert await service.invalidate_pattern("*:user:*") == 2


async def test_cleanup_expired_counts_the_expired_entries(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)
    await service.set("short", 1, ttl=timedelta(milliseconds=20))
    await service.set("long", 2)
    await asyncio.sleep(0.05)

    assert await service.cleanup_expired() == 1
    assert await service.cleanup_expired() == 0


async def test_clear_all_removes_every_entry(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)
    await service.set("a", 1)
    await service.set("b", 2, namespace="ns")

    assert await service.clear_all() is True

    assert (await service.get_stats()).total_entries == 0


async def test_get_stats_are_the_adapters(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)
    await service.set("a", 1)
    await service.get("a")
    await service.get("absent")

    stats = await service.get_stats()

    assert (stats.total_entries, stats.total_hits, stats.total_misses) == (1, 1, 1)


async def test_get_many_returns_the_hits_only_with_cached_none_among_them(adapter: CacheAdapter) -> None:
    service = CacheService(adapter, default_namespace="ns")
    await service.set("a", 1)
    await service.set("n", None)

    assert await service.get_many(["a", "absent", "n"]) == {"a": 1, "n": None}


async def test_set_many_stores_every_pair_with_one_ttl_namespace_and_tags(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)

    await service.set_many({"a": 1, "b": 2}, ttl=timedelta(minutes=1), namespace="ns", tags=["batch"])

    assert await service.get_many(["a", "b"], namespace="ns") == {"a": 1, "b": 2}
    entry = await service.get_entry("a", namespace="ns")
    assert entry is not None and entry.expires_at is not None
    assert await service.invalidate_tags(["batch"]) == 2


async def test_set_many_accepts_pairs(adapter: CacheAdapter) -> None:
    service = CacheService(adapter)

    await service.set_many([("a", 1), ("b", 2)])

    assert await service.get_many(["a", "b"]) == {"a": 1, "b": 2}


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-1)])
async def test_a_ttl_that_is_not_positive_is_refused(adapter: CacheAdapter, ttl: timedelta) -> None:
    with pytest.raises(ValueError, match="positive"):
        await CacheService(adapter).set("k", 1, ttl=ttl)


async def test_an_empty_key_is_refused(adapter: CacheAdapter) -> None:
    with pytest.raises(ValueError):
        await CacheService(adapter).get("")


def test_a_service_needs_an_adapter() -> None:
    with pytest.raises(TypeError, match="CacheAdapter"):
        CacheService(object())  # type: ignore[arg-type]


def test_a_bad_default_namespace_is_refused_at_construction() -> None:
    from rediscache import MemoryCacheAdapter

    with pytest.raises(ValueError):
        CacheService(MemoryCacheAdapter(), default_namespace="")


async def test_values_round_trip_through_redis_with_their_types(redis_adapter: RedisCacheAdapter) -> None:
    service = CacheService(redis_adapter)
    value: Any = {"when": datetime(2024, 1, 2, tzinfo=timezone.utc), "ids": (1, 2), "tags": {"a"}}

    await service.set("k", value)

    assert await service.get("k") == value


@pytest.mark.cluster
async def test_invalidations_on_a_cluster_remove_exactly_what_they_name(cluster_adapter: RedisCacheAdapter) -> None:
    service = CacheService(cluster_adapter, default_namespace="t1")
    for i in range(40):  # spread over the 16 shards, so every master holds some
        await service.set(f"item:{i}", i, tags=[f"group:{i % 2}"])
    await service.set("item:0", "other", namespace="t2")

    assert await service.invalidate_tags(["group:0"]) == 20
    assert await service.invalidate_pattern("item:1*") == 6  # 1, 11, 13, 15, 17, 19 (evens are gone)
    assert await service.invalidate_namespace() == 14
    assert await service.get("item:0", namespace="t2") == "other"
