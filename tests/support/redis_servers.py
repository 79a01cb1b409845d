"""Real Redis servers for the test-suite: one standalone server and one 3-master Redis Cluster
(and, for the topology tests, private clusters with replicas: :func:`local_cluster_with_replicas`).

Where the servers come from, in order of preference:

1. ``REDIS_URL`` (standalone) / ``REDIS_CLUSTER_URL`` (any node of a cluster) when set. Such servers
   belong to somebody else: they are never flushed, stopped or restarted (``owned=False``); the tests
   only delete the keys they created.
2. ``redis-server`` on PATH: throwaway processes on free ports, without persistence, in a temporary
   directory. They are stopped, and the directory removed, when the session ends, and also at
   interpreter exit (``atexit``) if the run is interrupted.
3. A Docker engine: ``redis:7`` containers through testcontainers.
4. Otherwise :class:`RedisUnavailableError`, whose message says how to get Redis.

Everything here is synchronous: servers are session-wide and started once, outside any event loop.
The async helpers at the end delete a test's keys; the fixtures in ``tests/conftest.py`` use them.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry

CLUSTER_SLOTS = 16384
CLUSTER_MASTERS = 3
CLUSTER_BUS_PORT_OFFSET = 10000  # Redis Cluster's node-to-node bus listens on port + 10000.
CLUSTER_READY_TIMEOUT = 30.0
CLUSTER_NODE_TIMEOUT_MS = 5000
SERVER_READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
PORT_ATTEMPTS = 5
DOCKER_IMAGE = "redis:7"
DELETE_BATCH = 500

LOCALHOST = "127.0.0.1"


class RedisUnavailableError(RuntimeError):
    """No Redis server could be found or started for the tests."""


class RedisStartError(RuntimeError):
    """A ``redis-server`` process did not come up."""


def how_to_get_redis(what: str) -> str:
    """The message shown when the tests need Redis and none is available."""
    return (
        f"These tests need {what}, and none is available. Any one of these works:\n"
        "  * install redis-server (e.g. `sudo apt-get install redis-server`): the tests then start\n"
        "    throwaway servers (and a 3-master cluster) on free ports and stop them at the end;\n"
        "  * point the tests at servers you run: `export REDIS_URL=redis://HOST:PORT/0` and/or\n"
        "    `export REDIS_CLUSTER_URL=redis://HOST:PORT` (any node of a cluster); such servers are never\n"
        "    flushed or stopped, the tests only delete the keys they create;\n"
        "  * start Docker (the tests then run the redis:7 image with testcontainers), or run\n"
        "    `docker compose up -d` with the repository's docker-compose.yml and export REDIS_URL /\n"
        "    REDIS_CLUSTER_URL as above."
    )


# --------------------------------------------------------------------------------------------------
# Servers and clusters
# --------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class RedisServer:
    """One Redis server.

    ``owned`` servers were started by this test session, so tests may flush, reconfigure or restart
    them. Only servers backed by a local ``redis-server`` process (``restartable``) can be stopped,
    killed and started again; they come back on the same port, empty (a cluster node keeps its slots
    through its nodes.conf).
    """

    url: str
    owned: bool
    host: str
    port: int
    process: subprocess.Popen[bytes] | None = None
    argv: tuple[str, ...] = ()
    workdir: Path | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def restartable(self) -> bool:
        return self.owned and bool(self.argv) and self.workdir is not None

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the process (again) on the same port and wait until it answers PING."""
        workdir = self._require_restartable("start")
        if self.is_running():
            raise RuntimeError(f"redis-server {self.address} is already running")
        # The log is appended to, so a restart keeps the history of earlier runs for diagnostics.
        with open(workdir / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C meant for pytest must not kill the servers under its feet;
                # pytest's teardown (or atexit) stops them.
                start_new_session=True,
            )
        self._wait_until_ready()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Graceful shutdown (SIGTERM), escalating to SIGKILL after ``timeout`` seconds."""
        self._require_restartable("stop")
        self._signal_and_wait(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Abrupt death (SIGKILL), as in a crash."""
        self._require_restartable("kill")
        self._signal_and_wait(signal.SIGKILL, STOP_TIMEOUT)

    def log_tail(self, lines: int = 20) -> str:
        if self.workdir is None or not (self.workdir / "redis.log").exists():
            return "(no log)"
        text = (self.workdir / "redis.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _require_restartable(self, action: str) -> Path:
        if not self.restartable or self.workdir is None:
            raise RuntimeError(
                f"cannot {action} {self.url}: only redis-server processes started by this test session "
                "can be stopped and started (not REDIS_URL / REDIS_CLUSTER_URL servers, nor containers)"
            )
        return self.workdir

    def _signal_and_wait(self, signum: signal.Signals, timeout: float) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            process.send_signal(signum)
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)
        except ProcessLookupError:  # Died between poll() and send_signal().
            process.wait(STOP_TIMEOUT)

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + SERVER_READY_TIMEOUT
        while time.monotonic() < deadline:
            if not self.is_running():
                raise RedisStartError(f"redis-server {self.address} exited at start-up:\n{self.log_tail()}")
            if ping(self.host, self.port):
                return
            time.sleep(0.02)
        self._signal_and_wait(signal.SIGKILL, STOP_TIMEOUT)
        raise RedisStartError(
            f"redis-server {self.address} did not answer PING within {SERVER_READY_TIMEOUT}s:\n{self.log_tail()}"
        )


