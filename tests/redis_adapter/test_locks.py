"""Locks for stampede protection: one holder at a time, released only by their holder, expiring if it dies."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from rediscache import RedisCacheAdapter


async def test_only_one_of_many_contenders_takes_a_free_lock(cache: RedisCacheAdapter, redis_client: Any) -> None:
    taken = await asyncio.gather(*(cache.try_lock("job", f"t{i}", timedelta(seconds=5)) for i in range(20)))

    assert taken.count(True) == 1


async def test_a_lock_is_released_by_its_holder_and_can_be_taken_again(
    cache: RedisCacheAdapter, redis_client: Any
) -> None:
    assert await cache.try_lock("job", "mine", timedelta(seconds=5))

    assert await cache.unlock("job", "mine")
    assert await cache.try_lock("job", "next", timedelta(seconds=5))


async def test_another_token_cannot_release_the_lock(cache: RedisCacheAdapter, redis_client: Any) -> None:
    await cache.try_lock("job", "mine", timedelta(seconds=5))

    assert not await cache.unlock("job", "theirs")
    assert not await cache.try_lock("job", "theirs", timedelta(seconds=5))


async def test_the_lock_of_a_holder_that_died_expires(cache: RedisCacheAdapter, redis_client: Any) -> None:
    await cache.try_lock("job", "dead", timedelta(milliseconds=50))
    await asyncio.sleep(0.1)

    assert await cache.try_lock("job", "alive", timedelta(seconds=5))
    assert not await cache.unlock("job", "dead")


async def test_locks_are_not_cache_entries(cache: RedisCacheAdapter, redis_client: Any) -> None:
    await cache.try_lock("job", "mine", timedelta(seconds=5))

    assert (await cache.get_stats()).total_entries == 0
    await cache.clear()
    assert not await cache.try_lock("job", "other", timedelta(seconds=5))
