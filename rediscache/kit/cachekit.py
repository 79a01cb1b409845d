"""``CacheKit``: an adapter and its ``CacheService``, with a lifecycle.

``async with kit:`` waits (bounded) until an adapter with in-process copies (the hybrid's L1) is
coherent, so the first requests already use L1; starts a background task that calls
``service.cleanup_expired()`` periodically (so indexes never keep members of expired entries for
long, even in a quiet cache); and on exit stops it and closes the adapter's connections.
``compose.cache(...)`` builds one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from types import TracebackType

from rediscache._port import CacheAdapter, SupportsCoherence
from rediscache.kit.service import CacheService

__all__ = ["CacheKit"]

logger = logging.getLogger("rediscache.kit")


class CacheKit:
    """The cache of an application: ``.adapter`` (the port) and ``.service`` (what application code uses).

    Args:
        adapter: the backend; the kit closes it on ``close()``.
        service: the service on that adapter (default: ``CacheService(adapter)``).
        cleanup_interval: period of the background ``cleanup_expired`` task; ``None``: no task.
        coherence_timeout: how long ``start()`` waits at most for an adapter with in-process copies
            (``SupportsCoherence``: the hybrid) to be coherent; past it the kit starts anyway (L1 is
            used once its channel is up) and logs a warning.
    """

    name = "cache"

    def __init__(
        self,
        adapter: CacheAdapter,
        service: CacheService | None = None,
        *,
        cleanup_interval: timedelta | None = timedelta(minutes=1),
        coherence_timeout: timedelta = timedelta(seconds=5),
    ) -> None:
        if service is not None and service.adapter is not adapter:
            raise ValueError("the service must wrap the kit's adapter")
        if cleanup_interval is not None and cleanup_interval <= timedelta(0):
            raise ValueError(f"cleanup_interval must be positive or None, got {cleanup_interval!r}")
        if coherence_timeout <= timedelta(0):
            raise ValueError(f"coherence_timeout must be positive, got {coherence_timeout!r}")
        self._coherence_timeout = coherence_timeout.total_seconds()
        self._adapter = adapter
        self._service = service if service is not None else CacheService(adapter)
        self._interval = cleanup_interval
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._cleanup_runs = 0
        self._cleanup_removed = 0

    @property
    def adapter(self) -> CacheAdapter:
        return self._adapter

    @property
    def service(self) -> CacheService:
        return self._service

    @property
    def cleanup_running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def cleanup_runs(self) -> int:
        """How many periodic cleanups have completed (for monitoring)."""
        return self._cleanup_runs

    @property
    def cleanup_removed(self) -> int:
        """Expired entries the periodic cleanups removed, in total."""
        return self._cleanup_removed

    async def start(self) -> None:
        """Wait for the adapter to be coherent (bounded), start the periodic cleanup. Idempotent."""
        if self._closed:
            raise RuntimeError("this CacheKit is closed")
        adapter = self._adapter
        if isinstance(adapter, SupportsCoherence) and not await adapter.wait_until_coherent(self._coherence_timeout):
            logger.warning(
                "rediscache: the cache was not coherent within %.1f s; serving without in-process copies until it is",
                self._coherence_timeout,
            )
        if self._interval is None or self.cleanup_running:
            return
        self._task = asyncio.get_running_loop().create_task(
            self._cleanup_loop(self._interval.total_seconds()), name="rediscache-kit-cleanup"
        )

    async def close(self) -> None:
        """Stop the cleanup task and close the adapter. Safe to call twice."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not self._closed:
            self._closed = True
            await self._adapter.close()

    async def _cleanup_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                removed = await self._service.cleanup_expired()
            except Exception:  # fail_open=False raises; the loop must survive an outage all the same
                logger.exception("rediscache: periodic cleanup_expired failed; retrying in %.0f s", interval)
            else:
                self._cleanup_runs += 1
                self._cleanup_removed += removed
                if removed:
                    logger.debug("rediscache: periodic cleanup removed %d expired entries", removed)

    async def __aenter__(self) -> CacheKit:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"CacheKit(adapter={type(self._adapter).__name__}, cleanup_running={self.cleanup_running})"
