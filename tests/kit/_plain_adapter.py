"""A port-only adapter for kit tests: the port's methods of a wrapped adapter, no optional
capability (no locks, no stale reads), and optionally a delay on every read (a slow backend)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from rediscache import CacheAdapter, CacheEntry, CacheKey, CacheStats, MemoryCacheAdapter


class PlainAdapter(CacheAdapter):
    def __init__(self, inner: CacheAdapter | None = None, read_delay: float = 0.0) -> None:
        self.inner = inner if inner is not None else MemoryCacheAdapter()
        self.read_delay = read_delay

    async def _slow(self) -> None:
        if self.read_delay:
            await asyncio.sleep(self.read_delay)

    async def get(self, key: CacheKey) -> CacheEntry | None:
        await self._slow()
        return await self.inner.get(key)

    async def get_many(self, keys: Sequence[CacheKey]) -> list[CacheEntry | None]:
        await self._slow()
        return await self.inner.get_many(keys)

    async def exists(self, key: CacheKey) -> bool:
        await self._slow()
        return await self.inner.exists(key)

    async def set(self, key: CacheKey, value: Any, ttl: timedelta | None = None) -> None:
        await self.inner.set(key, value, ttl)

    async def delete(self, key: CacheKey) -> bool:
        return await self.inner.delete(key)

    async def delete_by_pattern(self, pattern: str) -> int:
        return await self.inner.delete_by_pattern(pattern)

    async def delete_by_namespace(self, namespace: str) -> int:
        return await self.inner.delete_by_namespace(namespace)

    async def delete_by_tags(self, tags: list[str]) -> int:
        return await self.inner.delete_by_tags(tags)

    async def clear(self) -> None:
        await self.inner.clear()

    async def cleanup_expired(self) -> int:
        return await self.inner.cleanup_expired()

    async def get_stats(self) -> CacheStats:
        return await self.inner.get_stats()
