"""The error hierarchy, and the one place where lower libraries' errors become ours.

    CacheError
    ├── CacheConnectionError      the server could not be reached, timed out, or the cluster is down
    └── SerializationError        a value the codec cannot encode (also a ``TypeError``: the caller's bug)

Adapters never let a raw ``redis`` exception escape: every call into the client runs inside
:func:`map_exceptions`, which names the operation and the server in the message.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "CacheConnectionError",
    "CacheError",
    "SerializationError",
    "map_exceptions",
]


class CacheError(Exception):
    """Base class of every error rediscache raises on purpose."""


class CacheConnectionError(CacheError):
    """The cache server could not be reached, did not answer in time, or the cluster is down."""


class SerializationError(CacheError, TypeError):
    """A value has no encoding in the configured codec. Nothing was written."""


class UndecodablePayload(CacheError):
    """A stored payload that cannot be trusted or read (tampered, corrupt, unknown format version).

    Internal: adapters turn it into a logged miss and remove the entry.
    """


@contextmanager
def map_exceptions(operation: str, server: str) -> Iterator[None]:
    """Re-raise ``redis`` errors as :class:`CacheConnectionError` or :class:`CacheError`.

    The message says which cache operation failed against which server, since the
    redis-py message alone ("Timeout reading from socket") names neither.
    """
    # Imported here so the port (models, ABC, errors) stays importable without redis.
    from redis import exceptions as rex

    try:
        yield
    except CacheError:
        raise
    except (
        rex.ConnectionError,
        rex.TimeoutError,
        rex.ClusterDownError,
        rex.MasterDownError,
        rex.BusyLoadingError,
        ConnectionError,
        TimeoutError,
        OSError,
    ) as exc:
        raise CacheConnectionError(f"{operation} failed on {server}: {type(exc).__name__}: {exc}") from exc
    except rex.RedisError as exc:
        text = str(exc)
        if "CLUSTERDOWN" in text or "TRYAGAIN" in text:
            raise CacheConnectionError(f"{operation} failed on {server}: {text}") from exc
        raise CacheError(f"{operation} failed on {server}: {type(exc).__name__}: {text}") from exc
