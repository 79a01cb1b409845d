"""The error hierarchy, and the one place where lower libraries' errors become ours.

    CacheError
    ├── CacheConnectionError      the server could not be reached, timed out, or the cluster is down
    ├── CacheReplicationError     an invalidation ran, but not enough replicas acknowledged it in time
    └── SerializationError        a value the codec cannot encode (also a ``TypeError``: the caller's bug)

Adapters never let a lower library's exception escape: the Redis transports map them
(``rediscache.redis.errors.map_exceptions``), naming the operation and the server. This module
imports nothing from redis-py.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CacheConnectionError",
    "CacheError",
    "CacheReplicationError",
    "SerializationError",
]


class CacheError(Exception):
    """Base class of every error rediscache raises on purpose."""


class CacheConnectionError(CacheError):
    """The cache server could not be reached, did not answer in time, or the cluster is down."""


class CacheReplicationError(CacheError):
    """A ``delete``, ``delete_*`` or ``clear`` ran on the primary, but fewer replicas than asked
    acknowledged it within ``replica_timeout``: a failover now could undo it.

    Raised only with ``on_unreplicated="raise"``; ``result`` is what the call returned otherwise.
    """

    def __init__(self, message: str, *, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class SerializationError(CacheError, TypeError):
    """A value has no encoding in the configured codec. Nothing was written."""


class UndecodablePayload(CacheError):
    """A stored payload that cannot be trusted or read (tampered, corrupt, unknown format version).

    Internal: adapters turn it into a logged miss and remove the entry.
    """
