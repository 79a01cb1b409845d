"""Where redis-py's errors become rediscache's, and what an error answer means for a retry.

Like httpx's ``map_httpcore_exceptions``, this lives with the transports: the port's error
hierarchy (``rediscache._exceptions``) knows nothing of redis-py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from typing import NoReturn

from redis import exceptions as rex

from rediscache._exceptions import CacheConnectionError, CacheError

__all__ = ["OnNode", "Redirect", "classify", "map_exceptions", "redirect_target", "reraise", "translate"]

_CONNECTION_ERRORS = (
    rex.ConnectionError,
    rex.TimeoutError,
    rex.ClusterDownError,
    rex.MasterDownError,
    rex.BusyLoadingError,
    rex.TryAgainError,
    rex.ClusterError,
    rex.ReadOnlyError,
    rex.AskError,  # and MovedError: redirections that did not settle within the budget
    ConnectionError,
    TimeoutError,
    OSError,
)


class OnNode(Exception):
    """An error met on one node, with what the call met before it (a cluster's redirections and
    waits), so that the message says where it failed and why it kept trying."""

    def __init__(self, node: str, cause: BaseException, earlier: str | None = None) -> None:
        super().__init__(str(cause))
        self.node = node
        self.cause = cause
        self.earlier = earlier


def translate(operation: str, server: str, exc: Exception) -> CacheError:
    """The ``CacheError`` to raise for ``exc``: connection, timeout and cluster-state errors become
    ``CacheConnectionError``; any other error, including those of redis-py's internals (an
    ``AttributeError`` on a connection another task closed), becomes ``CacheError``. The message
    names the operation and the server, since redis-py's alone ("Timeout reading from socket")
    names neither."""
    if isinstance(exc, CacheError):
        return exc
    if isinstance(exc, OnNode):
        where = server if exc.node == server else f"{server} (node {exc.node})"
        cause = exc.cause if isinstance(exc.cause, Exception) else RuntimeError(str(exc.cause))
        mapped = translate(operation, where, cause)
        if exc.earlier is None or mapped is cause:
            return mapped
        return type(mapped)(f"{mapped}, after {exc.earlier}")
    if isinstance(exc, _CONNECTION_ERRORS):
        return CacheConnectionError(f"{operation} failed on {server}: {_describe(exc)}")
    if isinstance(exc, rex.RedisError):
        text = str(exc)
        if "CLUSTERDOWN" in text or "TRYAGAIN" in text:
            return CacheConnectionError(f"{operation} failed on {server}: {text}")
        return CacheError(f"{operation} failed on {server}: {_describe(exc)}")
    return CacheError(f"{operation} failed on {server}: unexpected {_describe(exc)}")


def reraise(operation: str, server: str, exc: Exception) -> NoReturn:
    """Raise :func:`translate`'s error for ``exc`` (``exc`` itself if it is a ``CacheError``)."""
    mapped = translate(operation, server, exc)
    if mapped is exc:
        raise exc
    raise mapped from exc


@contextmanager
def map_exceptions(operation: str, server: str) -> Iterator[None]:
    """The guard around every call of a transport: nothing but ``CacheError`` leaves it (the hot
    paths call :func:`reraise` from an ``except`` of their own, without a context manager's cost)."""
    try:
        yield
    except Exception as exc:
        reraise(operation, server, exc)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Redirect(Enum):
    """What an error answer says about the command it answers: each of these means it did not run."""

    MOVED = "moved"  # the slot lives elsewhere for good: update the map, send there
    ASK = "ask"  # the slot is moving: send there once, after ASKING
    WAIT = "wait"  # TRYAGAIN, CLUSTERDOWN, LOADING, MASTERDOWN: try again shortly
    REFRESH = "refresh"  # READONLY: this node is a replica now; the map is stale
    NOSCRIPT = "noscript"  # load the script, then send again


def classify(answer: object) -> Redirect | None:
    """Whether an answer is an error that says the command did not run, and what to do about it."""
    if not isinstance(answer, Exception):
        return None
    if isinstance(answer, rex.MovedError):
        return Redirect.MOVED
    if isinstance(answer, rex.AskError):
        return Redirect.ASK
    if isinstance(answer, rex.NoScriptError):
        return Redirect.NOSCRIPT
    if isinstance(answer, (rex.TryAgainError, rex.ClusterDownError, rex.BusyLoadingError)):
        return Redirect.WAIT
    if isinstance(answer, rex.ReadOnlyError):
        return Redirect.REFRESH
    text = str(answer)
    # Parsers that do not map cluster errors leave their code at the start of the message.
    for code, kind in (
        ("MOVED ", Redirect.MOVED),
        ("ASK ", Redirect.ASK),
        ("NOSCRIPT", Redirect.NOSCRIPT),
        ("TRYAGAIN", Redirect.WAIT),
        ("CLUSTERDOWN", Redirect.WAIT),
        ("LOADING", Redirect.WAIT),
        ("MASTERDOWN", Redirect.WAIT),
        ("READONLY", Redirect.REFRESH),
    ):
        if text.startswith(code):
            return kind
    return None


def redirect_target(answer: Exception) -> tuple[int, str, int]:
    """``(slot, host, port)`` of a MOVED or ASK answer."""
    if isinstance(answer, rex.AskError):  # MovedError is one too
        return answer.slot_id, answer.host, answer.port
    _, slot, address = str(answer).split(" ", 2)
    host, _, port = address.rpartition(":")
    return int(slot), host, int(port)
