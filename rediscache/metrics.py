"""OpenTelemetry metrics of the cache, on the meter ``rediscache`` (optional extra ``rediscache[otel]``).

The instruments (CONTRACT.md "Operations"), each with the attribute ``rediscache.prefix``:

- ``rediscache.hits``, ``rediscache.misses``: reads of the shared cache (L2) by this process that
  found / did not find an entry. Observable counters, read from the access accounting the adapter
  keeps anyway (``rediscache/redis/accounting.py``), so a read costs nothing more for them.
- ``rediscache.l1.hits``: reads a hybrid adapter served from its in-process L1 (apart from the
  shared figures: an L1 hit never reaches Redis). Observable too.
- ``rediscache.writes``: entries written (``set``: 1, ``set_many``: one per item).
- ``rediscache.invalidated``: entries removed by ``delete``, ``delete_many`` and ``delete_by_*``
  (``clear`` returns no count and adds none).
- ``rediscache.errors``: calls that raised ``CacheError``, with ``rediscache.operation``.
- ``rediscache.fail_safe.served``: stale copies served while the backend failed (the kit).
- ``rediscache.factory.calls``: factory calls of ``CacheService.get_or_set`` (the kit).
- ``rediscache.operation.duration`` (histogram, seconds): every adapter call, with
  ``rediscache.operation`` (``get``, ``get_many``, ``set``, ``delete_by_tags``, ...).

Cost. When ``opentelemetry-api`` is not installed, nothing is wrapped and nothing is recorded: the
adapters run exactly the code they run without this module. With the API, each adapter call is
timed by a thin wrapper (two clock reads and one histogram record); hits and misses are observed at
collection time only. Without an SDK ``MeterProvider`` the API's instruments are no-ops.
``configure(enabled=False)`` before building adapters turns the wrapping off altogether.

Which provider: the global one (``opentelemetry.metrics.set_meter_provider``), unless
:func:`configure` is given one (tests, or an application that keeps its provider to itself).
Adapters read the current instruments at every record, so ``configure`` applies to adapters that
already exist too.
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

from rediscache._exceptions import CacheError

try:
    from opentelemetry import metrics as _otel_metrics
except ImportError:  # the optional extra is absent: recording is off, at no cost
    _otel_metrics = None  # type: ignore[assignment]

__all__ = [
    "METER_NAME",
    "OPERATION",
    "PREFIX",
    "available",
    "configure",
    "instrument",
    "record_fail_safe_served",
    "record_factory_call",
    "register_source",
    "retire_source",
]

#: The meter every instrument is on.
METER_NAME = "rediscache"
#: The attribute naming the cache (its ``key_prefix``) on every instrument.
PREFIX = "rediscache.prefix"
#: The attribute naming the operation on ``rediscache.operation.duration`` and ``rediscache.errors``.
OPERATION = "rediscache.operation"

# The operations whose result is the count of entries they removed.
_INVALIDATED = ("delete", "delete_many", "delete_by_tags", "delete_by_namespace", "delete_by_pattern")

#: Adapter methods timed by :func:`instrument`, and the operation each is recorded as.
_OPERATIONS = {
    "get": "get",
    "get_with_payload": "get",
    "get_many": "get_many",
    "get_many_with_payloads": "get_many",
    "exists": "exists",
    "set": "set",
    "set_many": "set_many",
    "delete": "delete",
    "delete_many": "delete_many",
    "delete_by_tags": "delete_by_tags",
    "delete_by_namespace": "delete_by_namespace",
    "delete_by_pattern": "delete_by_pattern",
    "clear": "clear",
    "cleanup_expired": "cleanup_expired",
    "get_stats": "get_stats",
    "try_lock": "try_lock",
    "unlock": "unlock",
}


class Source:
    """Cumulative figures of one adapter (``hits``, ``misses``, ``l1_hits``), read at collection."""

    __slots__ = ("__weakref__", "prefix", "read")

    def __init__(self, prefix: str, read: Callable[[], dict[str, int]]) -> None:
        self.prefix = prefix
        self.read = read


class _Sources:
    """The live sources, and what closed ones counted (so a counter never goes down on a close)."""

    def __init__(self) -> None:
        self._live: weakref.WeakSet[Source] = weakref.WeakSet()
        self._retired: dict[tuple[str, str], int] = {}

    def add(self, source: Source) -> None:
        self._live.add(source)

    def retire(self, source: Source) -> None:
        if source in self._live:
            self._live.discard(source)
            for name, value in source.read().items():
                key = (source.prefix, name)
                self._retired[key] = self._retired.get(key, 0) + value

    def forget_retired(self) -> None:
        self._retired.clear()

    def totals(self, name: str) -> dict[str, int]:
        found: dict[str, int] = {prefix: value for (prefix, what), value in self._retired.items() if what == name}
        for source in list(self._live):
            try:
                value = source.read().get(name)
            except Exception:  # one broken source must not hide every other cache's figures
                continue
            if value is not None:
                found[source.prefix] = found.get(source.prefix, 0) + value
        return found


_sources = _Sources()


class _Instruments:
    def __init__(self, meter: Any) -> None:
        self.writes = meter.create_counter("rediscache.writes", unit="{entry}", description="Entries written")
        self.invalidated = meter.create_counter(
            "rediscache.invalidated", unit="{entry}", description="Entries removed by deletes and invalidations"
        )
        self.errors = meter.create_counter("rediscache.errors", unit="{call}", description="Calls that failed")
        self.fail_safe = meter.create_counter(
            "rediscache.fail_safe.served", unit="{read}", description="Stale copies served while the backend failed"
        )
        self.factory = meter.create_counter(
            "rediscache.factory.calls", unit="{call}", description="Factory calls of get_or_set"
        )
        self.duration = meter.create_histogram(
            "rediscache.operation.duration", unit="s", description="Duration of the adapter's calls"
        )
        for name, what, description in (
            ("rediscache.hits", "hits", "Reads of the shared cache that found an entry"),
            ("rediscache.misses", "misses", "Reads of the shared cache that found none"),
            ("rediscache.l1.hits", "l1_hits", "Reads served from a hybrid adapter's in-process L1"),
        ):
            meter.create_observable_counter(name, callbacks=[_observer(what)], unit="{read}", description=description)


def _observer(name: str) -> Callable[[Any], Iterable[Any]]:
    def observe(options: Any) -> Iterable[Any]:
        assert _otel_metrics is not None
        return [_otel_metrics.Observation(value, {PREFIX: prefix}) for prefix, value in _sources.totals(name).items()]

    return observe


_current: _Instruments | None = None
# Set while a timed call runs: a timed method that calls another (``get`` -> ``get_with_payload``)
# is recorded once, as the outer operation.
_timing: ContextVar[bool] = ContextVar("rediscache_metrics_timing", default=False)
_enabled = _otel_metrics is not None


def available() -> bool:
    """Whether metrics are recorded: the OpenTelemetry API is installed and not turned off."""
    return _enabled


def configure(meter_provider: Any = None, *, enabled: bool = True) -> None:
    """Record on ``meter_provider`` (``None``: the global provider of ``opentelemetry.metrics``).
    ``enabled=False`` stops recording, and adapters built afterwards are not wrapped at all.

    The observed counters (hits, misses, L1 hits) carry one series per prefix of the live adapters
    and of those closed since the last ``configure``; an SDK keeps at most 2,000 series per
    instrument (then folds the rest into an overflow series), far more than an application's caches."""
    global _current, _enabled
    _enabled = enabled and _otel_metrics is not None
    # A new provider starts new series: what closed adapters counted before is not carried over
    # (and a process that made many short-lived caches, a test suite, does not pile them up).
    _sources.forget_retired()
    if not _enabled:
        _current = None
        return
    assert _otel_metrics is not None
    meter = _otel_metrics.get_meter(METER_NAME) if meter_provider is None else meter_provider.get_meter(METER_NAME)
    _current = _Instruments(meter)