@dataclass(eq=False)
class RedisCluster:
    """A Redis Cluster; ``url`` is one of its nodes, ``nodes`` are its masters.

    A cluster made with replicas (:func:`local_cluster_with_replicas`) lists them in ``replicas``;
    both lists say what the roles were at creation: a failover swaps them without updating these.
    """

    url: str
    owned: bool
    nodes: list[RedisServer]
    replicas: list[RedisServer] = field(default_factory=list)
    node_timeout_ms: int = CLUSTER_NODE_TIMEOUT_MS


def ping(host: str, port: int, timeout: float = 0.5) -> bool:
    """One PING over a raw socket: redis-py would retry with back-off, too slow for polling."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _admin_client(url: str, timeout: float) -> redis.Redis:
    """A client for set-up checks: no retries (redis-py's default back-off makes polling slow)."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


# --------------------------------------------------------------------------------------------------
# Entry points used by the fixtures
# --------------------------------------------------------------------------------------------------


@contextmanager
def provide_redis_server() -> Iterator[RedisServer]:
    """A standalone server for the whole session; stopped on exit if it was started here."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield external_server(url, "REDIS_URL")
    elif shutil.which("redis-server"):
        with local_server() as server:
            yield server
    elif docker_available():
        with docker_server() as server:
            yield server
    else:
        raise RedisUnavailableError(how_to_get_redis("a standalone Redis server"))


@contextmanager
def provide_redis_cluster() -> Iterator[RedisCluster]:
    """A cluster of 3 masters for the whole session; stopped on exit if it was started here."""
    url = os.environ.get("REDIS_CLUSTER_URL")
    if url:
        yield external_cluster(url)
    elif shutil.which("redis-server") and shutil.which("redis-cli"):
        with local_cluster() as cluster:
            yield cluster
    elif docker_available():
        with docker_cluster() as cluster:
            yield cluster
    else:
        raise RedisUnavailableError(how_to_get_redis("a Redis Cluster (3 masters)"))


# --------------------------------------------------------------------------------------------------
# 1. Servers somebody else runs
# --------------------------------------------------------------------------------------------------


def external_server(url: str, variable: str) -> RedisServer:
    parts = urlsplit(url)
    host, port = parts.hostname or "localhost", parts.port or 6379
    client = _admin_client(url, timeout=5)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        raise RedisUnavailableError(f"{variable}={url} is set, but it does not answer: {exc}") from exc
    finally:
        client.close()
    return RedisServer(url=url, owned=False, host=host, port=port)


def external_cluster(url: str) -> RedisCluster:
    seed = external_server(url, "REDIS_CLUSTER_URL")
    client = _admin_client(url, timeout=5)
    try:
        # redis-py parses CLUSTER NODES into {"host:port": {"flags": "myself,master", ...}, ...}.
        cluster_nodes: dict[str, dict[str, Any]] = client.cluster("NODES")
    finally:
        client.close()
    masters = []
    for address, description in cluster_nodes.items():
        if "master" in str(description["flags"]).split(","):
            host, _, port = address.rpartition(":")
            masters.append(RedisServer(_with_address(url, host, int(port)), False, host, int(port)))
    return RedisCluster(url=seed.url, owned=False, nodes=masters)


def _with_address(url: str, host: str, port: int) -> str:
    """``url`` (credentials, scheme, options kept) pointed at another node."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@{host}:{port}" if credentials else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


# --------------------------------------------------------------------------------------------------
# 2. Throwaway local redis-server processes
# --------------------------------------------------------------------------------------------------

# Clean-ups still to run. Normally the fixtures run them at session end; if the interpreter exits
# first (interrupted run), atexit does, so no redis-server outlives the test run.
_pending_cleanups: list[Callable[[], None]] = []


@atexit.register
def _run_pending_cleanups() -> None:
    while _pending_cleanups:
        _pending_cleanups.pop()()


@contextmanager
def _cleanup_at_end(cleanup: Callable[[], None]) -> Iterator[None]:
    _pending_cleanups.append(cleanup)
    try:
        yield
    finally:
        if cleanup in _pending_cleanups:
            _pending_cleanups.remove(cleanup)
            cleanup()


@contextmanager
def _throwaway_processes(kind: str) -> Iterator[tuple[Path, list[RedisServer]]]:
    """A temp dir and a list to put servers in; at the end the servers are stopped and the dir removed."""
    workdir = Path(tempfile.mkdtemp(prefix=f"rediscache-tests-{kind}-"))
    servers: list[RedisServer] = []

    def cleanup() -> None:
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    with _cleanup_at_end(cleanup):
        yield workdir, servers


@contextmanager
def local_server() -> Iterator[RedisServer]:
    with _throwaway_processes("standalone") as (workdir, servers):
        servers.append(start_local_server(workdir, cluster=False))
        yield servers[0]


@contextmanager
def local_cluster() -> Iterator[RedisCluster]:
    with _throwaway_processes("cluster") as (workdir, servers):
        for _ in range(CLUSTER_MASTERS):
            servers.append(start_local_server(workdir, cluster=True))
        _create_cluster([server.address for server in servers])
        wait_for_cluster(servers)
        yield RedisCluster(url=servers[0].url, owned=True, nodes=list(servers))


# Replicas of the topology tests' clusters: a full sync starts at once (Redis 7 waits 5 s by default
# for more replicas to share a diskless transfer), so a restarted node catches up in well under a second.
REPLICA_SERVER_ARGS = ("--repl-diskless-sync-delay", "0")


@contextmanager
def local_cluster_with_replicas(
    masters: int = CLUSTER_MASTERS, replicas_per_master: int = 1, node_timeout_ms: int = 1500
) -> Iterator[RedisCluster]:
    """A private cluster of ``masters`` masters with ``replicas_per_master`` replicas each, for tests that
    fail nodes over, kill, freeze and reshard them.

    It is returned once every node reports ``cluster_state:ok`` and knows every other node, and every
    replica's link to its master is up and caught up with the master's replication offset. A short
    ``node_timeout_ms`` makes automatic failovers quick (a dead master is replaced within about
    ``node_timeout + 1 s``).
    """
    with _throwaway_processes("replicated-cluster") as (workdir, servers):
        for _ in range(masters * (1 + replicas_per_master)):
            servers.append(
                start_local_server(
                    workdir, cluster=True, node_timeout_ms=node_timeout_ms, extra_args=REPLICA_SERVER_ARGS
                )
            )
        _create_cluster([server.address for server in servers], replicas=replicas_per_master)
        wait_for_cluster(servers)
        wait_for_replicas(servers, masters * replicas_per_master)
        _wait_for_replicas_known(servers, masters * replicas_per_master)
        roles = {server.address: _replication_info(server).get("role") for server in servers}
        yield RedisCluster(
            url=servers[0].url,
            owned=True,
            nodes=[server for server in servers if roles[server.address] == "master"],
            replicas=[server for server in servers if roles[server.address] == "slave"],
            node_timeout_ms=node_timeout_ms,
        )


def wait_for_replicas(nodes: list[RedisServer], replicas: int, timeout: float = CLUSTER_READY_TIMEOUT) -> None:
    """Wait until ``replicas`` of ``nodes`` are replicas whose link is up and whose offset reached the
    offset their master had just before (so a replica that keeps up with its master always passes)."""
    deadline = time.monotonic() + timeout
    infos: dict[str, dict[str, str]] = {}
    while time.monotonic() < deadline:
        infos = {node.address: _replication_info(node) for node in nodes}
        in_sync = 0
        for node in nodes:
            if infos[node.address].get("role") != "slave":
                continue
            info = _replication_info(node)  # read after its master's, so the comparison is fair
            master = infos.get(f"{info.get('master_host')}:{info.get('master_port')}", {})
            if (
                info.get("master_link_status") == "up"
                and master.get("role") == "master"
                and int(info.get("slave_repl_offset", -1)) >= int(master.get("master_repl_offset", 1 << 62))
            ):
                in_sync += 1
        if in_sync >= replicas:
            return
        time.sleep(0.05)
    raise RedisStartError(f"{replicas} replicas not in sync after {timeout}s; INFO replication per node: {infos}")


def _wait_for_replicas_known(nodes: list[RedisServer], replicas: int, timeout: float = CLUSTER_READY_TIMEOUT) -> None:
    """Wait until every node's CLUSTER NODES shows ``replicas`` replicas, each with its master: a
    replica's link can be up before the gossip has told every node whose replica it is."""
    deadline = time.monotonic() + timeout
    seen: dict[str, int] = {}
    while time.monotonic() < deadline:
        seen = {node.address: _known_replicas(node) for node in nodes}
        if all(count == replicas for count in seen.values()):
            return
        time.sleep(0.05)
    raise RedisStartError(f"nodes do not all know the {replicas} replicas after {timeout}s: {seen}")


def _known_replicas(node: RedisServer) -> int:
    client = _admin_client(node.url, timeout=1)
    try:
        text = str(client.execute_command("CLUSTER", "NODES"))  # a raw string, one line per node
    except (redis.RedisError, OSError):
        return -1
    finally:
        client.close()
    lines = [line.split() for line in text.strip().splitlines()]
    return sum("slave" in fields[2].split(",") and fields[3] != "-" for fields in lines)


def _replication_info(node: RedisServer) -> dict[str, str]:
    client = _admin_client(node.url, timeout=1)
    try:
        info: dict[str, Any] = client.info("replication")
    except (redis.RedisError, OSError) as exc:
        return {"error": str(exc)}
    finally:
        client.close()
    return {key: str(value) for key, value in info.items()}


def start_local_server(
    workdir: Path,
    *,
    cluster: bool,
    node_timeout_ms: int = CLUSTER_NODE_TIMEOUT_MS,
    extra_args: tuple[str, ...] = (),
) -> RedisServer:
    """Start a redis-server on a free port, retrying when another process grabs the port first."""
    error: RedisStartError | None = None
    for _ in range(PORT_ATTEMPTS):
        port = free_port(with_cluster_bus=cluster)
        node_dir = workdir / f"node-{port}"
        node_dir.mkdir()
        server = RedisServer(
            url=f"redis://{LOCALHOST}:{port}",
            owned=True,
            host=LOCALHOST,
            port=port,
            argv=(*_server_argv(port, node_dir, cluster=cluster, node_timeout_ms=node_timeout_ms), *extra_args),
            workdir=node_dir,
        )
        try:
            server.start()
            return server
        except RedisStartError as exc:
            if "Address already in use" not in str(exc):
                raise
            error = exc
    raise RedisStartError(f"no free port after {PORT_ATTEMPTS} attempts") from error


def _server_argv(
    port: int, workdir: Path, *, cluster: bool, node_timeout_ms: int = CLUSTER_NODE_TIMEOUT_MS
) -> list[str]:
    argv = [
        "redis-server",
        "--port", str(port),
        "--bind", LOCALHOST,
        "--dir", str(workdir),
        # No persistence: faster, and a restarted server comes back empty, like a fresh cache.
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
    ]  # fmt: skip
    if _supports_enable_debug_command():
        argv += ["--enable-debug-command", "yes"]  # DEBUG SLEEP / OBJECT etc. for failure tests.
    if cluster:
        argv += [
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(workdir / "nodes.conf"),
            "--cluster-node-timeout", str(node_timeout_ms),
        ]  # fmt: skip
    return argv


@cache
def _supports_enable_debug_command() -> bool:
    """``enable-debug-command`` exists since Redis 7.0; older servers refuse unknown options."""
    output = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"v=(\d+)\.", output)
    return match is not None and int(match.group(1)) >= 7


