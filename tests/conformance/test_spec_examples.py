"""The examples of the port spec (``spec/cache-port.md``), run against every adapter."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from rediscache._models import CacheEntry, CacheKey
from rediscache._port import CacheAdapter

from ._support import ONE_MS, add


async def test_example_set_without_expiration(adapter: CacheAdapter) -> None:
    await adapter.set(key=CacheKey(key="user:123"), value={"name": "Alice"})

    entry = await adapter.get(CacheKey(key="user:123"))

    assert entry is not None
    assert entry.value == {"name": "Alice"}
    assert entry.expires_at is None
    assert entry.is_expired is False


async def test_example_set_with_one_hour_ttl(adapter: CacheAdapter) -> None:
    session_data = {"user_id": 123, "token": "xyz"}
    await adapter.set(key=CacheKey(key="session:xyz"), value=session_data, ttl=timedelta(hours=1))

    entry = await adapter.get(CacheKey(key="session:xyz"))

    assert entry is not None and entry.expires_at is not None
    assert entry.value == session_data
    assert abs(entry.expires_at - entry.created_at - timedelta(hours=1)) <= ONE_MS


async def test_example_set_with_tags_then_invalidate_them(adapter: CacheAdapter) -> None:
    product_data = {"id": 456, "name": "Widget"}
    await adapter.set(
        key=CacheKey(key="product:456", tags=["product", "catalog"]),
        value=product_data,
        ttl=timedelta(minutes=30),
    )

    assert await adapter.delete_by_tags(["product", "catalog"]) == 1
    assert await adapter.get(CacheKey(key="product:456")) is None


async def test_example_exists_then_get_succeeds(adapter: CacheAdapter) -> None:
    key = CacheKey(key="user:123")
    await adapter.set(key, {"name": "Alice"})

    assert await adapter.exists(key)
    entry = await adapter.get(key)
    assert entry is not None and entry.value == {"name": "Alice"}


async def test_example_delete_reports_whether_the_key_existed(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="user:123"), {"name": "Alice"})

    assert await adapter.delete(CacheKey(key="user:123")) is True
    assert await adapter.delete(CacheKey(key="user:123")) is False


async def test_example_delete_all_user_caches_by_pattern(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="user:1"), CacheKey(key="user:2"), CacheKey(key="product:1"))

    assert await adapter.delete_by_pattern("user:*") == 2
    assert await adapter.exists(CacheKey(key="product:1"))


async def test_example_pattern_with_star_in_the_middle(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="temp:1:data"), CacheKey(key="temp:1:meta"), CacheKey(key="temp:2:data"))

    assert await adapter.delete_by_pattern("temp:*:data") == 2
    assert await adapter.exists(CacheKey(key="temp:1:meta"))


async def test_example_patterns_for_temp_session_and_date(adapter: CacheAdapter) -> None:
    user_id = "u42"
    await add(
        adapter,
        CacheKey(key="temp:a"),
        CacheKey(key=f"session:{user_id}:profile"),
        CacheKey(key="session:u43:profile"),
        CacheKey(key="report:2024-01-15:daily"),
        CacheKey(key="report:2024-01-16:daily"),
    )

    assert await adapter.delete_by_pattern("temp:*") == 1
    assert await adapter.delete_by_pattern(f"session:{user_id}:*") == 1
    assert await adapter.delete_by_pattern("*:2024-01-15:*") == 1
    assert (await adapter.get_stats()).total_entries == 2


async def test_example_delete_by_namespace_of_a_user(adapter: CacheAdapter) -> None:
    await add(
        adapter,
        CacheKey(key="profile", namespace="user:123"),
        CacheKey(key="settings", namespace="user:123"),
        CacheKey(key="profile", namespace="user:124"),
    )

    assert await adapter.delete_by_namespace("user:123") == 2
    assert await adapter.exists(CacheKey(key="profile", namespace="user:124"))


async def test_example_cache_aside(adapter: CacheAdapter) -> None:
    fetched: list[str] = []

    async def get_with_cache_aside(key: str) -> dict[str, Any]:
        cache_key = CacheKey(key=key)
        entry = await adapter.get(cache_key)
        if entry and not entry.is_expired:
            return entry.value  # type: ignore[no-any-return]
        fetched.append(key)
        data = {"key": key}
        await adapter.set(cache_key, data, ttl=timedelta(hours=1))
        return data

    assert await get_with_cache_aside("profile:1") == {"key": "profile:1"}
    assert await get_with_cache_aside("profile:1") == {"key": "profile:1"}
    assert fetched == ["profile:1"]
    stats = await adapter.get_stats()
    assert (stats.total_hits, stats.total_misses, stats.hit_rate) == (1, 1, 0.5)


async def test_example_tenant_namespace_isolation(adapter: CacheAdapter) -> None:
    for tenant_id in ("t1", "t2"):
        for data_key in ("orders", "users"):
            await adapter.set(CacheKey(key=data_key, namespace=f"tenant:{tenant_id}"), [tenant_id], timedelta(hours=2))

    assert await adapter.delete_by_namespace("tenant:t1") == 2
    entry = await adapter.get(CacheKey(key="orders", namespace="tenant:t2"))
    assert entry is not None and entry.value == ["t2"]


async def test_example_category_and_product_invalidation(adapter: CacheAdapter) -> None:
    products = {"p1": 1, "p2": 1, "p3": 2}
    for product_id, category_id in products.items():
        key = CacheKey(key=f"product:{product_id}", tags=["product", f"category:{category_id}"])
        await adapter.set(key, {"id": product_id, "category_id": category_id}, ttl=timedelta(hours=1))

    assert await adapter.delete_by_tags(["category:1"]) == 2
    assert await adapter.delete_by_tags(["product"]) == 1
    assert (await adapter.get_stats()).total_entries == 0


@pytest.mark.parametrize(
    "invalidate",
    [
        pytest.param(lambda cache: cache.delete_by_namespace("catalog"), id="namespace"),
        pytest.param(lambda cache: cache.delete_by_tags(["product"]), id="tag_product"),
        pytest.param(lambda cache: cache.delete_by_tags(["category:electronics"]), id="tag_category"),
        pytest.param(lambda cache: cache.delete_by_tags(["featured"]), id="tag_featured"),
        pytest.param(lambda cache: cache.delete_by_pattern("catalog:product:*"), id="pattern"),
    ],
)
async def test_example_namespace_or_any_tag_deletes_the_entry(adapter: CacheAdapter, invalidate: Any) -> None:
    key = CacheKey(key="product:123", namespace="catalog", tags=["product", "category:electronics", "featured"])
    await adapter.set(key, {"id": 123})

    assert await invalidate(adapter) == 1
    assert await adapter.exists(key) is False


async def test_example_pattern_versus_tags(adapter: CacheAdapter) -> None:
    await add(
        adapter,
        CacheKey(key="user:123:profile", tags=["user:123"]),
        CacheKey(key="user:123:settings", tags=["user:123"]),
        CacheKey(key="dashboard", namespace="home", tags=["user:123"]),
    )

    assert await adapter.delete_by_pattern("user:123:*") == 2
    assert await adapter.delete_by_tags(["user:123"]) == 1


async def test_example_function_result_caching_key(adapter: CacheAdapter) -> None:
    # The shape CacheKey.from_function_call gives: "<module>.<qualname>:<16 hex digits>".
    cache_key = CacheKey(key="__main__.expensive_computation:0123456789abcdef", tags=["computation"])

    assert await adapter.get(cache_key) is None
    await adapter.set(key=cache_key, value=3**2 + 4**2, ttl=timedelta(minutes=15))
    entry = await adapter.get(cache_key)

    assert entry is not None and entry.value == 25
    assert await adapter.delete_by_tags(["computation"]) == 1


async def test_example_cleanup_expired_after_no_ttl_and_ttl_entries(adapter: CacheAdapter) -> None:
    await adapter.set(key=CacheKey(key="config"), value={"debug": False})

    assert await adapter.cleanup_expired() == 0
    assert await adapter.exists(CacheKey(key="config"))


# The model examples of the spec (no adapter involved).


def test_example_touch_returns_a_copy_with_hit_count_1() -> None:
    entry = CacheEntry(
        key=CacheKey(key="user:123"),
        value={"name": "Alice", "email": "alice@example.com"},
        expires_at=datetime.now(timezone.utc) + timedelta(hours=1),
    )

    touched = entry.touch()

    assert entry.is_expired is False
    assert (entry.hit_count, touched.hit_count) == (0, 1)
    assert touched.last_accessed >= entry.last_accessed


def test_example_entry_past_expires_at_is_expired() -> None:
    entry = CacheEntry(key=CacheKey(key="k"), value=1, expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))

    assert entry.is_expired is True
