"""In-process single flight: concurrent callers for one key share one computation.

The computation runs in a task of its own, not in the first caller's, so a caller that is cancelled
(a client that hung up) does not cancel the work the others are waiting for. When the last waiter
is gone the task is cancelled too: nobody is left to use its result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["SingleFlight"]


@dataclass
class _Flight:
    task: asyncio.Task[Any]
    waiters: int = 0


class SingleFlight:
    """Runs at most one ``work()`` per key and event loop at a time; every concurrent caller gets its outcome.

    The outcome is shared as it is: the same result object, or the same exception, for every caller.
    """

    def __init__(self) -> None:
        # Keyed by loop too: a task belongs to one loop, and a service may outlive a loop (tests, threads).
        self._flights: dict[tuple[asyncio.AbstractEventLoop, str], _Flight] = {}

    def in_flight(self, key: str) -> bool:
        return (asyncio.get_running_loop(), key) in self._flights

    async def run(self, key: str, work: Callable[[], Awaitable[Any]]) -> tuple[Any, bool]:
        """``(result, joined)``: ``joined`` is true when this caller shared a computation another one started."""
        loop = asyncio.get_running_loop()
        slot = (loop, key)
        flight = self._flights.get(slot)
        joined = flight is not None
        if flight is None:
            flight = _Flight(loop.create_task(_as_coroutine(work), name=f"rediscache-single-flight:{key[:80]}"))
            self._flights[slot] = flight
            started = flight
            flight.task.add_done_callback(lambda task: self._finished(slot, started, task))
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task), joined
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                # Every caller gave up (cancelled): stop the work, and forget the flight now so a caller
                # arriving in the same loop turn starts afresh instead of joining a cancelled task.
                if self._flights.get(slot) is flight:
                    del self._flights[slot]
                flight.task.cancel()

    def _finished(self, slot: tuple[asyncio.AbstractEventLoop, str], flight: _Flight, task: asyncio.Task[Any]) -> None:
        if self._flights.get(slot) is flight:
            del self._flights[slot]
        if not task.cancelled():
            # Mark the exception as retrieved: with no waiter left, asyncio would log it as never retrieved.
            task.exception()


async def _as_coroutine(work: Callable[[], Awaitable[Any]]) -> Any:
    return await work()
