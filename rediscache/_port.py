"""The cache port: the abstract ``CacheAdapter`` every backend implements. It knows nothing of Redis."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar

from rediscache._models import CacheEntry, CacheKey, CacheStats

__all__ = ["CacheAdapter"]

_A = TypeVar("_A", bound="CacheAdapter")


class CacheAdapter(ABC):
    """Storage for cache entries, with namespace, tag and pattern invalidation.

    The rules every adapter follows are in ``docs/contract.md`` and are checked by one shared
    conformance suite (``tests/conformance``).
    """

    @abstractmethod
    async def get(self, key: CacheKey) -> CacheEntry | None:
        """The live entry as touched by this read (``hit_count`` + 1), or ``None``. Counts a hit or a miss."""

    @abstractmethod
    async def exists(self, key: CacheKey) -> bool:
        """Whether a live entry exists. Counts neither a hit nor a miss."""

    @abstractmethod
    async def set(self, key: CacheKey, value: Any, ttl: timedelta | None = None) -> None:
        """Replace the whole entry of ``key.full_key``: value, TTL, namespace and tags."""

    @abstractmethod
    async def delete(self, key: CacheKey) -> bool:
        """Remove the entry; ``True`` only if a live entry was removed."""

    @abstractmethod
    async def delete_by_pattern(self, pattern: str) -> int:
        """Remove entries whose ``full_key`` matches the Redis glob ``pattern``; the number of live ones."""

    @abstractmethod
    async def delete_by_namespace(self, namespace: str) -> int:
        """Remove the entries whose namespace is exactly ``namespace``; the number of live ones."""

    @abstractmethod
    async def delete_by_tags(self, tags: list[str]) -> int:
        """Remove the entries carrying any of ``tags``; each counts once."""

    @abstractmethod
    async def clear(self) -> None:
        """Remove every entry of this cache and its bookkeeping (the hit and miss counters stay)."""

    @abstractmethod
    async def cleanup_expired(self) -> int:
        """Remove expired entries from the bookkeeping; how many were removed."""

    @abstractmethod
    async def get_stats(self) -> CacheStats:
        """A snapshot of the cache's figures."""

    # Batch operations. These defaults are correct for any adapter; network adapters
    # override them to save round trips.

    async def get_many(self, keys: Sequence[CacheKey]) -> list[CacheEntry | None]:
        """Entries for ``keys``, in the same order (``None`` for each miss)."""
        return [await self.get(key) for key in keys]

    async def set_many(self, items: Iterable[tuple[CacheKey, Any]], ttl: timedelta | None = None) -> None:
        """Set every ``(key, value)`` pair with one TTL."""
        for key, value in items:
            await self.set(key, value, ttl)

    async def delete_many(self, keys: Iterable[CacheKey]) -> int:
        """Delete every key; how many live entries were removed."""
        removed = 0
        for key in keys:
            removed += await self.delete(key)
        return removed

    async def close(self) -> None:  # noqa: B027 - a no-op is the right default for in-process adapters
        """Release connections and background tasks. Safe to call twice."""

    async def __aenter__(self: _A) -> _A:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
