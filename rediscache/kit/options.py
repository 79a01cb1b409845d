"""``EntryOptions``: how one entry is kept fresh and what happens when things go wrong.

Set per service (``CacheService(default_options=...)``) and per call (``get_or_set(..., options=...)``,
``@cached(..., options=...)``); a call's options override the service's field by field: only the
fields a call sets explicitly replace the service's (``EntryOptions(fail_safe=True)`` leaves the
service's ``factory_soft_timeout`` in force). ``docs/kit/`` has a page per behaviour
(``docs/kit/entry-options.md`` lists them).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

__all__ = ["EntryOptions"]

_DURATIONS = (
    "ttl",
    "jitter",
    "fail_safe_max_duration",
    "fail_safe_throttle",
    "factory_soft_timeout",
    "factory_hard_timeout",
    "cache_timeout",
)


class EntryOptions(BaseModel):
    """Freshness and resilience settings of cache entries (frozen; durations are ``timedelta``).

    Attributes:
        ttl: lifetime of the entry (``None``: the service's ``default_ttl``).
        jitter: a random duration from 0 to this is added to each stored TTL, so that many instances
            caching the same keys at start-up do not expire them together.
        fail_safe: keep each entry for ``fail_safe_max_duration`` past its TTL (logically expired:
            invisible to ``get``, ``exists``, ``get_many`` and the stats' counts) and serve it when
            the factory raises or times out, instead of the error.
        fail_safe_max_duration: how long past its TTL an entry stays available to fail-safe (default 1 day).
        fail_safe_throttle: after a fail-safe activation the stale value is stored again for this long
            (default 30 s), so the factory is not retried before then, by any process.
        factory_soft_timeout: with a stale value at hand, the longest a caller waits for the factory;
            past it the caller gets the stale value and the factory finishes in the background,
            storing its result.
        factory_hard_timeout: the longest the factory may run at all; past it the factory is cancelled
            and the stale value served if there is one, else ``TimeoutError`` is raised.
        eager_refresh_threshold: a fraction of the TTL in (0, 1): a hit on an entry older than that
            returns at once and starts one background refresh (single flight in the process, a lock
            across processes).
        cache_timeout: the most one cache read or write may delay the caller; past it a read counts
            as a miss (or its stale value is used) and a write completes in the background.
        cache_none: whether a ``None`` result is stored (default ``True``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ttl: timedelta | None = None
    jitter: timedelta | None = None
    fail_safe: bool = False
    fail_safe_max_duration: timedelta = timedelta(days=1)
    fail_safe_throttle: timedelta = timedelta(seconds=30)
    factory_soft_timeout: timedelta | None = None
    factory_hard_timeout: timedelta | None = None
    eager_refresh_threshold: float | None = None
    cache_timeout: timedelta | None = None
    cache_none: bool = True

    @field_validator(*_DURATIONS, mode="before")
    @classmethod
    def _positive_duration(cls, value: Any, info: Any) -> Any:
        if value is None:
            return value
        if isinstance(value, bool) or not isinstance(value, (timedelta, int, float)):
            raise ValueError(f"{info.field_name} must be a timedelta (or seconds), got {type(value).__name__}")
        seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
        if not seconds > 0 or seconds == float("inf"):
            raise ValueError(f"{info.field_name} must be positive, got {value!r}")
        return value if isinstance(value, timedelta) else timedelta(seconds=seconds)

    @field_validator("eager_refresh_threshold")
    @classmethod
    def _fraction(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value < 1:
            raise ValueError(f"eager_refresh_threshold must be a fraction in (0, 1), got {value!r}")
        return value

    @field_validator("fail_safe", "cache_none", mode="before")
    @classmethod
    def _strict_bool(cls, value: Any, info: Any) -> Any:
        if not isinstance(value, bool):
            raise ValueError(f"{info.field_name} must be a bool, got {type(value).__name__}")
        return value

    def merged(self, override: EntryOptions | None) -> EntryOptions:
        """These options with every field ``override`` set explicitly taken from it."""
        if override is None:
            return self
        if not isinstance(override, EntryOptions):
            raise TypeError(f"options must be EntryOptions, not {type(override).__name__}")
        if not override.model_fields_set:
            return self
        changes = {name: getattr(override, name) for name in override.model_fields_set}
        fields = {name: getattr(self, name) for name in self.model_fields_set}
        fields.update(changes)
        return EntryOptions(**fields)
