"""``CacheService``: the cache API application code uses, on top of any ``CacheAdapter``.

What it adds to the port:

* **Plain keys.** Methods take a ``str`` key plus ``namespace``/``tags`` (or a ready ``CacheKey``), and
  apply the service's default TTL and namespace.
* **Cached ``None``.** ``get`` returns the value or ``None``, so it cannot tell a cached ``None`` from a
  miss; ``get_entry`` (the ``CacheEntry`` or ``None``) and ``exists`` can, and ``get_or_set`` never
  recomputes a cached ``None``. Values are stored as they are (no wrapper), so other users of the same
  adapter read them unchanged.
* **Stampede protection** in ``get_or_set``: concurrent callers of one cold key in this process share
  one factory call (single flight); across processes, a short lock in Redis (``try_lock``/``unlock`` of
  the adapter: ``SET NX PX`` with a random token, released by a compare-and-delete script) lets one
  instance compute while the others poll for the value. See :meth:`CacheService.get_or_set`.
* **Fail-open.** When the server cannot be reached, reads act as misses and writes and invalidations
  are logged and counted as failed (``health()``), instead of breaking the request; ``fail_open=False``
  raises instead. A :class:`~rediscache.kit.breaker.CircuitBreaker` stops calling a server that keeps
  failing, and with an adapter that keeps an in-process copy (``get_stale``, the hybrid adapter),
  ``fail_safe_max_age`` serves that copy while the server is down.

Errors that are the caller's bug are never swallowed: ``SerializationError`` (a value the codec cannot
encode), and ``ValueError``/``TypeError`` from bad keys, TTLs or arguments.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, TypeVar, cast, overload

from rediscache import metrics
from rediscache._exceptions import CacheConnectionError, CacheError, SerializationError
from rediscache._models import CacheEntry, CacheKey, CacheStats, validate_ttl
from rediscache._port import CacheAdapter
from rediscache.kit._singleflight import SingleFlight
from rediscache.kit.breaker import BreakerState, CircuitBreaker

__all__ = ["CacheService", "ServiceHealth"]

logger = logging.getLogger("rediscache.kit")

T = TypeVar("T")
R = TypeVar("R")

_TryLock = Callable[[str, str, timedelta], Awaitable[bool]]
_Unlock = Callable[[str, str], Awaitable[bool]]
_Kind = Literal["read", "write", "invalidation", "lock", "maintenance"]
_GLOB_SPECIAL = frozenset("*?[]\\")

# Polling for a value another instance is computing: start fast (most factories are quick), back off
# to a ceiling that bounds both the extra latency and the load the waiters put on Redis.
_POLL_FIRST = 0.02
_POLL_MAX = 0.2


class _Unavailable:
    """Marks a backend call that failed open (the server could not be used), as opposed to a real ``None``."""

    def __repr__(self) -> str:
        return "<unavailable>"


_UNAVAILABLE = _Unavailable()


@dataclass(frozen=True)
class ServiceHealth:
    """A snapshot of what this service instance saw of its backend (counters are per instance).

    ``failed_*`` count calls that failed (and so failed open, or raised with ``fail_open=False``);
    ``short_circuited`` counts calls not sent at all because the circuit was open.
    """

    breaker_state: BreakerState | Literal["disabled"]
    consecutive_failures: int
    times_opened: int
    failed_reads: int
    failed_writes: int
    failed_invalidations: int
    failed_locks: int
    failed_maintenance: int
    short_circuited: int
    stale_served: int
    factory_calls: int
    coalesced_calls: int
    lock_waits: int
    lock_wait_timeouts: int
    last_error: str | None

    @property
    def failed_operations(self) -> int:
        return (
            self.failed_reads
            + self.failed_writes
            + self.failed_invalidations
            + self.failed_locks
            + self.failed_maintenance
        )

    @property
    def healthy(self) -> bool:
        """The circuit is closed (or there is none) and no connection failure happened since the last success."""
        return self.breaker_state in ("closed", "disabled") and self.consecutive_failures == 0


class CacheService:
    """High-level cache operations with defaults, stampede protection and fail-open behaviour.

    Args:
        cache_adapter: any ``CacheAdapter``. The service does not close it (a ``CacheKit`` does).
        default_ttl: TTL of writes that pass ``ttl=None``; ``None`` means they never expire.
        default_namespace: namespace of ``str`` keys that pass ``namespace=None`` (and of patterns).
        fail_open: on a backend failure, act as a miss / log and count (default); ``False`` raises.
        stampede_lock: use the adapter's ``try_lock``/``unlock`` in ``get_or_set`` across processes.
            ``None`` (default): whenever the adapter has them (``RedisCacheAdapter`` does).
        lock_ttl: how long the lock lives; a holder that dies frees it after this. Longer than the
            slowest factory, or a second instance starts computing when it expires.
        lock_wait: how long a caller waits for another instance's value before computing itself.
        circuit_breaker: ``True`` (default): open after 5 consecutive connection failures, probe
            again after 5 s; ``False``: none; or a configured :class:`CircuitBreaker`.
        fail_safe_max_age: with an adapter that has ``get_stale(key, max_age)`` (the hybrid), serve
            its in-process copy, if younger than this, when the server cannot be read. ``None``: off.
    """

    def __init__(
        self,
        cache_adapter: CacheAdapter,
        default_ttl: timedelta | None = None,
        default_namespace: str | None = None,
        *,
        fail_open: bool = True,
        stampede_lock: bool | None = None,
        lock_ttl: timedelta = timedelta(seconds=30),
        lock_wait: timedelta = timedelta(seconds=10),
        circuit_breaker: CircuitBreaker | bool = True,
        fail_safe_max_age: timedelta | None = None,
    ) -> None:
        if not isinstance(cache_adapter, CacheAdapter):
            raise TypeError(f"cache_adapter must be a CacheAdapter, not {type(cache_adapter).__name__}")
        self._adapter = cache_adapter
        # The cache's name on the metrics (rediscache/metrics.py); adapters without a prefix have "".
        self._metrics_prefix = str(getattr(cache_adapter, "key_prefix", ""))
        self._default_ttl = validate_ttl(default_ttl)
        if default_namespace is not None:
            CacheKey(key="-", namespace=default_namespace)  # validates it now, not on the first call
        self._default_namespace = default_namespace
        self._fail_open = bool(fail_open)

        # Duck-typed: any adapter with these two methods can lock across processes.
        try_lock = getattr(cache_adapter, "try_lock", None)
        unlock = getattr(cache_adapter, "unlock", None)
        has_locks = callable(try_lock) and callable(unlock)
        self._lock_api = cast("tuple[_TryLock, _Unlock] | None", (try_lock, unlock) if has_locks else None)
        if stampede_lock and not has_locks:
            raise ValueError(f"{type(cache_adapter).__name__} has no try_lock/unlock: it cannot lock across processes")
        self._use_lock = has_locks if stampede_lock is None else bool(stampede_lock)
        if validate_ttl(lock_ttl) is None or validate_ttl(lock_wait) is None:
            raise ValueError("lock_ttl and lock_wait must be positive timedeltas")
        self._lock_ttl = lock_ttl
        self._lock_wait = lock_wait.total_seconds()

        name = str(getattr(cache_adapter, "server", type(cache_adapter).__name__))
        if circuit_breaker is True:
            self._breaker: CircuitBreaker | None = CircuitBreaker(name=name)
        elif circuit_breaker is False:
            self._breaker = None
        elif isinstance(circuit_breaker, CircuitBreaker):
            self._breaker = circuit_breaker
        else:
            raise TypeError("circuit_breaker must be a CircuitBreaker or a bool")

        self._fail_safe_max_age = validate_ttl(fail_safe_max_age)
        self._get_stale: Callable[[CacheKey, timedelta], Any] | None = None
        if self._fail_safe_max_age is not None:
            get_stale = getattr(cache_adapter, "get_stale", None)
            if not callable(get_stale):
                raise ValueError(
                    f"fail_safe_max_age needs an adapter with get_stale() (the hybrid adapter), "
                    f"not {type(cache_adapter).__name__}"
                )
            self._get_stale = get_stale

        self._flights = SingleFlight()
        self._counts: dict[str, int] = dict.fromkeys(
            (
                "failed_reads",
                "failed_writes",
                "failed_invalidations",
                "failed_locks",
                "failed_maintenance",
                "short_circuited",
                "stale_served",
                "factory_calls",
                "coalesced_calls",
                "lock_waits",
                "lock_wait_timeouts",
            ),
            0,
        )
        self._last_error: str | None = None

    # -- properties ----------------------------------------------------------------------------------

    @property
    def adapter(self) -> CacheAdapter:
        return self._adapter

    @property
    def default_ttl(self) -> timedelta | None:
        return self._default_ttl

    @property
    def default_namespace(self) -> str | None:
        return self._default_namespace

    @property
    def fail_open(self) -> bool:
        return self._fail_open

    @property
    def circuit_breaker(self) -> CircuitBreaker | None:
        return self._breaker

    @property
    def stampede_lock(self) -> bool:
        """Whether ``get_or_set`` coordinates with other processes through a lock in the backend."""
        return self._use_lock

    def health(self) -> ServiceHealth:
        """This instance's failure counters and circuit state. Never touches the backend."""
        breaker = self._breaker
        return ServiceHealth(
            breaker_state="disabled" if breaker is None else breaker.state,
            consecutive_failures=0 if breaker is None else breaker.consecutive_failures,
            times_opened=0 if breaker is None else breaker.times_opened,
            last_error=self._last_error,
            **self._counts,
        )

    # -- keys ----------------------------------------------------------------------------------------

    def make_key(
        self, key: str | CacheKey, namespace: str | None = None, tags: Sequence[str] | None = None
    ) -> CacheKey:
        """The ``CacheKey`` a call with these arguments uses (the default namespace applies to ``str`` keys)."""
        if isinstance(key, CacheKey):
            if namespace is not None or tags is not None:
                raise ValueError("pass namespace and tags inside the CacheKey, not beside it")
            return key
        return CacheKey(
            key=key,
            namespace=self._default_namespace if namespace is None else namespace,
            tags=list(tags) if tags is not None else [],
        )

    def _ttl(self, ttl: timedelta | None) -> timedelta | None:
        return self._default_ttl if ttl is None else validate_ttl(ttl)

    # -- reads ---------------------------------------------------------------------------------------

    async def get(self, key: str | CacheKey, namespace: str | None = None) -> Any:
        """The cached value, or ``None`` on a miss (or a cached ``None``: use ``get_entry`` to tell them apart)."""
        entry = await self.get_entry(key, namespace)
        return None if entry is None else entry.value

    async def get_entry(self, key: str | CacheKey, namespace: str | None = None) -> CacheEntry | None:
        """The live ``CacheEntry`` (``entry.value`` may be a cached ``None``), or ``None`` on a miss."""
        return await self._read_entry(self.make_key(key, namespace))

    async def exists(self, key: str | CacheKey, namespace: str | None = None) -> bool:
        """Whether a live entry exists (a cached ``None`` counts). ``False`` when the backend fails open."""
        ck = self.make_key(key, namespace)
        return bool(await self._backend("exists", "read", lambda: self._adapter.exists(ck), False))

    async def get_many(self, keys: Iterable[str], namespace: str | None = None) -> dict[str, Any]:
        """The hits among ``keys``, as ``{key: value}``: a missing key is a miss, a ``None`` value a cached ``None``."""
        names = list(dict.fromkeys(keys))
        cache_keys = [self.make_key(name, namespace) for name in names]
        if not cache_keys:
            return {}
        entries = await self._backend("get_many", "read", lambda: self._adapter.get_many(cache_keys), _UNAVAILABLE)
        if isinstance(entries, _Unavailable):
            return {}
        return {name: entry.value for name, entry in zip(names, entries, strict=True) if entry is not None}

    async def _read_entry(self, ck: CacheKey) -> CacheEntry | None:
        entry = await self._try_read(ck)
        return None if isinstance(entry, _Unavailable) else entry

    async def _try_read(self, ck: CacheKey) -> CacheEntry | _Unavailable | None:
        """The entry, ``None`` on a miss, or ``_UNAVAILABLE`` when the backend failed open and had no stale copy."""
        entry = await self._backend("get", "read", lambda: self._adapter.get(ck), _UNAVAILABLE)
        if isinstance(entry, _Unavailable) and self._get_stale is not None:
            stale = await self._stale(ck)
            if stale is not None:
                return stale
        return entry

    async def _stale(self, ck: CacheKey) -> CacheEntry | None:
        get_stale, max_age = self._get_stale, self._fail_safe_max_age
        assert get_stale is not None and max_age is not None  # only called when fail-safe is configured
        try:
            stale = get_stale(ck, max_age)
            if inspect.isawaitable(stale):
                stale = await stale
        except CacheError as exc:  # the copy is a best effort: never let it turn a miss into an error
            logger.warning("rediscache: reading the stale copy of %r failed: %s", ck.full_key, exc)
            return None
        if stale is None:
            return None
        self._counts["stale_served"] += 1
        metrics.record_fail_safe_served(self._metrics_prefix)
        return cast(CacheEntry, stale)

    # -- writes --------------------------------------------------------------------------------------

    async def set(
        self,
        key: str | CacheKey,
        value: Any,
        ttl: timedelta | None = None,
        namespace: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> bool:
        """Store ``value`` (``None`` included). ``True`` if written, ``False`` if the backend failed open."""
        ck = self.make_key(key, namespace, tags)
        effective = self._ttl(ttl)
        return await self._write(ck, value, effective)

    async def _write(self, ck: CacheKey, value: Any, ttl: timedelta | None) -> bool:
        async def call() -> bool:
            await self._adapter.set(ck, value, ttl)
            return True

        return bool(await self._backend("set", "write", call, False))

    async def set_many(
        self,
        items: Mapping[str, Any] | Iterable[tuple[str, Any]],
        ttl: timedelta | None = None,
        namespace: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> bool:
        """Store every ``key -> value`` with one TTL, namespace and tag list. ``False`` if the backend failed open."""
        pairs = items.items() if isinstance(items, Mapping) else items
        batch = [(self.make_key(name, namespace, tags), value) for name, value in pairs]
        effective = self._ttl(ttl)
        if not batch:
            return True

        async def call() -> bool:
            await self._adapter.set_many(batch, effective)
            return True

        return bool(await self._backend("set_many", "write", call, False))

    async def delete(self, key: str | CacheKey, namespace: str | None = None) -> bool:
        """Remove the entry; ``True`` only if a live entry was removed (``False`` too if the backend failed open)."""
        ck = self.make_key(key, namespace)
        return bool(await self._backend("delete", "write", lambda: self._adapter.delete(ck), False))

    # -- get_or_set ------------------------------------------------------------------------------------

    @overload
    async def get_or_set(
        self,
        key: str | CacheKey,
        factory: Callable[[], Awaitable[R]],
        ttl: timedelta | None = None,
        namespace: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> R: ...

    @overload
    async def get_or_set(
        self,
        key: str | CacheKey,
        factory: Callable[[], R],
        ttl: timedelta | None = None,
        namespace: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> R: ...

    async def get_or_set(
        self,
        key: str | CacheKey,
        factory: Callable[[], Any],
        ttl: timedelta | None = None,
        namespace: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> Any:
        """The cached value, or ``factory()`` (awaited if awaitable), stored with ``ttl``, ``namespace`` and ``tags``.

        A cached ``None`` is a hit. On a miss:

        1. Concurrent callers in this process share one computation (single flight): the factory runs
           once and its result, or its exception, reaches every one of them.
        2. With a lock-capable adapter, the computing caller first takes a lock in the backend
           (``lock_ttl``). If another instance holds it, this one polls (20 ms, backing off to 200 ms)
           until the value appears, or the lock is free (then it takes it), or ``lock_wait`` has passed
           (then it computes without the lock). The holder re-reads after locking, so a value stored
           in between is not computed twice.
        3. A factory that raises stores nothing and releases the lock; waiters in other processes then
           take the lock over and try once themselves (an exception cannot travel between processes).

        If the backend cannot be read, the factory runs and its result is returned without trying to
        store it (the store would most likely fail too), unless ``fail_open=False``.
        """
        ck = self.make_key(key, namespace, tags)
        effective = self._ttl(ttl)
        if not callable(factory):
            raise TypeError(f"factory must be a zero-argument callable, not {type(factory).__name__}")
        entry = await self._try_read(ck)
        if isinstance(entry, CacheEntry):
            return entry.value
        down = isinstance(entry, _Unavailable)
        result, joined = await self._flights.run(ck.full_key, lambda: self._load(ck, factory, effective, down))
        if joined:
            self._counts["coalesced_calls"] += 1
        return result

    async def get_or_set_async(
        self,
        key: str | CacheKey,
        value_factory: Callable[[], Any],
        ttl: timedelta | None = None,
        namespace: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> Any:
        """``get_or_set`` under the keyword names some callers use (``key=``, ``value_factory=``, ``ttl=``)."""
        return await self.get_or_set(key, value_factory, ttl=ttl, namespace=namespace, tags=tags)

    async def _load(self, ck: CacheKey, factory: Callable[[], Any], ttl: timedelta | None, down: bool) -> Any:
        """Compute and store one value: the body of a single flight."""
        if down:
            return await self._call_factory(factory)
        if not self._use_lock:
            value = await self._call_factory(factory)
            await self._write(ck, value, ttl)
            return value

        lock = "get_or_set:" + ck.full_key
        token = uuid.uuid4().hex
        taken = await self._try_lock(lock, token)
        if taken is None:  # the lock could not be asked for: compute alone rather than fail
            return await self._compute_and_store(ck, factory, ttl)
        if not taken:
            self._counts["lock_waits"] += 1
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._lock_wait
            delay = _POLL_FIRST
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    self._counts["lock_wait_timeouts"] += 1
                    logger.warning(
                        "rediscache: waited %.1f s for another instance to compute %r; computing it here",
                        self._lock_wait,
                        ck.full_key,
                    )
                    return await self._compute_and_store(ck, factory, ttl)
                await asyncio.sleep(min(delay, remaining))
                delay = min(delay * 2, _POLL_MAX)
                found = await self._poll(ck)
                if isinstance(found, _Unavailable):
                    return await self._call_factory(factory)
                if found is not None:
                    return found.value
                taken = await self._try_lock(lock, token)
                if taken is None:
                    return await self._compute_and_store(ck, factory, ttl)
                if taken:
                    break
        try:
            # Another instance may have stored the value between our miss and our lock.
            found = await self._poll(ck)
            if isinstance(found, CacheEntry):
                return found.value
            return await self._compute_and_store(ck, factory, ttl)
        finally:
            await self._unlock(lock, token)

    async def _poll(self, ck: CacheKey) -> CacheEntry | _Unavailable | None:
        """The entry if it exists now (``exists`` counts neither hit nor miss: waiting adds no misses to the stats)."""
        present = await self._backend("exists", "read", lambda: self._adapter.exists(ck), _UNAVAILABLE)
        if isinstance(present, _Unavailable):
            return _UNAVAILABLE
        if not present:
            return None
        return await self._try_read(ck)

    async def _compute_and_store(self, ck: CacheKey, factory: Callable[[], Any], ttl: timedelta | None) -> Any:
        value = await self._call_factory(factory)
        await self._write(ck, value, ttl)
        return value

    async def _call_factory(self, factory: Callable[[], Any]) -> Any:
        self._counts["factory_calls"] += 1
        metrics.record_factory_call(self._metrics_prefix)
        result = factory()
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _try_lock(self, name: str, token: str) -> bool | None:
        """``True``/``False`` from the backend, or ``None`` when the lock could not be asked for."""
        assert self._lock_api is not None  # only called when locking is on
        try_lock = self._lock_api[0]
        taken = await self._backend("try_lock", "lock", lambda: try_lock(name, token, self._lock_ttl), _UNAVAILABLE)
        return None if isinstance(taken, _Unavailable) else bool(taken)

    async def _unlock(self, name: str, token: str) -> None:
        assert self._lock_api is not None  # only called when locking is on
        unlock = self._lock_api[1]
        released = await self._backend("unlock", "lock", lambda: unlock(name, token), _UNAVAILABLE)
        if released is False:
            logger.warning(
                "rediscache: the lock %r expired before its holder finished (raise lock_ttl above the factory's time)",
                name,
            )

    # -- invalidation --------------------------------------------------------------------------------

    async def invalidate_tags(self, tags: Sequence[str]) -> int:
        """Remove every entry carrying any of ``tags``; how many were removed (0 if the backend failed open)."""
        if isinstance(tags, str):
            raise ValueError("tags must be a list of str, not a str (did you mean [tags]?)")
        tag_list = list(tags)
        return int(
            await self._backend("invalidate_tags", "invalidation", lambda: self._adapter.delete_by_tags(tag_list), 0)
        )

    async def invalidate_namespace(self, namespace: str | None = None) -> int:
        """Remove every entry of ``namespace`` (default: the service's default namespace)."""
        target = self._default_namespace if namespace is None else namespace
        if target is None:
            raise ValueError("invalidate_namespace needs a namespace (this service has no default namespace)")
        return int(
            await self._backend(
                "invalidate_namespace", "invalidation", lambda: self._adapter.delete_by_namespace(target), 0
            )
        )

    async def invalidate_pattern(self, pattern: str, namespace: str | None = None) -> int:
        """Remove entries whose key matches the Redis glob ``pattern``.

        With a namespace (this argument, else the service's default namespace), the pattern applies to
        the keys inside it: ``invalidate_pattern("user:*", namespace="t1")`` matches ``t1:user:*``, the
        namespace taken literally. Without one, it matches whole ``full_key``s.
        """
        if not isinstance(pattern, str) or not pattern:
            raise ValueError("pattern must be a non-empty str")
        target = self._default_namespace if namespace is None else namespace
        full = pattern if target is None else _escape_glob(target) + ":" + pattern
        return int(
            await self._backend("invalidate_pattern", "invalidation", lambda: self._adapter.delete_by_pattern(full), 0)
        )

    async def clear_all(self) -> bool:
        """Remove every entry of this cache (the hit and miss counters stay). ``False`` if the backend failed open."""

        async def call() -> bool:
            await self._adapter.clear()
            return True

        return bool(await self._backend("clear_all", "invalidation", call, False))

    # -- maintenance ---------------------------------------------------------------------------------

    async def cleanup_expired(self) -> int:
        """Drop expired entries from the bookkeeping; how many (0 if the backend failed open)."""
        return int(await self._backend("cleanup_expired", "maintenance", self._adapter.cleanup_expired, 0))

    async def get_stats(self) -> CacheStats:
        """The adapter's statistics. Raises ``CacheConnectionError`` when the backend is down: stats must not lie.

        This service's own counters (failures, circuit state) are in :meth:`health`.
        """
        return await self._adapter.get_stats()

    # -- the fail-open gate --------------------------------------------------------------------------

    async def _backend(self, op: str, kind: _Kind, call: Callable[[], Awaitable[T]], fallback: R) -> T | R:
        """Run one backend call through the circuit breaker; on a backend failure return ``fallback`` (fail-open)."""
        breaker = self._breaker
        if breaker is not None and not breaker.allow():
            self._counts["short_circuited"] += 1
            if not self._fail_open:
                raise CacheConnectionError(f"{op} skipped: the circuit to {breaker.name} is open (repeated failures)")
            return fallback
        try:
            result = await call()
        except SerializationError:
            # The caller's bug, not the server's: no verdict on the server, and never swallowed.
            if breaker is not None:
                breaker.release()
            raise
        except CacheConnectionError as exc:
            if breaker is not None:
                breaker.record_failure()
            self._failed(op, kind, exc)
            if not self._fail_open:
                raise
            return fallback
        except CacheError as exc:
            # The server answered (with an error): it is reachable, so this is no reason to open the circuit.
            if breaker is not None:
                breaker.record_success()
            self._failed(op, kind, exc)
            if not self._fail_open:
                raise
            return fallback
        except BaseException:
            if breaker is not None:
                breaker.release()
            raise
        if breaker is not None:
            breaker.record_success()
        return result

    def _failed(self, op: str, kind: _Kind, exc: CacheError) -> None:
        counter = {
            "read": "failed_reads",
            "write": "failed_writes",
            "invalidation": "failed_invalidations",
            "lock": "failed_locks",
            "maintenance": "failed_maintenance",
        }[kind]
        self._counts[counter] += 1
        self._last_error = f"{op}: {exc}"
        if kind == "invalidation":
            # A lost invalidation may leave stale entries behind until they expire: say so louder.
            logger.error("rediscache: %s failed, stale entries may remain until they expire: %s", op, exc)
        elif self._fail_open:
            logger.warning("rediscache: %s failed, continuing without the cache: %s", op, exc)


def _escape_glob(text: str) -> str:
    """``text`` as a literal in a Redis glob pattern."""
    return "".join("\\" + ch if ch in _GLOB_SPECIAL else ch for ch in text)
