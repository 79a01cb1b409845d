"""The watchdog: one task keeps the deadlines of every command in flight."""

from __future__ import annotations

import asyncio

import pytest

from rediscache.redis.watchdog import Watchdog


async def test_a_command_past_its_deadline_is_cancelled_and_reported_as_expired() -> None:
    watchdog = Watchdog(period=0.01)

    async def slow() -> str:
        task = watchdog.start(0.05)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "expired" if watchdog.expired(task) else "cancelled by someone else"
        return "finished"

    try:
        assert await asyncio.wait_for(slow(), 2) == "expired"
    finally:
        watchdog.close()


async def test_a_command_that_stops_its_deadline_in_time_is_left_alone() -> None:
    watchdog = Watchdog(period=0.01)

    async def quick() -> str:
        task = watchdog.start(0.05)
        await asyncio.sleep(0)
        watchdog.stop(task)
        await asyncio.sleep(0.1)  # well past the deadline it no longer has
        return "finished"

    try:
        assert await quick() == "finished"
        assert watchdog.watched == 0
    finally:
        watchdog.close()


async def test_a_cancellation_the_watchdog_did_not_make_is_not_reported_as_expired() -> None:
    watchdog = Watchdog(period=0.01)
    seen: list[bool] = []

    async def waiting() -> None:
        task = watchdog.start(10)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append(watchdog.expired(task))
            watchdog.stop(task)
            raise

    task = asyncio.create_task(waiting())
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    watchdog.close()

    assert seen == [False]


def test_the_period_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Watchdog(period=0)
