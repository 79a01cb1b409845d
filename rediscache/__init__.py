"""rediscache: an async cache that stays correct on a shared Redis or Redis Cluster.

The port (``CacheKey``, ``CacheEntry``, ``CacheStats``, ``CacheAdapter`` and the errors) knows
nothing of Redis; the adapters implement it: ``MemoryCacheAdapter`` in process,
``RedisCacheAdapter`` natively on Redis with one atomic Lua script per operation, and
``HybridCacheAdapter``, an L1 per process kept coherent over Redis. The kit (``CacheService``,
``cached``, ``compose.cache``/``CacheKit``) is what application code uses.
"""

from rediscache._exceptions import CacheConnectionError, CacheError, CacheReplicationError, SerializationError
from rediscache._models import CacheEntry, CacheKey, CacheStats
from rediscache._port import CacheAdapter
from rediscache.adapters.hybrid import HybridCacheAdapter
from rediscache.adapters.memory import MemoryCacheAdapter
from rediscache.adapters.redis import RedisCacheAdapter
from rediscache.kit import CacheKit, CacheService, CircuitBreaker, EntryOptions, ServiceHealth, cached, compose
from rediscache.redis.options import ConnectionOptions
from rediscache.serialization import Codec, MsgpackCodec, SignedPickleCodec

__all__ = [
    "CacheAdapter",
    "CacheConnectionError",
    "CacheEntry",
    "CacheError",
    "CacheReplicationError",
    "CacheKit",
    "CacheService",
    "CircuitBreaker",
    "CacheKey",
    "CacheStats",
    "Codec",
    "ConnectionOptions",
    "EntryOptions",
    "HybridCacheAdapter",
    "MemoryCacheAdapter",
    "MsgpackCodec",
    "RedisCacheAdapter",
    "SerializationError",
    "ServiceHealth",
    "SignedPickleCodec",
    "cached",
    "compose",
]

__version__ = "0.1.0"