def free_port(*, with_cluster_bus: bool) -> int:
    """A port the kernel just handed out as free (and, for cluster nodes, port+10000 free too).

    Another process may still take it before redis-server binds it: callers retry.
    """
    for _ in range(100):
        port = _bind_and_release(0)
        if not with_cluster_bus:
            return port
        bus_port = port + CLUSTER_BUS_PORT_OFFSET
        if bus_port <= 65535 and _is_free(bus_port):
            return port
    raise RuntimeError("could not find a free port whose cluster bus port is free too")


def _bind_and_release(port: int) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, port))
        return int(sock.getsockname()[1])


def _is_free(port: int) -> bool:
    try:
        _bind_and_release(port)
    except OSError:
        return False
    return True


def _create_cluster(addresses: list[str], replicas: int = 0) -> None:
    command = ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", str(replicas), "--cluster-yes"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=CLUSTER_READY_TIMEOUT)
    if result.returncode != 0:
        raise RedisStartError(f"`{' '.join(command)}` failed:\n{result.stdout}\n{result.stderr}")


def wait_for_cluster(nodes: list[RedisServer], timeout: float = CLUSTER_READY_TIMEOUT) -> None:
    """Wait until every node reports cluster_state:ok, all slots assigned and all nodes known.

    ``redis-cli --cluster create`` returns once the nodes agree on the configuration, but each
    node only switches to ``cluster_state:ok`` a moment later; clients connecting earlier get
    CLUSTERDOWN errors.
    """
    deadline = time.monotonic() + timeout
    states: dict[str, dict[str, str]] = {}
    while time.monotonic() < deadline:
        states = {node.address: _cluster_info(node) for node in nodes}
        if all(_is_ready(info, len(nodes)) for info in states.values()):
            return
        time.sleep(0.05)
    raise RedisStartError(f"cluster not ready after {timeout}s; CLUSTER INFO per node: {states}")


