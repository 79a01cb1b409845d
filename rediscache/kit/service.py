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
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar, overload

from rediscache import metrics
from rediscache._exceptions import CacheConnectionError, CacheError, SerializationError
from rediscache._models import CacheEntry, CacheKey, CacheStats, utc_now, validate_ttl
from rediscache._port import CacheAdapter, SupportsLocks, SupportsServerName, SupportsStaleReads
from rediscache.kit._singleflight import SingleFlight
from rediscache.kit.breaker import BreakerState, CircuitBreaker
from rediscache.kit.options import EntryOptions

__all__ = ["CacheService", "ServiceHealth"]

logger = logging.getLogger("rediscache.kit")

T = TypeVar("T")
R = TypeVar("R")

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
_NO_OPTIONS = EntryOptions()

#: ``ttl`` of ``get_or_set``'s internal form: a duration, or a function of the result giving one.
TtlOf = Callable[[Any], "timedelta | None"]


@dataclass(frozen=True)
class _Plan:
    """One ``get_or_set`` call, resolved: what to compute and how to store it."""

    key: CacheKey
    factory: Callable[[], Any]
    ttl: timedelta | None
    options: EntryOptions
    ttl_of: TtlOf | None = None
    condition: Callable[[Any], bool] | None = None


@dataclass(frozen=True)
class ServiceHealth:
    """A snapshot of what this service instance saw of its backend (counters are per instance).

    ``failed_*`` count calls that failed (and so failed open, or raised with ``fail_open=False``);
    ``short_circuited`` counts calls not sent at all because the circuit was open. ``stale_served``
    counts in-process copies served while the backend was down (``fail_safe_max_age``);
    ``fail_safe_served`` counts stale values served because the factory raised or timed out
    (fail-safe activations, ``EntryOptions.fail_safe``); ``factory_soft_timeouts`` answers given
    from the stale value while the factory went on in the background; ``factory_hard_timeouts``
    factories cancelled; ``background_refreshes`` eager refreshes started; ``cache_timeouts`` cache
    reads and writes that took longer than ``EntryOptions.cache_timeout``.
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
    fail_safe_served: int
    factory_errors: int
    factory_soft_timeouts: int
    factory_hard_timeouts: int
    background_refreshes: int
    cache_timeouts: int
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
        fail_safe_max_age: with an adapter that keeps an in-process copy (the hybrid adapter), serve
            that copy, if younger than this, when the server cannot be read. ``None``: off.
        default_options: the service's :class:`EntryOptions` (fail-safe, timeouts, eager refresh,
            jitter, ...); a call's ``options`` override them field by field. Their ``ttl``, if set,
            replaces ``default_ttl``.
    """

    def __init__(
        self,
        cache_adapter: CacheAdapter,
        default_ttl: timedelta | None = None,
        default_namespace: str | None = None,
        default_options: EntryOptions | None = None,
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
        if default_options is not None and not isinstance(default_options, EntryOptions):
            raise TypeError(f"default_options must be EntryOptions, not {type(default_options).__name__}")
        self._stale_reads: SupportsStaleReads | None = (
            cache_adapter if isinstance(cache_adapter, SupportsStaleReads) else None
        )
        self._default_options = self._checked_options(default_options or _NO_OPTIONS)

        # Optional capabilities, checked once here: the port's protocols, not attribute probes per call.
        self._locks: SupportsLocks | None = cache_adapter if isinstance(cache_adapter, SupportsLocks) else None
        if stampede_lock and self._locks is None:
            raise ValueError(f"{type(cache_adapter).__name__} has no try_lock/unlock: it cannot lock across processes")
        self._use_lock = self._locks is not None if stampede_lock is None else bool(stampede_lock)
        if validate_ttl(lock_ttl) is None or validate_ttl(lock_wait) is None:
            raise ValueError("lock_ttl and lock_wait must be positive timedeltas")
        self._lock_ttl = lock_ttl
        self._lock_wait = lock_wait.total_seconds()

        name = cache_adapter.server if isinstance(cache_adapter, SupportsServerName) else type(cache_adapter).__name__
        if circuit_breaker is True:
            self._breaker: CircuitBreaker | None = CircuitBreaker(name=name)
        elif circuit_breaker is False:
            self._breaker = None
        elif isinstance(circuit_breaker, CircuitBreaker):
            self._breaker = circuit_breaker
        else:
            raise TypeError("circuit_breaker must be a CircuitBreaker or a bool")

        self._fail_safe_max_age = validate_ttl(fail_safe_max_age)
        if self._fail_safe_max_age is not None and self._stale_reads is None:
            raise ValueError(
                f"fail_safe_max_age needs an adapter with stale reads (SupportsStaleReads), "
                f"not {type(cache_adapter).__name__}"
            )

        # Background work of get_or_set (eager refreshes, factories past their soft timeout), by
        # full_key: at most one per key, and strong references so the tasks are not collected.
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[Any]] = set()
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
                "fail_safe_served",
                "factory_errors",
                "factory_soft_timeouts",
                "factory_hard_timeouts",
                "background_refreshes",
                "cache_timeouts",
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
    def default_options(self) -> EntryOptions:
        """The service's entry options (what a call's ``options`` are merged onto)."""
        return self._default_options

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
        entry = await self._try_read(ck, None)
        return None if isinstance(entry, _Unavailable) else entry

    async def _try_read(self, ck: CacheKey, timeout: float | None) -> CacheEntry | _Unavailable | None:
        """The entry, ``None`` on a miss (a read past ``timeout`` seconds is one), or ``_UNAVAILABLE``
        when the backend failed open and had no stale copy."""
        entry: CacheEntry | _Unavailable | None = await self._gated(
            "get", "read", lambda: self._adapter.get(ck), _UNAVAILABLE, timeout, None
        )
        if isinstance(entry, _Unavailable) and self._fail_safe_max_age is not None:
            stale = await self._read_stale(ck, self._fail_safe_max_age, timeout)
            if stale is not None:
                self._counts["stale_served"] += 1
                metrics.record_fail_safe_served(self._metrics_prefix)
                return stale
        return entry

    async def _read_stale(self, ck: CacheKey, max_age: timedelta | None, timeout: float | None) -> CacheEntry | None:
        """The adapter's stale copy of ``ck`` (live or logically expired), or ``None``. A best effort:
        not sent through the circuit breaker (the hybrid's copy is in process and needs no server),
        and never turning a miss into an error."""
        stale_reads = self._stale_reads
        if stale_reads is None:
            return None
        try:
            if timeout is None:
                return await stale_reads.get_stale(ck, max_age)
            return await asyncio.wait_for(stale_reads.get_stale(ck, max_age), timeout)
        except asyncio.TimeoutError:
            self._counts["cache_timeouts"] += 1
            return None
        except CacheError as exc:
            logger.warning("rediscache: reading the stale copy of %r failed: %s", ck.full_key, exc)
            return None

    # -- options -------------------------------------------------------------------------------------

    def _checked_options(self, options: EntryOptions) -> EntryOptions:
        if options.fail_safe and self._stale_reads is None:
            raise ValueError(
                f"fail_safe needs an adapter that keeps stale entries (SupportsStaleReads), "
                f"not {type(self._adapter).__name__}"
            )
        return options

    def options_for(self, options: EntryOptions | None = None) -> EntryOptions:
        """The service's default options with ``options``'s explicitly set fields over them."""
        if options is None:
            return self._default_options
        return self._checked_options(self._default_options.merged(options))

    def resolve(
        self, ttl: timedelta | None = None, options: EntryOptions | None = None
    ) -> tuple[timedelta | None, EntryOptions]:
        """The TTL and options a call with these arguments uses: ``ttl``, else the options' ``ttl``,
        else ``default_ttl``; the service's options with ``options`` over them."""
        opts = self.options_for(options)
        return self._resolve_ttl(ttl, opts), opts

    def _resolve_ttl(self, ttl: timedelta | None, options: EntryOptions) -> timedelta | None:
        if ttl is not None:
            return validate_ttl(ttl)
        if options.ttl is not None:
            return validate_ttl(options.ttl)
        return self._default_ttl

    # -- writes --------------------------------------------------------------------------------------

    async def set(
        self,
        key: str | CacheKey,
        value: Any,
        ttl: timedelta | None = None,
        namespace: str | None = None,
        tags: Sequence[str] | None = None,
        *,
        options: EntryOptions | None = None,
    ) -> bool:
        """Store ``value`` (``None`` included). ``True`` if written, ``False`` if the backend failed open.

        The service's options apply (and ``options`` over them): ``jitter`` is added to the TTL, and with
        ``fail_safe`` the entry is kept ``fail_safe_max_duration`` past it. A write past ``cache_timeout``
        completes in the background (and this returns ``True``).
        """
        ck = self.make_key(key, namespace, tags)
        opts = self.options_for(options)
        return await self._store(ck, value, self._resolve_ttl(ttl, opts), opts)

    async def _store(self, ck: CacheKey, value: Any, ttl: timedelta | None, opts: EntryOptions) -> bool:
        """Write one entry with ``opts``'s jitter and fail-safe window, bounded by its cache timeout."""
        if ttl is not None and opts.jitter is not None:
            ttl += opts.jitter * random.random()
        stale_ttl = opts.fail_safe_max_duration if opts.fail_safe and ttl is not None else None
        stale_reads = self._stale_reads

        async def call() -> bool:
            if stale_ttl is not None and stale_reads is not None:
                await stale_reads.set(ck, value, ttl, stale_ttl=stale_ttl)
            else:
                await self._adapter.set(ck, value, ttl)
            return True

        return bool(await self._gated("set", "write", call, False, _seconds(opts.cache_timeout), True))

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
        effective = self._resolve_ttl(ttl, self._default_options)
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
        options: EntryOptions | None = None,
    ) -> R: ...

    @overload
    async def get_or_set(
        self,
        key: str | CacheKey,
        factory: Callable[[], R],
        ttl: timedelta | None = None,
        namespace: str | None = None,
        tags: Sequence[str] | None = None,
        options: EntryOptions | None = None,
    ) -> R: ...

    async def get_or_set(
        self,
        key: str | CacheKey,
        factory: Callable[[], Any],
        ttl: timedelta | None = None,
        namespace: str | None = None,
        tags: Sequence[str] | None = None,
        options: EntryOptions | None = None,
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

        ``options`` (over the service's ``default_options``) add fail-safe, factory timeouts, eager
        refresh, jitter, a cache timeout and ``cache_none``: see :class:`EntryOptions` and
        ``docs/kit/entry-options.md``. ``ttl``, when given, wins over ``options.ttl``.

        If the backend cannot be read, the factory runs and its result is returned without trying to
        store it (the store would most likely fail too), unless ``fail_open=False``.
        """
        ck = self.make_key(key, namespace, tags)
        opts = self.options_for(options)
        return await self.run_get_or_set(ck, factory, self._resolve_ttl(ttl, opts), opts)

    async def run_get_or_set(
        self,
        key: CacheKey,
        factory: Callable[[], Any],
        ttl: timedelta | None,
        options: EntryOptions,
        *,
        ttl_of: TtlOf | None = None,
        condition: Callable[[Any], bool] | None = None,
    ) -> Any:
        """``get_or_set`` with everything resolved (what ``@cached`` calls).

        ``ttl_of(result)``, when given, is the TTL of each computed result (instead of ``ttl``);
        ``condition(result)`` false means the result is returned but not stored.
        """
        if not callable(factory):
            raise TypeError(f"factory must be a zero-argument callable, not {type(factory).__name__}")
        plan = _Plan(key, factory, ttl, options, ttl_of, condition)
        timeout = _seconds(options.cache_timeout)
        entry = await self._try_read(key, timeout)
        if isinstance(entry, CacheEntry):
            if options.eager_refresh_threshold is not None:
                self._maybe_refresh(plan, entry)
            return entry.value
        down = isinstance(entry, _Unavailable)
        result, joined = await self._flights.run(key.full_key, lambda: self._load(plan, down))
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
        options: EntryOptions | None = None,
    ) -> Any:
        """``get_or_set`` under the keyword names some callers use (``key=``, ``value_factory=``, ``ttl=``)."""
        return await self.get_or_set(key, value_factory, ttl=ttl, namespace=namespace, tags=tags, options=options)

    async def _load(self, plan: _Plan, down: bool) -> Any:
        """Compute and store one value: the body of a single flight."""
        ck, opts = plan.key, plan.options
        if down:
            return await self._call_factory(plan.factory)
        timeout = _seconds(opts.cache_timeout)
        stale = await self._read_stale(ck, None, timeout) if opts.fail_safe else None
        refreshing = self._refreshing.get(ck.full_key)
        if refreshing is not None and stale is not None:
            # This process's factory for the key is already running in the background (past a soft
            # timeout): serve the stale value rather than start a second one.
            self._counts["fail_safe_served"] += 1
            metrics.record_fail_safe_served(self._metrics_prefix)
            return stale.value
        if not self._use_lock:
            return await self._compute(plan, stale, None)

        lock = "get_or_set:" + ck.full_key
        token = uuid.uuid4().hex
        taken = await self._try_lock(lock, token, timeout)
        if taken is None:  # the lock could not be asked for: compute alone rather than fail
            return await self._compute(plan, stale, None)
        if not taken:
            self._counts["lock_waits"] += 1
            loop = asyncio.get_running_loop()
            wait = self._lock_wait
            soft = _seconds(opts.factory_soft_timeout)
            if stale is not None and soft is not None:
                wait = min(wait, soft)  # another instance computes: the stale value after the soft timeout
            deadline = loop.time() + wait
            delay = _POLL_FIRST
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    if stale is not None and wait < self._lock_wait:
                        self._counts["factory_soft_timeouts"] += 1
                        self._counts["fail_safe_served"] += 1
                        metrics.record_fail_safe_served(self._metrics_prefix)
                        return stale.value
                    self._counts["lock_wait_timeouts"] += 1
                    logger.warning(
                        "rediscache: waited %.1f s for another instance to compute %r; computing it here",
                        self._lock_wait,
                        ck.full_key,
                    )
                    return await self._compute(plan, stale, None)
                await asyncio.sleep(min(delay, remaining))
                delay = min(delay * 2, _POLL_MAX)
                found = await self._poll(ck, timeout)
                if isinstance(found, _Unavailable):
                    return await self._call_factory(plan.factory)
                if found is not None:
                    return found.value
                taken = await self._try_lock(lock, token, timeout)
                if taken is None:
                    return await self._compute(plan, stale, None)
                if taken:
                    break
        try:
            # Another instance may have stored the value between our miss and our lock.
            found = await self._poll(ck, timeout)
            if isinstance(found, CacheEntry):
                await self._unlock(lock, token)
                return found.value
        except BaseException:
            await self._unlock(lock, token)
            raise
        # The lock goes with the computation: released when the factory is done, which may be in
        # the background (past a soft timeout), so that no other instance starts it meanwhile.
        return await self._compute(plan, stale, (lock, token))

    async def _poll(self, ck: CacheKey, timeout: float | None) -> CacheEntry | _Unavailable | None:
        """The entry if it exists now (``exists`` counts neither hit nor miss: waiting adds no misses to the stats)."""
        present = await self._gated("exists", "read", lambda: self._adapter.exists(ck), _UNAVAILABLE, timeout, False)
        if isinstance(present, _Unavailable):
            return _UNAVAILABLE
        if not present:
            return None
        return await self._try_read(ck, timeout)

    async def _compute(self, plan: _Plan, stale: CacheEntry | None, lock: tuple[str, str] | None) -> Any:
        """Run the factory under the plan's timeouts, store its result, and release ``lock`` when done.

        Fail-safe: with a stale value at hand, a factory that raises or passes its hard timeout gives
        way to the stale value (stored again for ``fail_safe_throttle``), and past the soft timeout the
        caller gets the stale value while the factory finishes in the background.
        """
        opts = plan.options
        soft = _seconds(opts.factory_soft_timeout) if stale is not None else None
        hard = _seconds(opts.factory_hard_timeout)
        loop = asyncio.get_running_loop()
        task: asyncio.Task[Any] = loop.create_task(self._call_factory(plan.factory))
        started = loop.time()
        first = hard if soft is None or (hard is not None and hard <= soft) else soft
        handed_over = False
        try:
            try:
                value = await asyncio.wait_for(asyncio.shield(task), first) if first is not None else await task
            except asyncio.TimeoutError:
                if stale is not None and first == soft:
                    # Soft timeout: the caller gets the stale value; the factory goes on, bounded by
                    # the hard timeout, and stores its result when it is done.
                    self._counts["factory_soft_timeouts"] += 1
                    self._counts["fail_safe_served"] += 1
                    metrics.record_fail_safe_served(self._metrics_prefix)
                    left = None if hard is None else max(0.0, hard - (loop.time() - started))
                    self._finish_later(plan, task, left, lock)
                    handed_over = True
                    return stale.value
                task.cancel()
                self._counts["factory_hard_timeouts"] += 1
                if stale is not None:
                    return await self._serve_stale(plan, stale, "took longer than its hard timeout")
                raise TimeoutError(
                    f"the factory of {plan.key.full_key!r} took longer than factory_hard_timeout ({hard:g} s)"
                ) from None
            except asyncio.CancelledError:
                task.cancel()
                raise
            except Exception as exc:
                self._counts["factory_errors"] += 1
                if stale is not None:
                    return await self._serve_stale(plan, stale, f"raised {type(exc).__name__}: {exc}")
                raise
            await self._store_result(plan, value)
            return value
        finally:
            if lock is not None and not handed_over:
                await self._unlock(*lock)

    async def _serve_stale(self, plan: _Plan, stale: CacheEntry, why: str) -> Any:
        """Fail-safe activation: the stale value, stored again for the throttle period (so neither this
        process nor another calls the failing factory again before it is over)."""
        opts = plan.options
        self._counts["fail_safe_served"] += 1
        metrics.record_fail_safe_served(self._metrics_prefix)
        logger.warning(
            "rediscache: the factory of %r %s; serving the stale value for %s",
            plan.key.full_key,
            why,
            opts.fail_safe_throttle,
        )
        throttle = opts.model_copy(update={"jitter": None})
        await self._store(plan.key, stale.value, opts.fail_safe_throttle, throttle)
        return stale.value

    async def _store_result(self, plan: _Plan, value: Any) -> None:
        if value is None and not plan.options.cache_none:
            return
        if plan.condition is not None and not plan.condition(value):
            return
        ttl = plan.ttl
        if plan.ttl_of is not None:
            ttl = validate_ttl(plan.ttl_of(value))
        await self._store(plan.key, value, ttl, plan.options)

    def _finish_later(
        self, plan: _Plan, task: asyncio.Task[Any], left: float | None, lock: tuple[str, str] | None
    ) -> None:
        """Let a factory past its soft timeout finish in the background and store its result."""

        async def finish() -> None:
            try:
                try:
                    value = await asyncio.wait_for(task, left) if left is not None else await task
                except asyncio.TimeoutError:
                    self._counts["factory_hard_timeouts"] += 1
                    logger.warning("rediscache: the factory of %r passed its hard timeout", plan.key.full_key)
                    return
                except Exception as exc:
                    self._counts["factory_errors"] += 1
                    logger.warning("rediscache: the background factory of %r raised %r", plan.key.full_key, exc)
                    return
                await self._store_result(plan, value)
            finally:
                if lock is not None:
                    await self._unlock(*lock)

        self._run_in_background(plan.key.full_key, finish())

    def _run_in_background(self, full_key: str, work: Awaitable[None]) -> None:
        task = asyncio.get_running_loop().create_task(_as_task(work), name=f"rediscache-refresh:{full_key[:80]}")
        self._refreshing[full_key] = task

        def done(finished: asyncio.Task[None]) -> None:
            if self._refreshing.get(full_key) is finished:
                del self._refreshing[full_key]
            if not finished.cancelled() and finished.exception() is not None:
                logger.error("rediscache: background work on %r failed", full_key, exc_info=finished.exception())

        task.add_done_callback(done)

    # -- eager refresh ---------------------------------------------------------------------------------

    def _maybe_refresh(self, plan: _Plan, entry: CacheEntry) -> None:
        """Start one background refresh if ``entry`` is past the refresh threshold of its lifetime."""
        threshold = plan.options.eager_refresh_threshold
        if threshold is None or entry.expires_at is None or plan.key.full_key in self._refreshing:
            return
        lifetime = entry.expires_at - entry.created_at
        if utc_now() - entry.created_at < lifetime * threshold:
            return
        self._counts["background_refreshes"] += 1
        self._run_in_background(plan.key.full_key, self._refresh(plan, entry.created_at))

    async def _refresh(self, plan: _Plan, seen: datetime) -> None:
        """Recompute an entry another caller just got, unless another instance does it or did it."""
        ck = plan.key
        timeout = _seconds(plan.options.cache_timeout)
        lock: tuple[str, str] | None = None
        if self._use_lock:
            name, token = "get_or_set:" + ck.full_key, uuid.uuid4().hex
            if not await self._try_lock(name, token, timeout):
                return  # another instance is computing it (or the lock is unreachable: skip this time)
            lock = (name, token)
        try:
            current = await self._current(ck, timeout)
            if current is not None and current.created_at != seen:
                return  # refreshed (or rewritten) since we read it: nothing to do
            try:
                await self._compute(plan, None, lock)
            except Exception as exc:  # the entry is still live: a failed refresh only logs
                logger.warning("rediscache: eager refresh of %r failed: %r", ck.full_key, exc)
            lock = None  # _compute released it
        finally:
            if lock is not None:
                await self._unlock(*lock)

    async def _current(self, ck: CacheKey, timeout: float | None) -> CacheEntry | None:
        """The entry now, without counting a hit (a stale read when the adapter has one)."""
        if self._stale_reads is not None:
            return await self._read_stale(ck, None, timeout)
        found = await self._try_read(ck, timeout)
        return found if isinstance(found, CacheEntry) else None

    async def _call_factory(self, factory: Callable[[], Any]) -> Any:
        self._counts["factory_calls"] += 1
        metrics.record_factory_call(self._metrics_prefix)
        result = factory()
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _try_lock(self, name: str, token: str, timeout: float | None = None) -> bool | None:
        """``True``/``False`` from the backend, or ``None`` when the lock could not be asked for."""
        locks = self._locks
        assert locks is not None  # only called when locking is on
        taken = await self._gated(
            "try_lock", "lock", lambda: locks.try_lock(name, token, self._lock_ttl), _UNAVAILABLE, timeout, None
        )
        return None if isinstance(taken, _Unavailable) or taken is None else bool(taken)

    async def _unlock(self, name: str, token: str) -> None:
        locks = self._locks
        assert locks is not None  # only called when locking is on
        released = await self._backend("unlock", "lock", lambda: locks.unlock(name, token), _UNAVAILABLE)
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

    async def _gated(
        self,
        op: str,
        kind: _Kind,
        call: Callable[[], Awaitable[T]],
        fallback: R,
        timeout: float | None,
        on_timeout: Any,
    ) -> Any:
        """``_backend``, giving up waiting after ``timeout`` seconds (``EntryOptions.cache_timeout``).

        A read (``on_timeout`` is its answer: a miss) is cancelled; a write (``on_timeout`` is
        ``True``) goes on in the background, through the same gate, and is counted as written.
        """
        if timeout is None:
            return await self._backend(op, kind, call, fallback)
        task = asyncio.get_running_loop().create_task(self._backend(op, kind, call, fallback))
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout)
        except asyncio.TimeoutError:
            self._counts["cache_timeouts"] += 1
            if on_timeout is True:
                self._background.add(task)
                task.add_done_callback(self._background_done)
            else:
                task.cancel()
            return on_timeout
        except asyncio.CancelledError:
            task.cancel()
            raise

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("rediscache: a background cache write failed", exc_info=task.exception())

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


def _seconds(duration: timedelta | None) -> float | None:
    return None if duration is None else duration.total_seconds()


async def _as_task(work: Awaitable[None]) -> None:
    await work


def _escape_glob(text: str) -> str:
    """``text`` as a literal in a Redis glob pattern."""
    return "".join("\\" + ch if ch in _GLOB_SPECIAL else ch for ch in text)