def _instruments() -> _Instruments | None:
    global _current
    if _current is None and _enabled:
        configure()
    return _current


def register_source(prefix: str, read: Callable[[], dict[str, int]]) -> Source:
    """Observe an adapter's cumulative ``hits``/``misses``/``l1_hits`` (``read()`` returns them);
    call :func:`retire_source` when it closes."""
    source = Source(prefix, read)
    if _enabled:
        _sources.add(source)
    return source


def retire_source(source: Source) -> None:
    """The adapter closed: keep what it counted in the totals, stop asking it."""
    _sources.retire(source)


def record_factory_call(prefix: str) -> None:
    """Count one factory call of ``get_or_set`` on the cache ``prefix``."""
    if _enabled:
        instruments = _instruments()
        if instruments is not None:
            instruments.factory.add(1, {PREFIX: prefix})


def record_fail_safe_served(prefix: str, count: int = 1) -> None:
    """Count stale copies served by fail-safe on the cache ``prefix``."""
    if _enabled:
        instruments = _instruments()
        if instruments is not None:
            instruments.fail_safe.add(count, {PREFIX: prefix})


def instrument(adapter: Any, prefix: str) -> None:
    """Time the adapter's calls and count its writes, invalidations and errors. Does nothing (the
    adapter keeps its own methods, untouched) when metrics are not available."""
    if not _enabled:
        return
    base = {PREFIX: prefix}
    for method, operation in _OPERATIONS.items():
        original = getattr(adapter, method, None)
        if original is not None:
            # An instance attribute shadows the method: the class itself is never changed.
            setattr(adapter, method, _timed(original, operation, base))


def _timed(method: Callable[..., Any], operation: str, base: dict[str, str]) -> Callable[..., Any]:
    attributes = {**base, OPERATION: operation}
    counts_writes = operation in ("set", "set_many")
    counts_removed = operation in _INVALIDATED
    many = operation == "set_many"
    clock = time.perf_counter

    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        instruments = _current if _current is not None else _instruments()
        if instruments is None or _timing.get():
            return await method(*args, **kwargs)
        if many:
            # Counted from the items, which may be an iterator: hand the method a list of them.
            items = list(args[0] if args else kwargs.pop("items"))
            args = (items, *args[1:])
        outer = _timing.set(True)
        started = clock()
        try:
            result = await method(*args, **kwargs)
        except CacheError:
            instruments.errors.add(1, attributes)
            raise
        finally:
            instruments.duration.record(clock() - started, attributes)
            _timing.reset(outer)
        if counts_writes:
            instruments.writes.add(len(items) if many else 1, base)
        elif counts_removed and result:
            instruments.invalidated.add(int(result), base)
        return result

    return call