def _is_ready(info: dict[str, str], node_count: int) -> bool:
    return (
        info.get("cluster_state") == "ok"
        and info.get("cluster_slots_assigned") == str(CLUSTER_SLOTS)
        and info.get("cluster_known_nodes") == str(node_count)
    )


def _cluster_info(node: RedisServer) -> dict[str, str]:
    client = _admin_client(node.url, timeout=1)
    try:
        info: dict[str, Any] = client.cluster("INFO")  # parsed by redis-py into {"cluster_state": "ok", ...}
    except (redis.RedisError, OSError) as exc:
        return {"error": str(exc)}
    finally:
        client.close()
    return {key: str(value) for key, value in info.items()}


# --------------------------------------------------------------------------------------------------
# 3. Docker (testcontainers). Not exercised on machines that have redis-server.
# --------------------------------------------------------------------------------------------------


def docker_available() -> bool:
    try:
        from testcontainers.core.docker_client import DockerClient

        DockerClient(timeout=5).client.ping()
    except Exception:  # Any failure (no SDK, no socket, no daemon, ...) means "no usable Docker".
        return False
    return True


@contextmanager
def docker_server() -> Iterator[RedisServer]:
    from testcontainers.community.redis import RedisContainer

    container = RedisContainer(DOCKER_IMAGE).with_command(
        ["redis-server", "--save", "", "--appendonly", "no", "--enable-debug-command", "yes"]
    )
    # testcontainers' Ryuk container also removes it if this process dies.
    with _cleanup_at_end(container.stop):
        container.start()
        host, port = container.get_container_host_ip(), container.get_exposed_port(container.port)
        yield RedisServer(url=f"redis://{host}:{port}", owned=True, host=host, port=port)


