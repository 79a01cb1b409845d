"""The libraries under test, each set up the way its documentation says, on its own prefix or database.

=================  ========  ==========================================================================
library            where     how
=================  ========  ==========================================================================
raw redis-py       db 0      two clients, both shown: ``redis.asyncio.Redis`` on a ``BlockingConnectionPool``
                             of 50 (rediscache's default pool; the baseline of every row), and
                             ``Redis.from_url(url, max_connections=50)``, redis-py's default (non-blocking)
                             pool, as ``RedisCluster`` keeps per node; keys ``bench-raw:*``; values
                             ``msgpack.packb`` / ``unpackb``
rediscache         db 0      ``RedisCacheAdapter(url, key_prefix="bench-rc")`` with its defaults
cashews            db 1      ``Cache().setup("redis://host:port/1", max_connections=50)``, keys
                             ``bench-cs:*``, its default (pickle) serializer, tags registered with
                             ``register_tag`` as its README shows
aiocache           db 2      ``Cache(Cache.REDIS, endpoint=..., port=..., db=2, namespace="bench-ac",
                             serializer=MsgPackSerializer(), pool_max_size=50)``
=================  ========  ==========================================================================

Every client uses hiredis (redis-py picks it up when it is installed) and may open up to 50
connections, so at 32 concurrent coroutines no library waits for a connection.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from typing import Any

import msgpack  # type: ignore[import-untyped]
from aiocache import Cache as AioCache  # type: ignore[import-untyped]
from aiocache.serializers import MsgPackSerializer  # type: ignore[import-untyped]
from cashews import Cache as CashewsCache
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster

from bench.servers import BenchCluster, BenchServer
from rediscache import RedisCacheAdapter

__all__ = [
    "POOL_SIZE",
    "ClusterClients",
    "StandaloneClients",
    "hybrid_adapter_class",
    "library_versions",
    "open_cluster_clients",
    "open_standalone_clients",
]

POOL_SIZE = 50  # rediscache's default max_connections; every library gets the same

RAW_PREFIX = "bench-raw:"
RC_PREFIX = "bench-rc"
CS_PREFIX = "bench-cs:"
AC_NAMESPACE = "bench-ac"
CASHEWS_DB = 1
AIOCACHE_DB = 2


class FixedMsgPackSerializer(MsgPackSerializer):  # type: ignore[misc]
    """aiocache 0.12's ``MsgPackSerializer`` with the upstream fix for aio-libs/aiocache#834.

    0.12.3 declares ``utf-8`` as the encoding of msgpack payloads, so its Redis backend
    ``.decode()``s the packed bytes and every ``get`` of a dict raises ``UnicodeDecodeError``. The fix
    merged upstream (aio-libs/aiocache#1079) sets ``DEFAULT_ENCODING = None`` and unpacks with
    ``raw=False``; this is exactly that, nothing more.
    """

    DEFAULT_ENCODING = None

    def loads(self, value: bytes | None) -> Any:
        if value is None:
            return None
        return msgpack.loads(value, raw=False, use_list=self.use_list)


@dataclass
class StandaloneClients:
    raw: Redis  # on a BlockingConnectionPool of 50: the baseline
    raw_default: Redis  # redis-py's default ConnectionPool, max_connections=50
    rc: RedisCacheAdapter
    cashews: CashewsCache
    aiocache: Any  # aiocache ships no type information

    async def close(self) -> None:
        await self.rc.close()
        await self.cashews.close()
        await self.aiocache.close()
        await self.raw.aclose()
        await self.raw_default.aclose()


@dataclass
class ClusterClients:
    raw: RedisCluster
    rc: RedisCacheAdapter

    async def close(self) -> None:
        await self.rc.close()
        await self.raw.aclose()


def raw_client(url: str) -> Redis:
    """Raw redis-py on a ``BlockingConnectionPool`` of 50: the pool rediscache uses by default."""
    return Redis(connection_pool=BlockingConnectionPool.from_url(url, max_connections=POOL_SIZE))


def raw_default_client(url: str) -> Redis:
    """Raw redis-py as its README makes it: redis-py's default ``ConnectionPool`` (it raises instead of
    waiting when all 50 connections are taken), the pool type ``RedisCluster`` keeps per node."""
    return Redis.from_url(url, max_connections=POOL_SIZE)


async def open_standalone_clients(server: BenchServer) -> StandaloneClients:
    cashews = CashewsCache()
    cashews.setup(server.url_db(CASHEWS_DB), max_connections=POOL_SIZE)
    aiocache = AioCache(
        AioCache.REDIS,
        endpoint=server.host,
        port=server.port,
        db=AIOCACHE_DB,
        namespace=AC_NAMESPACE,
        serializer=FixedMsgPackSerializer(),
        pool_max_size=POOL_SIZE,
    )
    clients = StandaloneClients(
        raw=raw_client(server.url),
        raw_default=raw_default_client(server.url),
        rc=RedisCacheAdapter(server.url, key_prefix=RC_PREFIX),
        cashews=cashews,
        aiocache=aiocache,
    )
    await cashews.init()
    return clients


async def open_cluster_clients(cluster: BenchCluster) -> ClusterClients:
    raw = RedisCluster.from_url(cluster.url, max_connections=POOL_SIZE)
    await raw.initialize()
    return ClusterClients(raw=raw, rc=RedisCacheAdapter(cluster.url, cluster=True, key_prefix=RC_PREFIX))


def hybrid_adapter_class() -> type[Any] | None:
    """``rediscache.HybridCacheAdapter`` once it exists (the L1 rows are added only then)."""
    module = importlib.import_module("rediscache")
    cls = getattr(module, "HybridCacheAdapter", None)
    return cls if isinstance(cls, type) else None


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    # The package's own version is its import's (the distribution is rediscache-native).
    versions["rediscache"] = getattr(importlib.import_module("rediscache"), "__version__", None)
    for dist in ("redis", "hiredis", "msgpack", "pydantic", "cashews", "aiocache", "matplotlib"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return versions
