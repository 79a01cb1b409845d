"""Deleting a test's keys with one client per server or cluster for the whole session.

Building a cluster client costs a ``CLUSTER SLOTS`` round and a connection per node; doing that per
test only to delete its keys cost the conformance run about a third of its time. The session's
clients are separate from every client a test uses, so nothing a test does to its own clients
(closing them, ``SELECT``, ``CLIENT REPLY OFF``) reaches them. A client that met a connection error
(a server restarted under it) is replaced once.
"""

from __future__ import annotations

import contextlib

import redis.asyncio
import redis.asyncio.cluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from support.redis_servers import delete_cluster_test_keys, delete_test_keys

_RECOVERABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class KeyCleaner:
    """``await delete_standalone(url, prefix)`` / ``await delete_cluster(url, prefix)``; ``aclose()`` at the end."""

    def __init__(self) -> None:
        self._standalone: dict[str, redis.asyncio.Redis] = {}
        self._clusters: dict[str, redis.asyncio.cluster.RedisCluster] = {}

    async def delete_standalone(self, url: str, key_prefix: str) -> int:
        """Delete the keys containing ``key_prefix`` from the server at ``url``; returns how many."""
        try:
            return await delete_test_keys(self._standalone_client(url), key_prefix)
        except _RECOVERABLE:
            await self._drop_standalone(url)
            return await delete_test_keys(self._standalone_client(url), key_prefix)

    async def delete_cluster(self, url: str, key_prefix: str) -> int:
        """Delete the keys containing ``key_prefix`` from every primary of the cluster at ``url``."""
        try:
            return await delete_cluster_test_keys(self._cluster_client(url), key_prefix)
        except _RECOVERABLE:
            await self._drop_cluster(url)
            return await delete_cluster_test_keys(self._cluster_client(url), key_prefix)

    async def aclose(self) -> None:
        for url in list(self._standalone):
            await self._drop_standalone(url)
        for url in list(self._clusters):
            await self._drop_cluster(url)

    def _standalone_client(self, url: str) -> redis.asyncio.Redis:
        if url not in self._standalone:
            self._standalone[url] = redis.asyncio.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        return self._standalone[url]

    def _cluster_client(self, url: str) -> redis.asyncio.cluster.RedisCluster:
        if url not in self._clusters:
            self._clusters[url] = redis.asyncio.RedisCluster.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        return self._clusters[url]

    async def _drop_standalone(self, url: str) -> None:
        client = self._standalone.pop(url, None)
        if client is not None:
            with contextlib.suppress(*_RECOVERABLE):
                await client.aclose()

    async def _drop_cluster(self, url: str) -> None:
        client = self._clusters.pop(url, None)
        if client is not None:
            with contextlib.suppress(*_RECOVERABLE):
                await client.aclose()


__all__ = ["KeyCleaner"]
