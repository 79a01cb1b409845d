"""The kit: what application code uses on top of the cache port.

* :class:`CacheService`: ``get``/``set``/``get_or_set``/invalidations with defaults, stampede
  protection (single flight in process, a Redis lock across processes) and fail-open behaviour.
* :func:`cached`: a decorator caching an async function's or method's results.
* :class:`CacheKit` and :mod:`compose` (``compose.cache(...)``): an adapter plus its service, with a
  lifecycle (``async with``).
* :class:`EntryOptions`: fail-safe, factory timeouts, eager refresh, jitter, cache timeout, per
  service and per call.
* :class:`CircuitBreaker`, :class:`ServiceHealth`: the outage handling and its counters.
* ``rediscache.kit.fastapi``: FastAPI integration (needs the ``fastapi`` extra; imported only from there).
"""

from rediscache.kit import compose
from rediscache.kit.breaker import CircuitBreaker
from rediscache.kit.cachekit import CacheKit
from rediscache.kit.decorators import BoundCachedFunction, CachedFunction, cached
from rediscache.kit.options import EntryOptions
from rediscache.kit.service import CacheService, ServiceHealth

__all__ = [
    "BoundCachedFunction",
    "CacheKit",
    "CacheService",
    "CachedFunction",
    "CircuitBreaker",
    "EntryOptions",
    "ServiceHealth",
    "cached",
    "compose",
]
