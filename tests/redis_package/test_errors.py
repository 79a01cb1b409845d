"""The guard: nothing but CacheError leaves a transport, and error answers are read for what they mean."""

from __future__ import annotations

import asyncio

import pytest
from redis import exceptions as rex

from rediscache import CacheConnectionError, CacheError
from rediscache.redis.errors import Redirect, classify, map_exceptions, redirect_target


@pytest.mark.parametrize(
    "raised",
    [
        TimeoutError("no answer"),
        OSError("connection reset"),
        ConnectionRefusedError("refused"),
        rex.ConnectionError("Error 111"),
        rex.TimeoutError("Timeout reading"),
        rex.ClusterDownError("The cluster is down"),
        rex.TryAgainError("Multiple keys request during rehashing of slot"),
        rex.ClusterError("TTL exhausted."),
        rex.MovedError("3999 127.0.0.1:7002"),
    ],
)
def test_connection_and_cluster_errors_become_cache_connection_errors_naming_op_and_server(
    raised: Exception,
) -> None:
    with pytest.raises(CacheConnectionError) as caught, map_exceptions("get", "redis://h:1"):
        raise raised

    assert "get failed on redis://h:1" in str(caught.value)
    assert caught.value.__cause__ is raised


@pytest.mark.parametrize(
    "raised",
    [
        AttributeError("'NoneType' object has no attribute 'writelines'"),
        rex.ResponseError("ERR something"),
        KeyError("x"),
        RuntimeError("anything at all"),
    ],
)
def test_any_other_error_becomes_a_cache_error(raised: Exception) -> None:
    with pytest.raises(CacheError) as caught, map_exceptions("set", "redis://h:1"):
        raise raised

    assert type(caught.value) is CacheError
    assert "set failed on redis://h:1" in str(caught.value)


def test_cache_errors_and_cancellation_pass_through_unchanged() -> None:
    mine = CacheConnectionError("already ours")
    with pytest.raises(CacheConnectionError) as caught, map_exceptions("get", "s"):
        raise mine
    assert caught.value is mine
    with pytest.raises(asyncio.CancelledError), map_exceptions("get", "s"):
        raise asyncio.CancelledError


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (rex.MovedError("3999 127.0.0.1:7002"), Redirect.MOVED),
        (rex.AskError("3999 127.0.0.1:7002"), Redirect.ASK),
        (rex.TryAgainError("Multiple keys"), Redirect.WAIT),
        (rex.ClusterDownError("The cluster is down"), Redirect.WAIT),
        (rex.BusyLoadingError("Redis is loading"), Redirect.WAIT),
        (rex.ReadOnlyError("You can't write against a read only replica."), Redirect.REFRESH),
        (rex.NoScriptError("No matching script"), Redirect.NOSCRIPT),
        # A parser that maps no cluster error leaves the code in the message.
        (rex.ResponseError("MOVED 12 10.0.0.1:6380"), Redirect.MOVED),
        (rex.ResponseError("CLUSTERDOWN Hash slot not served"), Redirect.WAIT),
        (rex.ResponseError("ERR wrong number of arguments"), None),
        (b"OK", None),
        (None, None),
    ],
)
def test_error_answers_are_classified_by_what_they_say_about_the_command(answer: object, kind: Redirect) -> None:
    assert classify(answer) is kind


def test_a_redirection_names_slot_host_and_port() -> None:
    assert redirect_target(rex.MovedError("3999 127.0.0.1:7002")) == (3999, "127.0.0.1", 7002)
    assert redirect_target(rex.ResponseError("ASK 12 ::1:7003")) == (12, "::1", 7003)
