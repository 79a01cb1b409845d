"""How commands reach Redis: one small base class, one transport for a single server, one for a cluster.

Both give the adapter the same few calls (run a script on a shard, run many in one round trip per
node, send a plain command) and take care of what redis-py leaves to its users:

- scripts go out as ``EVALSHA`` and are reloaded when the server answers ``NOSCRIPT`` (a restart,
  a failover, ``SCRIPT FLUSH``), without the extra ``SCRIPT EXISTS`` round trip redis-py's own
  ``Script`` costs in a pipeline;
- a burst of calls larger than the pool waits for a connection instead of failing: a blocking pool
  on one server; on a cluster, where redis-py has no blocking pool, a semaphore per node;
- every error leaves as ``CacheConnectionError`` or ``CacheError`` naming the operation and server.
"""

from __future__ import annotations

import asyncio
import sys
import time
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis import exceptions as rex
from redis.asyncio import ConnectionPool, Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff

from rediscache._exceptions import CacheConnectionError, map_exceptions
from rediscache._scripts import Script

if sys.version_info >= (3, 11):
    from asyncio import timeout as deadline
else:  # pragma: no cover - redis-py depends on async-timeout below 3.11.3
    from async_timeout import timeout as deadline  # type: ignore[import-not-found, unused-ignore]

_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _pack  # C packer: several times faster than redis-py's own
except ImportError:  # pragma: no cover - hiredis is an optional extra
    _pack = None

__all__ = ["ClusterTransport", "ConnectionOptions", "ScriptCall", "StandaloneTransport", "Transport", "deadline"]

# (script, keys, args)
ScriptCall = tuple[Script, Sequence[bytes], Sequence[Any]]


class ConnectionOptions:
    """Timeouts and pool sizes. The defaults bound a dead or frozen server to a few seconds."""

    def __init__(
        self,
        *,
        socket_timeout: float = 2.0,
        connect_timeout: float = 2.0,
        retries: int = 2,
        max_connections: int = 50,
        pool_timeout: float = 5.0,
        health_check_interval: float = 30.0,
    ) -> None:
        if retries < 0 or max_connections < 1 or socket_timeout <= 0 or connect_timeout <= 0:
            raise ValueError("timeouts must be positive, retries >= 0 and max_connections >= 1")
        self.socket_timeout = socket_timeout
        self.connect_timeout = connect_timeout
        self.retries = retries
        self.max_connections = max_connections
        self.pool_timeout = pool_timeout
        self.health_check_interval = health_check_interval

    def retry(self) -> Retry:
        return Retry(ExponentialBackoff(cap=0.5, base=0.05), self.retries)

    def client_kwargs(self) -> dict[str, Any]:
        # No socket_timeout on the connections: the transport puts one deadline around each
        # attempt instead (redis-py would arm two timers per command, one of them a task).
        return {
            "socket_connect_timeout": self.connect_timeout,
            "retry": self.retry(),
            "health_check_interval": self.health_check_interval,
        }


def redact(url: str) -> str:
    """The URL without its password, fit for an error message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def _subscriber_client(connection_class: type[Any], connection_kwargs: dict[str, Any]) -> Redis:
    """A client for pub/sub with the command pool's settings, but no retries: redis-py would
    otherwise reconnect and resubscribe silently, and the messages sent meanwhile would be lost
    without the listener knowing."""
    kwargs = {**connection_kwargs, "retry": Retry(NoBackoff(), 0)}
    return Redis.from_pool(ConnectionPool(connection_class=connection_class, **kwargs))


def _is_noscript(result: Any) -> bool:
    return isinstance(result, rex.NoScriptError)


class Transport(ABC):
    """The calls the Redis adapter makes. ``server`` names the server in error messages."""

    server: str

    @abstractmethod
    async def run(self, op: str, call: ScriptCall) -> Any:
        """Run one script; its first key routes it."""

    @abstractmethod
    async def run_many(self, op: str, calls: Sequence[ScriptCall]) -> list[Any]:
        """Run many scripts, one round trip per node; results in order."""

    @abstractmethod
    async def command(self, op: str, *args: Any, route_key: bytes | None = None) -> Any:
        """A plain command; ``route_key`` picks the node on a cluster."""

    @abstractmethod
    async def primaries_command(self, op: str, *args: Any) -> list[Any]:
        """A plain command sent to every primary; one answer each."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def subscriber(self) -> Redis:
        """A new client of its own for pub/sub (the caller closes it). On a cluster, a client of one
        primary: a classic PUBLISH reaches every node, so one subscription hears the whole cluster."""

    async def load_scripts(self, op: str, scripts: Sequence[Script]) -> None:
        """Load scripts on every primary up front, so the first calls don't all meet NOSCRIPT at once."""
        for script in scripts:
            await self.primaries_command(op, "SCRIPT", "LOAD", script.source)

    async def run_each(self, op: str, calls: Sequence[ScriptCall]) -> list[Any]:
        """Run scripts that must each be a call of their own (one per shard), all at once."""
        return list(await asyncio.gather(*(self.run(op, call) for call in calls)))


