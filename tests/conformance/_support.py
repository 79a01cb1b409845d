"""Helpers shared by the conformance tests. Port-only: nothing here knows any adapter."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from rediscache._models import CacheKey
from rediscache._port import CacheAdapter

MakeSeparateCache = Callable[[], Awaitable[CacheAdapter]]

# An entry set with SHORT_TTL is live right after ``set`` returns and gone once
# ``wait_past_short_ttl()`` has returned (sleeps are at least as long as asked).
SHORT_TTL = timedelta(milliseconds=100)
EXPIRY_MARGIN = 0.05
# Long enough never to expire during a test.
LONG_TTL = timedelta(hours=1)
# Pause that makes two timestamps taken around it differ even at millisecond precision.
TICK = 0.02

ONE_MS = timedelta(milliseconds=1)


async def wait_past_short_ttl() -> None:
    await asyncio.sleep(SHORT_TTL.total_seconds() + EXPIRY_MARGIN)


async def add_expired(adapter: CacheAdapter, *keys: CacheKey, value: Any = "stale") -> None:
    """Set every key with SHORT_TTL, check each is live, then wait until all have expired."""
    for key in keys:
        await adapter.set(key, value, SHORT_TTL)
    for key in keys:
        assert await adapter.exists(key), f"{key.full_key!r} should be live right after set"
    await wait_past_short_ttl()


async def add(adapter: CacheAdapter, *keys: CacheKey, value: Any = "v") -> None:
    for key in keys:
        await adapter.set(key, value)


async def live_full_keys(adapter: CacheAdapter, keys: Iterable[CacheKey]) -> set[str]:
    return {key.full_key for key in keys if await adapter.exists(key)}


@dataclass(frozen=True)
class SharedPair:
    """Two adapters over one cache; ``settle()`` waits out the backend's propagation delay."""

    first: CacheAdapter
    second: CacheAdapter
    propagation_delay: float

    async def settle(self) -> None:
        await asyncio.sleep(self.propagation_delay)


@dataclass(frozen=True)
class Counters:
    hits: int
    misses: int


async def counters(adapter: CacheAdapter) -> Counters:
    stats = await adapter.get_stats()
    return Counters(stats.total_hits, stats.total_misses)


async def counter_delta(adapter: CacheAdapter, before: Counters) -> Counters:
    after = await counters(adapter)
    return Counters(after.hits - before.hits, after.misses - before.misses)


def assert_utc(moment: datetime | None) -> None:
    assert isinstance(moment, datetime), moment
    assert moment.tzinfo is not None, f"{moment!r} is naive"
    assert moment.utcoffset() == timedelta(0), f"{moment!r} is not UTC"


def assert_same_instant(a: datetime | None, b: datetime | None) -> None:
    """Equal to the millisecond (a backend may keep its indexes at millisecond precision)."""
    assert a is not None and b is not None, (a, b)
    assert abs(a - b) < ONE_MS, (a, b)


def glob_escape(text: str) -> str:
    """The Redis glob pattern that matches exactly ``text``."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


def assert_same_value(expected: Any, actual: Any, path: str = "value") -> None:
    """Equal, and of the same type at every level (a tuple stays a tuple, a set a set, ...)."""
    assert type(actual) is type(expected), f"{path}: {type(actual).__name__} != {type(expected).__name__}"
    assert actual == expected, f"{path}: {actual!r} != {expected!r}"
    if isinstance(expected, datetime | time):
        assert actual.utcoffset() == expected.utcoffset(), f"{path}: offset {actual!r} != {expected!r}"
        assert (actual.tzinfo is None) == (expected.tzinfo is None), f"{path}: {actual!r} != {expected!r}"
    elif isinstance(expected, list | tuple):
        for index, (item, got) in enumerate(zip(expected, actual, strict=True)):
            assert_same_value(item, got, f"{path}[{index}]")
    elif isinstance(expected, dict):
        for key, item in expected.items():
            (got_key,) = [k for k in actual if k == key]
            assert_same_value(key, got_key, f"{path} key {key!r}")
            assert_same_value(item, actual[key], f"{path}[{key!r}]")
    elif isinstance(expected, set | frozenset):
        for item in expected:
            (got,) = [g for g in actual if g == item]
            assert_same_value(item, got, f"{path} member {item!r}")


__all__ = [
    "EXPIRY_MARGIN",
    "LONG_TTL",
    "MakeSeparateCache",
    "ONE_MS",
    "SHORT_TTL",
    "SharedPair",
    "TICK",
    "Counters",
    "add",
    "add_expired",
    "assert_same_instant",
    "assert_same_value",
    "assert_utc",
    "counter_delta",
    "counters",
    "glob_escape",
    "live_full_keys",
    "wait_past_short_ttl",
]
