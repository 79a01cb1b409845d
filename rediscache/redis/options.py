"""Connection settings: the deadlines in layers, retries and pool sizes (one object, like httpx's
``Timeout`` and ``Limits``).

The layers, from the outside in (``docs/redis-layout.md`` has the table with the defaults):

- ``operation_timeout``: the budget of one call: waiting for a free connection, every attempt and
  every retry. A refused, frozen or unreachable server costs a caller at most about this long;
- ``connect_timeout``: opening a connection (TCP, TLS and the handshake); not charged to the call,
  which gets that time back, since a slow handshake says nothing about the command;
- ``socket_timeout``: one attempt of one command (or of one pipeline, a little longer per command).

Defaults such that a network whose round trips stay under half of ``socket_timeout`` and a fifth
of ``connect_timeout`` works, slowly, with no failure.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

__all__ = ["ConnectionOptions"]


@dataclass(frozen=True)
class ConnectionOptions:
    """Timeouts (seconds), retries and pool sizes of a Redis adapter's connections.

    Attributes:
        socket_timeout: one attempt of a command: from sending it to its whole answer.
        connect_timeout: opening a connection: TCP connect, TLS and the handshake (AUTH, HELLO,
            SELECT, CLIENT SETINFO). Not charged to ``operation_timeout``.
        operation_timeout: one call's budget: waiting for a free connection, its attempts, its
            retries and their back-off.
        retries: further attempts after the first, made only when they cannot change the answer:
            always when nothing was sent (a refused connection, a redirection, ``TRYAGAIN``,
            ``CLUSTERDOWN``, ``LOADING``), and for idempotent calls when the request may have
            reached the server.
        max_connections: connections per server (per node on a cluster); a burst beyond them waits
            for a free one, within ``operation_timeout`` (and ``pool_timeout``).
        pool_timeout: the longest wait for a free connection, within ``operation_timeout``
            (``None``: as long as the budget allows).
        health_check_interval: seconds of idleness after which redis-py checks a connection of a
            client you gave the adapter (its own pool) or of the pub/sub listener with a ``PING``.
    """

    socket_timeout: float = 0.5
    connect_timeout: float = 1.5
    operation_timeout: float = 1.0
    retries: int = 1
    max_connections: int = 50
    pool_timeout: float | None = None
    health_check_interval: float = 30.0

    def __post_init__(self) -> None:
        for name in ("socket_timeout", "connect_timeout", "operation_timeout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.pool_timeout is not None and not self.pool_timeout > 0:
            raise ValueError(f"pool_timeout must be positive or None, got {self.pool_timeout!r}")
        if not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"retries must be an int >= 0, got {self.retries!r}")
        if not isinstance(self.max_connections, int) or self.max_connections < 1:
            raise ValueError(f"max_connections must be an int >= 1, got {self.max_connections!r}")

    @property
    def pool_wait(self) -> float:
        """The longest a call waits for a free connection."""
        if self.pool_timeout is None:
            return self.operation_timeout
        return min(self.pool_timeout, self.operation_timeout)

    def connection_kwargs(self) -> dict[str, Any]:
        """Settings for the connections the adapter makes itself.

        No socket timeout and no retries on the connection: the transport puts one deadline around
        each attempt and decides itself what may be retried (redis-py's own retries would retry
        what is not safe to retry, and turn a frozen server into a long hang).
        """
        return {
            "socket_connect_timeout": self.connect_timeout,
            "socket_timeout": None,
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0,
            **_driver_info(),
        }


@functools.cache
def _driver_info() -> dict[str, Any]:
    """The ``CLIENT SETINFO`` name of our connections, built once: redis-py 8 otherwise resolves its
    own version from the package metadata for every connection it makes (~3 ms of CPU each, which a
    burst that opens dozens of connections pays in full). Operators see ``redis-py(rediscache_v...)``."""
    try:
        from redis.driver_info import DriverInfo
        from redis.utils import get_lib_version
    except ImportError:  # redis-py before 8 has neither, and no such cost
        return {}
    from rediscache import __version__

    info = DriverInfo(name="redis-py", lib_version=get_lib_version())  # type: ignore[no-untyped-call]
    info.add_upstream_driver("rediscache", __version__)
    return {"driver_info": info}