class _Watchdog:
    """Deadlines for commands in flight, kept by one periodic task instead of a timer per command.

    A command registers its task and deadline (two dict operations); every ``period`` seconds the
    watchdog cancels the tasks whose deadline passed, and the command turns that cancellation into
    a ``TimeoutError``. A per-command ``asyncio.timeout`` would arm and disarm a timer each time,
    which costs more than the rest of a cache hit's bookkeeping.
    """

    def __init__(self, period: float) -> None:
        self._period = period
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self, timeout: float) -> asyncio.Task[Any]:
        task = asyncio.current_task()
        assert task is not None, "commands run inside a task"
        self._deadlines[task] = time.monotonic() + timeout
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="rediscache-deadlines")
        return task

    def stop(self, task: asyncio.Task[Any]) -> None:
        self._deadlines.pop(task, None)

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """Whether the watchdog cancelled ``task``; if so, the cancellation is withdrawn."""
        if task not in self._expired:
            return False
        self._expired.discard(task)
        if sys.version_info >= (3, 11):
            task.uncancel()
        return True

    async def _watch(self) -> None:
        while self._deadlines or self._expired:
            await asyncio.sleep(self._period)
            now = time.monotonic()
            for task, when in list(self._deadlines.items()):
                if when <= now:
                    del self._deadlines[task]
                    self._expired.add(task)
                    task.cancel()
            self._expired = {task for task in self._expired if not task.done()}

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()


class _Connections:
    """Connections to one server: a bounded set of our own, or borrowed from a user's client.

    Ours are kept in a plain free list behind a semaphore: a checkout costs a fraction of a
    microsecond, where redis-py's blocking pool costs about ten (a condition variable, a timer and
    a socket probe per checkout). The probe is not needed here: a connection that met an error or
    a cancellation is disconnected before it is put back, so it never holds an unread answer.
    """

    def __init__(self, pool: ConnectionPool, *, owned: bool, size: int, wait: float) -> None:
        self._pool = pool
        self._owned = owned
        self._idle: list[Any] = []
        self._slots = asyncio.Semaphore(size)
        self._wait = wait

    async def acquire(self) -> Any:
        if not self._owned:
            return await self._pool.get_connection()  # type: ignore[no-untyped-call]
        if self._slots.locked():
            try:
                async with deadline(self._wait):
                    await self._slots.acquire()
            except TimeoutError:
                raise rex.ConnectionError(f"no connection became free within {self._wait} s") from None
        else:
            await self._slots.acquire()
        return self._idle.pop() if self._idle else self._pool.make_connection()  # type: ignore[no-untyped-call]

    async def release(self, conn: Any) -> None:
        if not self._owned:
            await self._pool.release(conn)
            return
        self._idle.append(conn)
        self._slots.release()

    async def close(self) -> None:
        if self._owned:
            idle, self._idle = self._idle, []
            for conn in idle:
                await conn.disconnect()
            await self._pool.disconnect()


def _pack_all(commands: Sequence[tuple[Any, ...]], conn: Any) -> list[bytes]:
    if _pack is not None:
        return [b"".join(_pack(args) for args in commands)]
    return list(conn.pack_commands(commands))