@contextmanager
def docker_cluster() -> Iterator[RedisCluster]:
    """The 3 masters run in one container, each published on the same port number on the host.

    Cluster nodes tell clients where the slots live (MOVED, CLUSTER SLOTS) using their announced
    address; announcing 127.0.0.1:<port> is right both inside the container (for the cluster bus and
    redis-cli) and on the host (through the identical published port). This assumes a local Docker
    engine (Linux, Docker Desktop); a remote DOCKER_HOST would need REDIS_CLUSTER_URL instead.
    """
    from testcontainers.core.container import DockerContainer

    ports: list[int] = []
    while len(ports) < CLUSTER_MASTERS:
        port = free_port(with_cluster_bus=True)  # bus ports (port+10000) stay inside the container
        if port not in ports:
            ports.append(port)
    container = DockerContainer(DOCKER_IMAGE).with_command(["sh", "-c", _docker_cluster_script(ports)])
    for port in ports:
        container.with_bind_ports(port, port)
    with _cleanup_at_end(container.stop):
        container.start()
        host = container.get_container_host_ip()
        nodes = [RedisServer(f"redis://{host}:{port}", True, host, port) for port in ports]
        try:
            wait_for_cluster(nodes)
        except RedisStartError as exc:
            raise RedisStartError(f"{exc}\ncontainer logs: {container.get_logs()}") from exc
        yield RedisCluster(url=nodes[0].url, owned=True, nodes=nodes)


