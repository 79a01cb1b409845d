"""``compose.cache(...)``: build a ``CacheKit`` from plain settings (what a config file holds).

::

    from rediscache import compose

    kit = compose.cache(backend="redis", redis_url="redis://localhost:6379/0", default_ttl_seconds=600)
    async with kit:
        await kit.service.set("greeting", "hello")

Backends: ``"memory"`` (the default: in-process, nothing to run), ``"redis"`` (``RedisCacheAdapter``,
shared by every process using the same server and ``key_prefix``) and ``"hybrid"``
(``HybridCacheAdapter``: an in-process L1 of ``max_memory_items`` entries in front of Redis).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel

from rediscache._port import CacheAdapter, SupportsCodec, SupportsServerName
from rediscache.adapters.memory import MemoryCacheAdapter
from rediscache.adapters.redis import RedisCacheAdapter
from rediscache.kit.breaker import CircuitBreaker
from rediscache.kit.cachekit import CacheKit
from rediscache.kit.options import EntryOptions
from rediscache.kit.service import CacheService
from rediscache.redis.options import ConnectionOptions
from rediscache.serialization import MsgpackCodec

__all__ = ["CacheKit", "cache"]

Backend = Literal["memory", "redis", "hybrid"]


def _seconds(what: str, value: float | None, *, allow_none: bool = True) -> timedelta | None:
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{what} must be a positive number of seconds")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value > 0 and math.isfinite(value)):
        raise ValueError(
            f"{what} must be a positive number of seconds{' or None' if allow_none else ''}, got {value!r}"
        )
    return timedelta(seconds=value)


def cache(
    backend: Backend = "memory",
    redis_url: str | None = None,
    default_ttl_seconds: float | None = 3600,
    default_namespace: str | None = None,
    max_memory_items: int = 1000,
    key_prefix: str = "rediscache",
    *,
    cleanup_interval_seconds: float | None = 60.0,
    fail_open: bool = True,
    stampede_lock: bool | None = None,
    lock_ttl_seconds: float = 30.0,
    lock_wait_seconds: float = 10.0,
    breaker_failure_threshold: int | None = 5,
    breaker_reset_seconds: float = 5.0,
    fail_safe_max_age_seconds: float | None = None,
    default_options: EntryOptions | None = None,
    models: Sequence[type[BaseModel]] = (),
    options: ConnectionOptions | None = None,
    coherence_timeout_seconds: float = 5.0,
    **adapter_options: Any,
) -> CacheKit:
    """A ``CacheKit`` (``.service``, ``.adapter``) for ``backend``; use it as ``async with kit:``.

    Args:
        backend: ``"memory"``, ``"redis"`` or ``"hybrid"``.
        redis_url: required for ``"redis"`` and ``"hybrid"`` (no silent ``localhost``: with fail-open,
            a cache pointed at nothing would only show up as warnings). Ignored by ``"memory"``, so one
            configuration can switch backends.
        default_ttl_seconds: TTL of writes that give none; ``None``: they never expire.
        default_namespace: namespace of keys that give none.
        max_memory_items: entries kept in process (the memory cache, or the hybrid's L1); not used by ``"redis"``.
        key_prefix: every Redis key of this cache starts with it (``"redis"``/``"hybrid"``).
        cleanup_interval_seconds: period of the kit's background ``cleanup_expired``; ``None``: none.
        fail_open: fail open on backend errors (see :class:`CacheService`).
        stampede_lock: the lock across processes in ``get_or_set`` (see :class:`CacheService`).
        lock_ttl_seconds: the stampede lock's lifetime.
        lock_wait_seconds: how long others wait for the stampede lock.
        breaker_failure_threshold: consecutive connection failures that open the circuit; ``None``: no breaker.
        breaker_reset_seconds: how long the circuit stays open before one probe call.
        fail_safe_max_age_seconds: ``"hybrid"`` only: serve an L1 copy up to this old while Redis is down.
        default_options: the service's :class:`EntryOptions` (fail-safe, factory timeouts, eager
            refresh, jitter, cache timeout, ``cache_none``).
        models: pydantic model classes to register with the codec (``"redis"``/``"hybrid"``; the
            memory backend stores objects as they are and needs none).
        options: ``ConnectionOptions`` of the Redis connections (``"redis"``/``"hybrid"``); flat
            keywords such as ``socket_timeout=`` in ``adapter_options`` override its fields.
        coherence_timeout_seconds: ``"hybrid"``: how long ``async with kit`` waits, at most, for the
            L1 invalidation channel before serving (then L1 is used once it is up).
        adapter_options: passed to the adapter's constructor (``cluster=True``, ``serializer=``,
            ``socket_timeout=``, ``l1_ttl=`` for the hybrid, ...).
    """
    # Every setting is checked before the adapter exists, so a bad one leaves no client behind.
    ttl = _seconds("default_ttl_seconds", default_ttl_seconds)
    lock_ttl = _seconds("lock_ttl_seconds", lock_ttl_seconds, allow_none=False)
    lock_wait = _seconds("lock_wait_seconds", lock_wait_seconds, allow_none=False)
    reset = _seconds("breaker_reset_seconds", breaker_reset_seconds, allow_none=False)
    cleanup = _seconds("cleanup_interval_seconds", cleanup_interval_seconds)
    fail_safe = _seconds("fail_safe_max_age_seconds", fail_safe_max_age_seconds)
    assert lock_ttl is not None and lock_wait is not None and reset is not None
    if fail_safe is not None and backend != "hybrid":
        raise ValueError("fail_safe_max_age_seconds needs backend='hybrid' (only it keeps a copy in process)")
    if options is not None and not isinstance(options, ConnectionOptions):
        raise TypeError(f"options must be ConnectionOptions, not {type(options).__name__}")
    for model in models:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"models must be pydantic model classes, not {model!r}")
    coherence = _seconds("coherence_timeout_seconds", coherence_timeout_seconds, allow_none=False)
    assert coherence is not None
    if breaker_failure_threshold is not None and (
        isinstance(breaker_failure_threshold, bool)
        or not isinstance(breaker_failure_threshold, int)
        or breaker_failure_threshold < 1
    ):
        raise ValueError(f"breaker_failure_threshold must be an int >= 1 or None, got {breaker_failure_threshold!r}")

    if options is not None and backend in ("redis", "hybrid"):
        adapter_options = {"options": options, **adapter_options}
    adapter = _adapter(backend, redis_url, max_memory_items, key_prefix, adapter_options)
    codec = adapter.codec if isinstance(adapter, SupportsCodec) else None
    if isinstance(codec, MsgpackCodec):  # pickle stores models without registration; memory stores objects
        for model in models:
            codec.register_model(model)
    breaker: CircuitBreaker | bool = False
    if breaker_failure_threshold is not None:
        name = adapter.server if isinstance(adapter, SupportsServerName) else backend
        breaker = CircuitBreaker(breaker_failure_threshold, reset, name=name)
    service = CacheService(
        adapter,
        default_ttl=ttl,
        default_namespace=default_namespace,
        default_options=default_options,
        fail_open=fail_open,
        stampede_lock=stampede_lock,
        lock_ttl=lock_ttl,
        lock_wait=lock_wait,
        circuit_breaker=breaker,
        fail_safe_max_age=fail_safe,
    )
    return CacheKit(adapter, service, cleanup_interval=cleanup, coherence_timeout=coherence)


def _adapter(
    backend: str, redis_url: str | None, max_memory_items: int, key_prefix: str, options: dict[str, Any]
) -> CacheAdapter:
    if backend == "memory":
        return MemoryCacheAdapter(max_size=max_memory_items, **options)
    if backend not in ("redis", "hybrid"):
        raise ValueError(f"backend must be 'memory', 'redis' or 'hybrid', not {backend!r}")
    if not redis_url:
        raise ValueError(f"backend={backend!r} needs redis_url (for example 'redis://localhost:6379/0')")
    if backend == "redis":
        return RedisCacheAdapter(redis_url, key_prefix=key_prefix, **options)
    # Imported on demand: the hybrid adapter is optional to this module, and costs nothing unless chosen.
    hybrid = importlib.import_module("rediscache.adapters.hybrid")
    adapter: CacheAdapter = hybrid.HybridCacheAdapter(
        redis_url=redis_url, key_prefix=key_prefix, l1_max_size=max_memory_items, **options
    )
    return adapter
