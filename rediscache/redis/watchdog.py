"""Deadlines for commands in flight, kept by one periodic task instead of a timer per command.

A command registers its task and deadline (two dict operations); every ``period`` seconds the
watchdog cancels the tasks whose deadline passed, and the command turns that cancellation into a
``TimeoutError``. A per-command ``asyncio.timeout`` would arm and disarm a timer each time, which
costs more than the rest of a cache hit's bookkeeping. A deadline fires up to ``period`` late.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

__all__ = ["Watchdog"]


class Watchdog:
    def __init__(self, period: float) -> None:
        if period <= 0:
            raise ValueError("period must be positive")
        self._period = period
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self, timeout: float) -> asyncio.Task[Any]:
        """Watch the current task for ``timeout`` seconds; returns it (to pass to ``stop``)."""
        task = asyncio.current_task()
        assert task is not None, "commands run inside a task"
        self._deadlines[task] = time.monotonic() + timeout
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="rediscache-deadlines")
        return task

    def stop(self, task: asyncio.Task[Any]) -> None:
        self._deadlines.pop(task, None)

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """Whether the watchdog cancelled ``task``; if so, the cancellation is withdrawn."""
        if task not in self._expired:
            return False
        self._expired.discard(task)
        if sys.version_info >= (3, 11):
            task.uncancel()
        return True

    @property
    def watched(self) -> int:
        """Tasks with a deadline running."""
        return len(self._deadlines)

    async def _watch(self) -> None:
        while self._deadlines or self._expired:
            await asyncio.sleep(self._period)
            now = time.monotonic()
            for task, when in list(self._deadlines.items()):
                if when <= now:
                    del self._deadlines[task]
                    self._expired.add(task)
                    task.cancel()
            self._expired = {task for task in self._expired if not task.done()}

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
