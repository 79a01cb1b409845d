"""Throwaway Redis servers for the benchmark: the test fixtures' own ``local_server`` / ``local_cluster``.

They run on free ports, without persistence, in a temporary directory, and are stopped at the end
(or at interpreter exit). The benchmark never touches a server it did not start, so it may
``FLUSHALL`` and ``CONFIG SET`` them freely.
"""

from __future__ import annotations

import re
import statistics
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis

from tests.support.redis_servers import RedisServer, local_cluster, local_server

__all__ = ["BenchCluster", "BenchServer", "bench_cluster", "bench_server", "redis_server_version"]

#: SLOWLOG threshold during the runs: every command slower than this (µs) is logged.
SLOWLOG_THRESHOLD_US = 1000
SLOWLOG_MAX_LEN = 4096


@dataclass
class BenchServer:
    """One throwaway server: ``url`` (db 0) and ``admin``, a synchronous client for set-up and INFO."""

    url: str
    host: str
    port: int
    admin: redis.Redis

    def url_db(self, db: int) -> str:
        return f"redis://{self.host}:{self.port}/{db}"


@dataclass
class BenchCluster:
    url: str
    nodes: list[BenchServer]


def _admin(server: RedisServer) -> redis.Redis:
    client = redis.Redis(host=server.host, port=server.port, socket_timeout=30)
    client.config_set("slowlog-log-slower-than", SLOWLOG_THRESHOLD_US)
    client.config_set("slowlog-max-len", SLOWLOG_MAX_LEN)
    return client


@contextmanager
def bench_server() -> Iterator[BenchServer]:
    """A fresh standalone server on a free port, configured for the benchmark; stopped at the end."""
    with local_server() as server:
        admin = _admin(server)
        try:
            yield BenchServer(url=f"{server.url}/0", host=server.host, port=server.port, admin=admin)
        finally:
            admin.close()


@contextmanager
def bench_cluster() -> Iterator[BenchCluster]:
    """A fresh 3-master cluster on free ports; stopped at the end."""
    with local_cluster() as cluster:
        nodes = [
            BenchServer(url=node.url, host=node.host, port=node.port, admin=_admin(node)) for node in cluster.nodes
        ]
        try:
            yield BenchCluster(url=cluster.url, nodes=nodes)
        finally:
            for node in nodes:
                node.admin.close()


def redis_server_version() -> tuple[str, str | None]:
    """``redis-server --version`` of the binary the throwaway servers run, and the version number in it."""
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    match = re.search(r"v=([0-9.]+)", out)
    return out, match.group(1) if match else None


def slowlog_reset(servers: list[BenchServer]) -> None:
    for server in servers:
        server.admin.slowlog_reset()


def slowlog_max(servers: list[BenchServer]) -> dict[str, Any]:
    """The longest command logged since the last reset, over ``servers``; how many were logged, their median.

    Only commands over ``SLOWLOG_THRESHOLD_US`` are logged: ``longest_ms`` is ``None`` when none was.
    """
    longest: dict[str, Any] | None = None
    durations: list[int] = []
    for server in servers:
        entries: list[dict[str, Any]] = server.admin.slowlog_get(SLOWLOG_MAX_LEN)
        durations += [entry["duration"] for entry in entries]
        for entry in entries:
            if longest is None or entry["duration"] > longest["duration"]:
                longest = entry
    logged = len(durations)
    if longest is None:
        return {"longest_ms": None, "logged": 0, "threshold_ms": SLOWLOG_THRESHOLD_US / 1000}
    command = longest.get("command", b"")
    name = command.split(b" ", 1)[0].decode(errors="replace") if isinstance(command, bytes) else str(command)
    return {
        "longest_ms": longest["duration"] / 1000,
        "longest_command": name,
        "logged": logged,
        "median_logged_ms": statistics.median(durations) / 1000,
        "threshold_ms": SLOWLOG_THRESHOLD_US / 1000,
    }


def used_memory(server: BenchServer) -> int:
    info: dict[str, Any] = server.admin.info("memory")
    return int(info["used_memory"])