class StandaloneTransport(Transport):
    """One server, spoken to directly: commands are packed by hiredis, sent on a connection of our
    own and read back, with one deadline per attempt. On a cache's hot path redis-py's general
    ``execute_command`` (pool, retry wrapper, callbacks, metrics) costs more than the command."""

    def __init__(self, client: Redis, *, server: str, owns_client: bool, options: ConnectionOptions) -> None:
        self._client = client
        self._owns = owns_client
        self._connections = _Connections(
            client.connection_pool,
            owned=owns_client,
            size=options.max_connections,
            wait=options.pool_timeout,
        )
        self._timeout = options.socket_timeout
        self._retries = options.retries
        self._deadlines = _Watchdog(period=min(0.25, options.socket_timeout / 4))
        self.server = server

    @classmethod
    def from_url(cls, url: str, options: ConnectionOptions) -> StandaloneTransport:
        # The pool parses the URL and makes connections; checkouts go through _Connections.
        pool = ConnectionPool.from_url(url, max_connections=options.max_connections, **options.client_kwargs())
        return cls(Redis.from_pool(pool), server=redact(url), owns_client=True, options=options)

    async def _exchange(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send commands in one write and read their answers (an error reply is returned, not
        raised); retry on a broken or silent connection."""
        attempt = 0
        while True:
            try:
                return await self._attempt(commands)
            except (rex.ConnectionError, rex.TimeoutError, OSError, TimeoutError):
                if attempt >= self._retries:
                    raise
                attempt += 1
                await asyncio.sleep(0.05 * attempt)

    async def _attempt(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        conn = None
        # The deadline covers taking a connection too: a frozen server still accepts TCP
        # connections, and a new one would wait forever for its handshake.
        task = self._deadlines.start(self._timeout * (1 + len(commands) / 1000))
        try:
            conn = await self._connections.acquire()
            await conn.send_packed_command(_pack_all(commands, conn))
            answers: list[Any] = []
            for _ in commands:
                try:
                    answers.append(await conn.read_response())
                except rex.ResponseError as error:
                    answers.append(error)
            return answers
        except asyncio.CancelledError:
            if conn is not None:
                await conn.disconnect()  # it may hold an unread answer
            if self._deadlines.expired(task):
                raise TimeoutError(f"no answer within {self._timeout} s") from None
            raise
        except BaseException:
            if conn is not None:
                await conn.disconnect()
            raise
        finally:
            self._deadlines.stop(task)
            if conn is not None:
                await self._connections.release(conn)

    async def _call(self, *args: Any) -> Any:
        (answer,) = await self._exchange((args,))
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def run(self, op: str, call: ScriptCall) -> Any:
        script, keys, args = call
        with map_exceptions(op, self.server):
            try:
                return await self._call(b"EVALSHA", script.sha, len(keys), *keys, *args)
            except rex.NoScriptError:
                await self._call(b"SCRIPT", b"LOAD", script.source)
                return await self._call(b"EVALSHA", script.sha, len(keys), *keys, *args)

    async def run_many(self, op: str, calls: Sequence[ScriptCall]) -> list[Any]:
        if not calls:
            return []
        with map_exceptions(op, self.server):
            results = await self._exchange(
                [(b"EVALSHA", script.sha, len(keys), *keys, *args) for script, keys, args in calls]
            )
            missing = [i for i, result in enumerate(results) if _is_noscript(result)]
            if missing:
                # A NOSCRIPT answer means that script did not run: load and run just those again.
                await self._exchange([(b"SCRIPT", b"LOAD", script.source) for script in {calls[i][0] for i in missing}])
                again = await self._exchange(
                    [(b"EVALSHA", calls[i][0].sha, len(calls[i][1]), *calls[i][1], *calls[i][2]) for i in missing]
                )
                for i, result in zip(missing, again, strict=True):
                    results[i] = result
            for result in results:
                if isinstance(result, Exception):
                    raise result
            return results

    async def command(self, op: str, *args: Any, route_key: bytes | None = None) -> Any:
        with map_exceptions(op, self.server):
            return await self._call(*args)

    async def primaries_command(self, op: str, *args: Any) -> list[Any]:
        return [await self.command(op, *args)]

    async def subscriber(self) -> Redis:
        # Same connection class and settings (TLS, unix socket, credentials) as the command pool.
        pool = self._client.connection_pool
        return _subscriber_client(pool.connection_class, pool.connection_kwargs)

    async def load_scripts(self, op: str, scripts: Sequence[Script]) -> None:
        with map_exceptions(op, self.server):
            for answer in await self._exchange([(b"SCRIPT", b"LOAD", script.source) for script in scripts]):
                if isinstance(answer, Exception):
                    raise answer

    async def close(self) -> None:
        self._deadlines.close()
        if self._owns:
            await self._connections.close()
            await self._client.aclose()


class ClusterTransport(Transport):
    """A cluster client, initialized once under a lock, with a bound on calls in flight per node."""

    def __init__(self, client: RedisCluster, *, server: str, owns_client: bool, options: ConnectionOptions) -> None:
        self._client = client
        self._owns = owns_client
        self._ready = False
        self._init_lock = asyncio.Lock()
        limit = options.max_connections
        self._in_flight: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(limit))
        # The connections carry no socket timeout: every call gets one deadline, retries included.
        self._timeout = options.socket_timeout * (options.retries + 1)
        self.server = server

    @classmethod
    def from_url(cls, url: str, options: ConnectionOptions) -> ClusterTransport:
        client = RedisCluster.from_url(url, max_connections=options.max_connections, **options.client_kwargs())
        return cls(client, server=redact(url), owns_client=True, options=options)

    async def _ensure_ready(self, op: str) -> None:
        # A fresh RedisCluster used by many coroutines at once before it knows the slot map fails
        # ("'NoneType' object has no attribute 'writelines'"): initialize it once, first.
        if self._ready:
            return
        async with self._init_lock:
            if not self._ready:
                with map_exceptions(op, self.server):
                    await self._client.initialize()
                self._ready = True

    def _node(self, key: bytes) -> ClusterNode:
        node = self._client.get_node_from_key(key)  # type: ignore[arg-type]  # bytes keys work
        if node is None:
            raise CacheConnectionError(f"no node serves the slot of {key!r} on {self.server}")
        return node

    async def run(self, op: str, call: ScriptCall) -> Any:
        script, keys, args = call
        await self._ensure_ready(op)
        async with self._in_flight[self._node(keys[0]).name], deadline(self._timeout):
            with map_exceptions(op, self.server):
                try:
                    return await self._client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
                except rex.NoScriptError:
                    await self._client.script_load(script.source)
                    return await self._client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)

    async def run_many(self, op: str, calls: Sequence[ScriptCall]) -> list[Any]:
        if not calls:
            return []
        await self._ensure_ready(op)
        by_node: dict[str, list[int]] = defaultdict(list)
        for i, (_, keys, _) in enumerate(calls):
            by_node[self._node(keys[0]).name].append(i)
        results: list[Any] = [None] * len(calls)

        async def one_node(name: str, indexes: list[int]) -> None:
            async with self._in_flight[name]:
                answers = await self._pipeline([calls[i] for i in indexes])
                missing = [i for i, answer in zip(indexes, answers, strict=True) if _is_noscript(answer)]
                for i, answer in zip(indexes, answers, strict=True):
                    results[i] = answer
                if missing:
                    for script in {calls[i][0] for i in missing}:
                        await self._client.script_load(script.source)
                    for i, answer in zip(missing, await self._pipeline([calls[i] for i in missing]), strict=True):
                        results[i] = answer

        with map_exceptions(op, self.server):
            async with deadline(self._timeout * (1 + len(calls) / 1000)):
                await asyncio.gather(*(one_node(name, idx) for name, idx in by_node.items()))
            for result in results:
                if isinstance(result, Exception):
                    raise result
        return results

    async def _pipeline(self, calls: Sequence[ScriptCall]) -> list[Any]:
        pipe = self._client.pipeline()
        for script, keys, args in calls:
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))

    async def command(self, op: str, *args: Any, route_key: bytes | None = None) -> Any:
        await self._ensure_ready(op)
        if route_key is None:
            with map_exceptions(op, self.server):
                async with deadline(self._timeout):
                    return await self._client.execute_command(*args)
        node = self._node(route_key)
        async with self._in_flight[node.name], deadline(self._timeout):
            with map_exceptions(op, self.server):
                return await self._client.execute_command(*args, target_nodes=node)

    async def subscriber(self) -> Redis:
        await self._ensure_ready("subscribe")
        primaries = self._client.get_primaries()
        if not primaries:
            raise CacheConnectionError(f"subscribe failed on {self.server}: no primary known")
        node = primaries[0]
        return _subscriber_client(node.connection_class, node.connection_kwargs)

    async def primaries_command(self, op: str, *args: Any) -> list[Any]:
        await self._ensure_ready(op)
        with map_exceptions(op, self.server):
            primaries = self._client.get_primaries()
            async with deadline(self._timeout):
                return list(
                    await asyncio.gather(
                        *(self._client.execute_command(*args, target_nodes=node) for node in primaries)
                    )
                )

    async def close(self) -> None:
        if self._owns:
            await self._client.aclose()