def _docker_cluster_script(ports: list[int]) -> str:
    servers = " ".join(str(port) for port in ports)
    addresses = " ".join(f"{LOCALHOST}:{port}" for port in ports)
    return f"""
set -e
for p in {servers}; do
  redis-server --port $p --bind 0.0.0.0 --protected-mode no --daemonize yes --logfile /data/$p.log \\
    --save '' --appendonly no --enable-debug-command yes --cluster-announce-ip {LOCALHOST} \\
    --cluster-enabled yes --cluster-config-file /data/nodes-$p.conf --cluster-node-timeout 5000
done
for p in {servers}; do until redis-cli -p $p ping >/dev/null 2>&1; do sleep 0.1; done; done
redis-cli --cluster create {addresses} --cluster-replicas 0 --cluster-yes
exec tail -F /data/*.log
"""


# --------------------------------------------------------------------------------------------------
# Deleting a test's keys
# --------------------------------------------------------------------------------------------------


def key_pattern(key_prefix: str) -> str:
    """SCAN pattern for the keys of one test.

    It matches the prefix anywhere in the key, not only at the start, so keys the library wraps in
    a hash tag (``{<prefix>...}...``) or behind its own namespace are cleaned up too. The prefix is
    random and made of letters and digits only, so it is safe as a glob and never matches the keys
    of another test.
    """
    if not key_prefix.isalnum():
        raise ValueError(f"key prefix must be letters and digits only, got {key_prefix!r}")
    return f"*{key_prefix}*"


async def delete_test_keys(client: redis.asyncio.Redis, key_prefix: str) -> int:
    """Delete a test's keys from a standalone server; returns how many were deleted."""
    keys = [key async for key in client.scan_iter(match=key_pattern(key_prefix), count=1000)]
    for start in range(0, len(keys), DELETE_BATCH):
        await client.unlink(*keys[start : start + DELETE_BATCH])
    return len(keys)


async def delete_cluster_test_keys(client: redis.asyncio.cluster.RedisCluster, key_prefix: str) -> int:
    """Delete a test's keys from every primary of a cluster; returns how many were deleted."""
    await client.initialize()  # No-op if done; otherwise get_primaries() would silently be empty.
    keys: list[Any] = []
    for node in client.get_primaries():
        keys += [key async for key in client.scan_iter(match=key_pattern(key_prefix), count=1000, target_nodes=node)]
    for start in range(0, len(keys), DELETE_BATCH):
        # The cluster client splits a multi-key UNLINK per slot, so cross-slot batches are fine.
        await client.unlink(*keys[start : start + DELETE_BATCH])
    return len(keys)
