"""The port's value objects: ``CacheKey``, ``CacheEntry``, ``CacheStats`` (frozen pydantic v2 models)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["CacheEntry", "CacheKey", "CacheStats", "make_entry", "utc_now", "validate_ttl"]

UTC = timezone.utc
_ONE_MS = timedelta(milliseconds=1)
# The latest expiry a TTL may reach: datetimes end with the year 9999, and every adapter reports
# expires_at as one (Redis's own limit, 2^63 ms, lies far beyond it).
_LATEST_EXPIRY = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)


def utc_now() -> datetime:
    return datetime.now(UTC)


def validate_ttl(ttl: timedelta | None) -> timedelta | None:
    """Check a TTL before anything is written: ``None`` or a positive ``timedelta``, at least 1 ms,
    whose expiry falls before the end of the year 9999."""
    if ttl is None:
        return None
    if not isinstance(ttl, timedelta):
        raise TypeError(f"ttl must be a datetime.timedelta or None, not {type(ttl).__name__}")
    if ttl <= timedelta(0):
        raise ValueError(f"ttl must be positive, got {ttl!r}")
    if ttl > _LATEST_EXPIRY - utc_now():
        raise ValueError(f"ttl {ttl!r} would expire after the year 9999, which cannot be represented")
    return ttl if ttl >= _ONE_MS else _ONE_MS


def _check_text(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{what} must not be empty")
    try:
        # Redis stores bytes: a lone surrogate has no UTF-8 form, so it could never round-trip.
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} must be encodable as UTF-8: {exc.reason} at {exc.start}") from None
    return value


class CacheKey(BaseModel):
    """A cache key with its namespace and tags. Two keys with the same ``full_key`` name one entry."""

    model_config = ConfigDict(frozen=True)

    key: str
    namespace: str | None = None
    tags: list[str] = Field(default_factory=list)

    @field_validator("key", mode="before")
    @classmethod
    def _key(cls, value: object) -> str:
        return _check_text("key", value)

    @field_validator("namespace", mode="before")
    @classmethod
    def _namespace(cls, value: object) -> str | None:
        return None if value is None else _check_text("namespace", value)

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: object) -> list[str]:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
            raise ValueError(f"tags must be a list of str, not {type(value).__name__}")
        return [_check_text("tag", tag) for tag in value]

    @property
    def full_key(self) -> str:
        return self.key if self.namespace is None else f"{self.namespace}:{self.key}"

    @classmethod
    def from_function_call(
        cls,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        namespace: str | None = None,
        tags: list[str] | None = None,
    ) -> CacheKey:
        """A key naming one call of ``func``: stable across processes and ``PYTHONHASHSEED``.

        Arguments are bound to the signature with defaults applied, so ``f(1, 2)`` and
        ``f(a=1, b=2)`` give one key. Arguments with no stable encoding raise ``TypeError``.
        """
        from rediscache._fingerprint import call_digest

        digest = call_digest(func, args, kwargs)
        return cls(
            key=f"{func.__module__}.{func.__qualname__}:{digest}",
            namespace=namespace,
            tags=list(tags or []),
        )


class CacheEntry(BaseModel):
    """A cached value with its timestamps and access count. Timestamps are timezone-aware UTC."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    key: CacheKey
    value: Any
    created_at: datetime = Field(default_factory=utc_now)
    expires_at: datetime | None = None
    hit_count: int = 0
    last_accessed: datetime = Field(default_factory=utc_now)

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and utc_now() > self.expires_at

    def touch(self) -> CacheEntry:
        """A copy with ``hit_count`` one higher and ``last_accessed`` now."""
        return self.model_copy(update={"hit_count": self.hit_count + 1, "last_accessed": utc_now()})


class CacheStats(BaseModel):
    """A point-in-time snapshot of a cache's figures. Adapters may add fields of their own."""

    model_config = ConfigDict(frozen=True, extra="allow")

    total_entries: int
    total_hits: int
    total_misses: int
    hit_rate: float
    memory_usage_bytes: int | None = None
    oldest_entry: datetime | None = None
    newest_entry: datetime | None = None


_new_object = object.__new__
_set_attribute = object.__setattr__
_ENTRY_FIELDS = frozenset(CacheEntry.model_fields)


def make_entry(
    key: CacheKey,
    value: Any,
    created_at: datetime,
    expires_at: datetime | None,
    hit_count: int,
    last_accessed: datetime,
) -> CacheEntry:
    """A ``CacheEntry`` from trusted parts, without validation: what ``model_construct`` builds, in a
    quarter of the time. Adapters build one per read, so this is on every cache hit."""
    entry = _new_object(CacheEntry)
    _set_attribute(
        entry,
        "__dict__",
        {
            "key": key,
            "value": value,
            "created_at": created_at,
            "expires_at": expires_at,
            "hit_count": hit_count,
            "last_accessed": last_accessed,
        },
    )
    _set_attribute(entry, "__pydantic_fields_set__", set(_ENTRY_FIELDS))
    _set_attribute(entry, "__pydantic_extra__", None)
    _set_attribute(entry, "__pydantic_private__", None)
    return entry
