"""TTL: ``None`` never expires, positive expires, zero/negative is a ``ValueError``, < 1 ms rounds up."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from rediscache._models import CacheKey
from rediscache._port import CacheAdapter

from ._support import LONG_TTL, ONE_MS, SHORT_TTL, wait_past_short_ttl

NOT_POSITIVE = [
    pytest.param(timedelta(0), id="zero"),
    pytest.param(timedelta(seconds=-1), id="minus_1s"),
    pytest.param(timedelta(microseconds=-1), id="minus_1us"),
    pytest.param(timedelta(days=-1, hours=23), id="minus_1h"),
]

NOT_TIMEDELTA = [
    pytest.param(5, id="int"),
    pytest.param(5.0, id="float"),
    pytest.param("5", id="str"),
    pytest.param(datetime(2030, 1, 1, tzinfo=timezone.utc), id="datetime"),
]


async def test_entry_without_ttl_has_no_expires_at(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v")

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None
    assert entry.expires_at is None


async def test_entry_without_ttl_outlives_a_short_ttl(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="forever"), "v")
    await adapter.set(CacheKey(key="short"), "v", SHORT_TTL)
    await wait_past_short_ttl()

    assert await adapter.get(CacheKey(key="short")) is None
    forever = await adapter.get(CacheKey(key="forever"))
    assert forever is not None
    assert forever.value == "v"


async def test_entry_with_ttl_is_live_before_it_expires(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v", SHORT_TTL)

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None
    assert entry.value == "v"


async def test_entry_with_ttl_is_gone_after_it_expires(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v", SHORT_TTL)
    assert await adapter.exists(CacheKey(key="k"))
    await wait_past_short_ttl()

    assert await adapter.get(CacheKey(key="k")) is None


async def test_expires_at_is_created_at_plus_ttl(adapter: CacheAdapter) -> None:
    ttl = timedelta(seconds=30, milliseconds=250)
    await adapter.set(CacheKey(key="k"), "v", ttl)

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None and entry.expires_at is not None
    assert abs((entry.expires_at - entry.created_at) - ttl) <= ONE_MS


async def test_expires_at_is_in_the_future_for_a_live_entry(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v", LONG_TTL)

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None and entry.expires_at is not None
    assert entry.expires_at > datetime.now(timezone.utc)
    assert entry.is_expired is False


async def test_very_long_ttl_is_accepted(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v", timedelta(days=3650))

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None
    assert entry.expires_at is not None
    assert abs((entry.expires_at - entry.created_at) - timedelta(days=3650)) <= ONE_MS


@pytest.mark.parametrize("ttl", NOT_POSITIVE)
async def test_ttl_that_is_not_positive_raises_value_error(adapter: CacheAdapter, ttl: timedelta) -> None:
    with pytest.raises(ValueError):
        await adapter.set(CacheKey(key="k"), "v", ttl)


@pytest.mark.parametrize("ttl", NOT_POSITIVE)
async def test_ttl_that_is_not_positive_writes_nothing(adapter: CacheAdapter, ttl: timedelta) -> None:
    with pytest.raises(ValueError):
        await adapter.set(CacheKey(key="k", namespace="ns", tags=["t"]), "v", ttl)

    assert await adapter.exists(CacheKey(key="k", namespace="ns")) is False
    assert (await adapter.get_stats()).total_entries == 0


@pytest.mark.parametrize("ttl", NOT_POSITIVE)
async def test_ttl_that_is_not_positive_leaves_existing_entry_untouched(adapter: CacheAdapter, ttl: timedelta) -> None:
    await adapter.set(CacheKey(key="k", tags=["old"]), "old")

    with pytest.raises(ValueError):
        await adapter.set(CacheKey(key="k", tags=["new"]), "new", ttl)

    entry = await adapter.get(CacheKey(key="k"))
    assert entry is not None
    assert entry.value == "old"
    assert entry.expires_at is None
    assert await adapter.delete_by_tags(["new"]) == 0
    assert await adapter.delete_by_tags(["old"]) == 1


@pytest.mark.parametrize("ttl", NOT_TIMEDELTA)
async def test_ttl_that_is_not_a_timedelta_raises_type_error(adapter: CacheAdapter, ttl: Any) -> None:
    with pytest.raises(TypeError):
        await adapter.set(CacheKey(key="k"), "v", ttl)


@pytest.mark.parametrize("ttl", NOT_TIMEDELTA)
async def test_ttl_that_is_not_a_timedelta_writes_nothing(adapter: CacheAdapter, ttl: Any) -> None:
    await adapter.set(CacheKey(key="k"), "old")

    with pytest.raises(TypeError):
        await adapter.set(CacheKey(key="k"), "new", ttl)

    entry = await adapter.get(CacheKey(key="k"))
    assert entry is not None
    assert entry.value == "old"
    assert entry.expires_at is None


async def test_ttl_under_1ms_is_accepted_and_expires(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v", timedelta(microseconds=1))
    await asyncio.sleep(0.05)

    assert await adapter.get(CacheKey(key="k")) is None
    assert await adapter.exists(CacheKey(key="k")) is False


async def test_ttl_of_exactly_1ms_is_accepted_and_expires(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v", ONE_MS)
    await asyncio.sleep(0.05)

    assert await adapter.get(CacheKey(key="k")) is None


async def test_expired_entries_do_not_affect_live_neighbours(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="short", tags=["t"]), "v", SHORT_TTL)
    await adapter.set(CacheKey(key="long", tags=["t"]), "v", LONG_TTL)
    await wait_past_short_ttl()

    assert await adapter.exists(CacheKey(key="short")) is False
    assert await adapter.exists(CacheKey(key="long")) is True
