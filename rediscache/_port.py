"""The cache port: the abstract ``CacheAdapter`` every backend implements. It knows nothing of Redis."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from rediscache._models import CacheEntry, CacheKey, CacheStats

if TYPE_CHECKING:
    from rediscache.serialization import Codec

__all__ = [
    "CacheAdapter",
    "SupportsCoherence",
    "SupportsCodec",
    "SupportsLocks",
    "SupportsServerName",
    "SupportsStaleReads",
]

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


# -- optional capabilities -----------------------------------------------------------------------------
#
# What some adapters can do beyond the port. The kit checks for them once, with ``isinstance``, when it
# is built (``runtime_checkable`` protocols check that the methods exist; their signatures are checked
# by mypy where the adapter is declared).


@runtime_checkable
class SupportsLocks(Protocol):
    """Short-lived locks shared by every process using the backend (stampede protection)."""

    async def try_lock(self, name: str, token: str, ttl: timedelta) -> bool:
        """Take ``name`` for ``ttl`` if nobody holds it; ``token`` proves ownership."""
        ...

    async def unlock(self, name: str, token: str) -> bool:
        """Release ``name`` if ``token`` still holds it; ``False`` if it expired or changed hands."""
        ...


@runtime_checkable
class SupportsStaleReads(Protocol):
    """Entries kept past their TTL for fail-safe, and a read that returns them.

    ``set(..., stale_ttl=d)`` keeps the entry stored for ``d`` after its TTL. Past its TTL the entry is
    logically expired: ``get``, ``exists``, ``get_many`` and the stats' counts do not see it, only
    ``get_stale`` does. Every invalidation that covers the entry (``delete``, ``delete_by_*``,
    ``clear``) removes it, stale copy included: a stale value is never served after an invalidation.
    """

    async def set(
        self, key: CacheKey, value: Any, ttl: timedelta | None = None, *, stale_ttl: timedelta | None = None
    ) -> None:
        """``CacheAdapter.set``, keeping the entry ``stale_ttl`` past its TTL for ``get_stale``."""
        ...

    async def get_stale(self, key: CacheKey, max_age: timedelta | None = None) -> CacheEntry | None:
        """The entry, live or logically expired (within its ``stale_ttl``), or ``None``.

        With ``max_age``, only an entry stored less than ``max_age`` ago. Counts neither a hit nor a
        miss and touches nothing.
        """
        ...


@runtime_checkable
class SupportsCoherence(Protocol):
    """Adapters with state in the process that must be synchronised before it is served (an L1)."""

    async def wait_until_coherent(self, timeout: float = 5.0) -> bool:
        """Wait (at most ``timeout`` seconds) until in-process copies can be trusted; whether they can."""
        ...


@runtime_checkable
class SupportsCodec(Protocol):
    """Adapters that encode values (so pydantic models must be registered with ``codec``)."""

    @property
    def codec(self) -> Codec:
        """The codec values are stored with."""
        ...


@runtime_checkable
class SupportsServerName(Protocol):
    """Adapters that talk to a server: its name, for logs and circuit breakers (password redacted)."""

    @property
    def server(self) -> str:
        """The server or cluster, as ``host:port`` or a URL without credentials."""
        ...
