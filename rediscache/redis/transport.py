"""How commands reach Redis: the small base class both transports share, and one server's link.

A transport gives the adapter a few calls (run a script on a shard, run many in one round trip per
node, send a plain command) and takes care of what redis-py leaves to its users:

- **one guard, outermost**: every call runs inside :func:`map_exceptions`, so nothing but
  ``CacheError`` leaves, whatever the lower library raised;
- **deadlines in layers** (:mod:`.options`): a budget per call (``operation_timeout``) covering
  the wait for a connection, each attempt (``socket_timeout``, kept by one :class:`Watchdog`) and
  the retries; opening a connection has ``connect_timeout`` and is not charged to the budget;
- **retries that never change an answer**: a request that was never sent, or that an error answer
  says did not run (a redirection, ``TRYAGAIN``, ``CLUSTERDOWN``, ``LOADING``, ``NOSCRIPT``), is
  sent again within the budget; one that may have reached the server is sent again only as its
  caller's ``again`` form (the same command when it is idempotent, a read-only variant for a read
  that counts, nothing for a delete whose answer would change);
- scripts go out as ``EVALSHA`` and are loaded when the server answers ``NOSCRIPT`` (a restart, a
  failover, ``SCRIPT FLUSH``);
- invalidations can wait for replicas (``WAIT`` on the same connection, in the same round trip).

The single-server transport is in :mod:`.standalone`, the cluster's in :mod:`.cluster`.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Literal

from redis import exceptions as rex
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from rediscache._exceptions import CacheConnectionError, CacheReplicationError
from rediscache.redis.errors import OnNode, Redirect, classify, map_exceptions, redirect_target, reraise
from rediscache.redis.options import ConnectionOptions
from rediscache.redis.pool import Pool
from rediscache.redis.scripts import Script
from rediscache.redis.watchdog import Watchdog

_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _pack  # C packer: several times faster than redis-py's own
except ImportError:  # pragma: no cover - hiredis is an optional extra
    _pack = None

__all__ = ["AttemptError", "Budget", "Node", "ScriptCall", "Transport", "evalsha", "redact"]

# (script, keys, args)
ScriptCall = tuple[Script, Sequence[bytes], Sequence[Any]]
Command = tuple[Any, ...]
#: ``again`` of a call: the command to send when an earlier send may have reached the server.
#: ``True``: the same (idempotent); ``None``: none (surface the error).
Again = Command | Literal[True] | None

# Redirections and waits one call may follow before giving up (within its budget anyway).
_MAX_HOPS = 16


def evalsha(call: ScriptCall) -> Command:
    script, keys, args = call
    return (b"EVALSHA", script.sha, len(keys), *keys, *args)


def redact(url: str) -> str:
    """The URL without its password, fit for an error message."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def subscriber_client(connection_class: type[Any], connection_kwargs: dict[str, Any]) -> Redis:
    """A client for pub/sub with the command pool's settings, but no retries: redis-py would
    otherwise reconnect and resubscribe silently, and the messages sent meanwhile would be lost
    without the listener knowing."""
    kwargs = {**connection_kwargs, "retry": Retry(NoBackoff(), 0)}
    kwargs.pop("socket_timeout", None)
    return Redis.from_pool(ConnectionPool(connection_class=connection_class, **kwargs))


class Budget:
    """What is left of one call's ``operation_timeout``."""

    __slots__ = ("end",)

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        left: float = self.end - time.monotonic()
        return left

    def give_back(self, seconds: float) -> None:
        """Time spent opening a connection is not charged to the call."""
        self.end += seconds


class AttemptError(Exception):
    """One attempt failed; ``sent`` says whether the request may have reached the server."""

    def __init__(self, cause: BaseException, *, sent: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.sent = sent


class Node:
    """One server: its connections, and one exchange of commands with a deadline."""

    def __init__(self, name: str, pool: Pool, watchdog: Watchdog, options: ConnectionOptions) -> None:
        self.name = name
        self.pool = pool
        self.replicas = 0  # known replicas, for WAIT
        self._watchdog = watchdog
        self._socket_timeout = options.socket_timeout
        self._pool_wait = options.pool_wait
        self._waiting = 0  # exchanges of this node sent and not yet answered
        self._corked: list[tuple[Any, bytes]] = []

    async def exchange(
        self,
        commands: Sequence[Command],
        budget: Budget,
        *,
        retrying: bool = False,
        then: Callable[[list[Any]], Sequence[Command]] | None = None,
    ) -> list[Any]:
        """Send ``commands`` in one write and read their answers; an error answer is returned as
        the exception, not raised. Raises :class:`AttemptError`.

        ``then(answers)``, when given, names commands to send next on the same connection (a
        ``WAIT`` must follow its write there); their answers are appended.

        The first attempt's connect is not charged to the budget (a slow handshake says nothing of
        the command); a retry's is, and must fit what is left of it, so a frozen server costs a
        caller ``operation_timeout`` and not one connect more."""
        wait = min(self._pool_wait, budget.remaining())
        if wait <= 0:
            raise AttemptError(TimeoutError("the call's operation_timeout ran out"), sent=False)
        try:
            conn, connecting = await self.pool.acquire(wait, wait if retrying else None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise AttemptError(exc, sent=False) from exc
        if not retrying:
            budget.give_back(connecting)
        timeout = min(self._socket_timeout * (1 + len(commands) / 1000), max(budget.remaining(), 0.001))
        task = self._watchdog.start(timeout)
        self._waiting += 1
        try:
            if _pack is None:  # pragma: no cover - hiredis is installed wherever the suite runs
                await conn.send_packed_command(conn.pack_commands(commands))
            elif self._waiting > 1 and conn.is_connected:
                self._cork(conn, b"".join([_pack(args) for args in commands]))
            else:
                await conn.send_packed_command([b"".join([_pack(args) for args in commands])])
            answers: list[Any] = []
            for _ in commands:
                try:
                    answers.append(await conn.read_response())
                except rex.ResponseError as error:
                    answers.append(error)
            more = then(answers) if then is not None else ()
            if more:
                await conn.send_packed_command(conn.pack_commands(more))
                for _ in more:
                    try:
                        answers.append(await conn.read_response())
                    except rex.ResponseError as error:
                        answers.append(error)
        except asyncio.CancelledError:
            self._watchdog.stop(task)
            await self.pool.discard(conn)  # it may hold an unread answer
            if self._watchdog.expired(task):
                raise AttemptError(TimeoutError(f"no answer within {timeout:.3g} s"), sent=True) from None
            raise
        except Exception as exc:
            self._watchdog.stop(task)
            await self.pool.discard(conn)
            raise AttemptError(exc, sent=True) from exc
        finally:
            self._waiting -= 1
        self._watchdog.stop(task)
        await self.pool.release(conn)
        return answers

    def _cork(self, conn: Any, data: bytes) -> None:
        """Send ``data`` at the start of the next event-loop iteration, with every other request
        corked in this one. While other requests of this node wait for answers, the requests the
        event loop makes in one pass go out back to back, so the server reads them in one wake-up
        instead of one each: its CPU per request falls several-fold at high concurrency. A request
        sent while none waits goes out at once (no added latency at low concurrency)."""
        if not self._corked:
            asyncio.get_running_loop().call_soon(self._uncork)
        self._corked.append((conn, data))

    def _uncork(self) -> None:
        corked, self._corked = self._corked, []
        for conn, data in corked:
            writer = conn._writer
            # A connection discarded meanwhile (its caller was cancelled) is not written to.
            if writer is not None and not writer.is_closing():
                writer.write(data)

    async def close(self) -> None:
        await self.pool.close()


INFO_REPLICATION: Command = (b"INFO", b"replication")
#: How often "auto" replication re-reads how many replicas each primary has, unprompted (a single
#: server's ``INFO``, a cluster's map); the count is also raised by each invalidation (:class:`Durable`).
REPLICAS_RECHECK = 30.0


def replicas_in(info: Any) -> int | None:
    """``connected_slaves`` of an ``INFO replication`` answer; ``None`` for an error answer (a user
    without ``+info``) or an answer without the field."""
    if isinstance(info, Exception):
        return None
    text = info.decode() if isinstance(info, bytes) else str(info)
    for line in text.splitlines():
        if line.startswith("connected_slaves:"):
            return int(line.split(":", 1)[1])
    return None


class Durable:
    """The replication tail of one durable exchange (an invalidation) on one node.

    With a fixed count, ``WAIT count``. With ``"auto"``: ``WAIT 1`` when the node is known to have
    replicas; otherwise an ``INFO replication`` in the same write (1.4 µs of server time), so that a
    replica that attached after the count was read (added, or an old master back as a replica after a
    failover) is waited for from the first invalidation that sees it: when the answer shows one, a
    ``WAIT 1`` follows on the same connection (one round trip more, on that change only).
    The count is only raised here; a replica removed for good stops being waited for when the count
    is re-read (the cluster's map, the single server's periodic ``INFO``), and until then each
    invalidation's short ``WAIT`` is reported, as it should be.
    """

    __slots__ = ("_auto", "_node", "_wait_ms", "waiting")

    def __init__(self, node: Node, wanted: int | None, wait_ms: int) -> None:
        self._node = node
        self._auto = wanted is None
        self._wait_ms = wait_ms
        self.waiting = (1 if node.replicas else 0) if wanted is None else wanted

    def tail(self) -> list[Command]:
        """What follows the exchange's own commands in its write."""
        if self.waiting:
            return [(b"WAIT", self.waiting, self._wait_ms)]
        return [INFO_REPLICATION] if self._auto else []

    def then(self, answers: list[Any]) -> Sequence[Command]:
        """``Node.exchange``'s follow-up: the replica count learned, and a ``WAIT`` if one is now due."""
        if not self._auto or self.waiting:
            return ()
        count = replicas_in(answers[-1])
        if count is None or count <= self._node.replicas:
            # Only ever raised here: a replica that is cut off still counts (it could be promoted
            # without this invalidation); the map, or the server's periodic recheck, lowers it.
            return ()
        self._node.replicas = count
        self.waiting = 1
        return [(b"WAIT", 1, self._wait_ms)]

    def shortfall(self, answers: list[Any]) -> str | None:
        """How the replicas fell short (``"0 of 1 replica(s)"``), or ``None`` when they did not."""
        if not self.waiting:
            return None
        acked = answers[-1]  # the WAIT's answer: last, whether sent with the commands or after them
        return f"{_acked(acked)} of {self.waiting} replica(s)" if _short(acked, self.waiting) else None


def _short(acked: Any, wanted: int) -> bool:
    """Whether a ``WAIT`` answer is short of ``wanted`` (an error answer, say a user without WAIT, is)."""
    return isinstance(acked, Exception) or int(acked) < wanted


def _acked(answer: Any) -> str:
    return f"none ({answer})" if isinstance(answer, Exception) else str(answer)


def _backoff(step: int) -> float:
    return min(0.025 * 2.0**step, 0.25)


class Transport(ABC):
    """The calls the Redis adapter makes. ``server`` names the server in error messages.

    Subclasses say which node serves a slot, and what to do when a node failed or a slot moved.
    """

    server: str

    def __init__(self, options: ConnectionOptions, *, wait_for_replicas: int | None, replica_timeout: float) -> None:
        self.options = options
        self._watchdog = Watchdog(period=min(0.05, options.socket_timeout / 10))
        # None: WAIT for 1 replica on nodes that have replicas; 0: never; n: always n.
        self._wait_for = wait_for_replicas
        self._wait_ms = max(1, round(replica_timeout * 1000))

    # -- what subclasses provide --------------------------------------------------------------------

    @abstractmethod
    async def node_for(self, slot: int) -> Node:
        """The primary serving ``slot``."""

    @abstractmethod
    async def primaries(self) -> list[Node]: ...

    def node_at(self, host: str, port: int) -> Node:
        """The node at an address a redirection named (cluster only)."""
        raise CacheConnectionError(f"{self.server} redirected a command to {host}:{port}, but it is not a cluster")

    # A single server has no map to keep: these do nothing there.

    def node_failed(self, node: Node, failure: AttemptError) -> None:  # noqa: B027
        """A node did not answer: the cluster refreshes its map."""

    def slot_moved(self, slot: int, node: Node) -> None:  # noqa: B027
        """``MOVED``: the slot lives on ``node`` now."""

    async def topology_changed(self) -> None:  # noqa: B027
        """``READONLY`` or ``CLUSTERDOWN``: the map may be stale (refresh it before the next try)."""

    def durable_call(self) -> None:  # noqa: B027
        """An invalidation is about to be sent (a cluster re-reads a stale map of replicas then)."""

    def subscription_moved(self, pubsub: Any) -> bool:
        """Whether a subscriber's connection is on a server that no longer takes the cache's writes,
        so its channels will stay silent (a Sentinel master that was failed over while it stayed up:
        see :class:`~rediscache.redis.pool.SentinelMasterPool`). Called often: it must be cheap."""
        return False

    @abstractmethod
    async def subscriber(self, node: Node | None = None) -> Redis:
        """A new client of its own for pub/sub (the caller closes it), to ``node`` (for sharded
        channels, which a node serves for its own slots) or, on a cluster, to any primary (a classic
        PUBLISH reaches every node, so one subscription hears the whole cluster)."""

    async def close(self) -> None:
        self._watchdog.close()

    # -- the calls ----------------------------------------------------------------------------------

    async def run(
        self, op: str, slot: int, call: ScriptCall, *, again: Again | ScriptCall = True, durable: bool = False
    ) -> Any:
        """Run one script on the node of ``slot``. ``again``: see :data:`Again` (a ``ScriptCall``
        is sent as ``EVALSHA``). ``durable``: wait for replicas afterwards."""
        scripts: tuple[Script, ...] = (call[0],)
        if isinstance(again, tuple) and again and isinstance(again[0], Script):
            scripts += (again[0],)
            again = evalsha(again)
        try:
            return await self._call(slot, evalsha(call), again, scripts, durable)
        except Exception as exc:
            reraise(op, self.server, exc)

    async def command(self, op: str, slot: int, *args: Any, again: Again = True) -> Any:
        """A plain command on the node of ``slot``."""
        try:
            return await self._call(slot, args, again, (), False)
        except Exception as exc:
            reraise(op, self.server, exc)

    async def run_each(self, op: str, calls: Sequence[tuple[int, ScriptCall]]) -> list[Any]:
        """Run idempotent scripts that must each be a call of their own, all at once."""
        return list(await asyncio.gather(*(self.run(op, slot, call) for slot, call in calls)))

    async def run_many(
        self,
        op: str,
        calls: Sequence[tuple[int, ScriptCall]],
        *,
        again: bool | Sequence[ScriptCall] = True,
        durable: bool = False,
    ) -> list[Any]:
        """Run many scripts, one round trip per node; results in order. ``again``: ``True`` when the
        scripts are idempotent, ``False`` when none may be sent twice, or their read-only forms."""
        if not calls:
            return []
        items = [(slot, evalsha(call), (call[0],)) for slot, call in calls]
        agains: list[Again]
        if again is True or again is False:
            agains = [True if again else None] * len(calls)
        else:
            agains = [evalsha(other) for other in again]
        try:
            return await self._call_many(items, agains, durable)
        except Exception as exc:
            reraise(op, self.server, exc)

    async def command_many(self, op: str, commands: Sequence[tuple[int, Command]]) -> list[Any]:
        """Many plain, idempotent commands (reads), one round trip per node; answers in order."""
        if not commands:
            return []
        try:
            return await self._call_many([(slot, command, ()) for slot, command in commands], [True] * len(commands))
        except Exception as exc:
            reraise(op, self.server, exc)

    async def primaries_command(self, op: str, *args: Any) -> list[Any]:
        """An idempotent command sent to every primary; one answer each."""
        with map_exceptions(op, self.server):
            nodes = await self.primaries()
            return list(await asyncio.gather(*(self._call_on(node, args) for node in nodes)))

    async def load_scripts(self, op: str, scripts: Sequence[Script]) -> None:
        """Load scripts on every primary up front, so the first calls don't all meet NOSCRIPT at once."""
        with map_exceptions(op, self.server):
            nodes = await self.primaries()
            await asyncio.gather(*(self._load(node, scripts, Budget(self.options.operation_timeout)) for node in nodes))

    # -- how --------------------------------------------------------------------------------------------

    async def _call(
        self, slot: int, command: Command, again: Again, scripts: tuple[Script, ...], durable: bool, sent: bool = False
    ) -> Any:
        """One command, with redirections, waits and retries, within one budget."""
        budget = Budget(self.options.operation_timeout)
        failures = hops = 0
        if durable:
            self.durable_call()
        asking: Node | None = None
        earlier: str | None = None  # the last redirection or wait, for the error message
        while True:
            node = asking if asking is not None else await self.node_for(slot)
            current = command if not sent else (command if again is True else again)
            assert current is not None
            wire: list[Command] = [current]
            if asking is not None:
                wire.insert(0, (b"ASKING",))
            tail = Durable(node, self._wait_for, self._wait_ms) if durable else None
            if tail is not None:
                wire.extend(tail.tail())
            try:
                answers = await node.exchange(
                    wire, budget, retrying=failures > 0, then=tail.then if tail is not None else None
                )
            except AttemptError as failure:
                self.node_failed(node, failure)
                if failure.sent:
                    if again is None:
                        raise OnNode(node.name, failure.cause, earlier) from None
                    sent = True
                failures += 1
                if failures > self.options.retries or budget.remaining() <= 0:
                    raise OnNode(node.name, failure.cause, earlier) from None
                earlier = f"{type(failure.cause).__name__}: {failure.cause}"
                await asyncio.sleep(min(_backoff(failures), max(budget.remaining(), 0)))
                asking = None
                continue
            answer = answers[1] if asking is not None else answers[0]
            asking = None
            kind = classify(answer)
            if kind is None:
                if isinstance(answer, Exception):
                    raise OnNode(node.name, answer, earlier)
                short = tail.shortfall(answers) if tail is not None else None
                if short is not None:
                    raise CacheReplicationError(
                        f"{node.name}: {short} acknowledged within {self._wait_ms} ms", result=answer
                    )
                return answer
            hops += 1
            if hops > _MAX_HOPS or budget.remaining() <= 0:
                raise OnNode(node.name, answer, earlier)
            earlier = f"{type(answer).__name__}: {answer}"
            if kind is Redirect.NOSCRIPT:
                await self._load(node, scripts, budget)
            elif kind is Redirect.MOVED:
                _, host, port = redirect_target(answer)
                self.slot_moved(slot, self.node_at(host, port))
            elif kind is Redirect.ASK:
                _, host, port = redirect_target(answer)
                asking = self.node_at(host, port)
            else:
                if kind is Redirect.REFRESH or "CLUSTERDOWN" in str(answer):
                    await self.topology_changed()
                await asyncio.sleep(min(_backoff(hops), max(budget.remaining(), 0)))

    async def _call_on(self, node: Node, command: Command) -> Any:
        """An idempotent command on one given node (admin commands: INFO, CONFIG GET, SCRIPT LOAD)."""
        budget = Budget(self.options.operation_timeout)
        failures = 0
        while True:
            try:
                (answer,) = await node.exchange([command], budget, retrying=failures > 0)
            except AttemptError as failure:
                failures += 1
                if failures > self.options.retries or budget.remaining() <= 0:
                    raise failure.cause from None
                await asyncio.sleep(min(_backoff(failures), max(budget.remaining(), 0)))
                continue
            if isinstance(answer, Exception):
                raise answer
            return answer

    async def _load(self, node: Node, scripts: Sequence[Script], budget: Budget) -> None:
        if not scripts:
            return
        for answer in await node.exchange([(b"SCRIPT", b"LOAD", script.source) for script in scripts], budget):
            if isinstance(answer, Exception):
                raise answer

    async def _call_many(
        self, items: Sequence[tuple[int, Command, tuple[Script, ...]]], agains: Sequence[Again], durable: bool = False
    ) -> list[Any]:
        if durable:
            self.durable_call()
        by_node: dict[Node, list[int]] = defaultdict(list)
        for i, (slot, _, _) in enumerate(items):
            by_node[await self.node_for(slot)].append(i)
        results: list[Any] = [None] * len(items)
        unreplicated: list[str] = []

        async def one_node(node: Node, indexes: list[int]) -> None:
            budget = Budget(self.options.operation_timeout)
            wire = [items[i][1] for i in indexes]
            tail = Durable(node, self._wait_for, self._wait_ms) if durable else None
            if tail is not None:
                wire.extend(tail.tail())
            redo: list[tuple[int, bool]] = []
            try:
                answers = await node.exchange(wire, budget, then=tail.then if tail is not None else None)
            except AttemptError as failure:
                self.node_failed(node, failure)
                if failure.sent and any(agains[i] is None for i in indexes):
                    raise failure.cause from None
                redo = [(i, failure.sent) for i in indexes]
            else:
                short = tail.shortfall(answers) if tail is not None else None
                if short is not None:
                    unreplicated.append(f"{node.name}: {short}")
                for i, answer in zip(indexes, answers, strict=False):
                    if classify(answer) is None:
                        results[i] = answer
                    else:
                        redo.append((i, False))  # it did not run: the single-call path follows it
            if redo:
                # What did not run, or may not have: one call each, with its own redirections and retries.
                answers = await asyncio.gather(
                    *(self._redo(items[i], agains[i], durable, sent, unreplicated) for i, sent in redo)
                )
                for (i, _), answer in zip(redo, answers, strict=True):
                    results[i] = answer

        await asyncio.gather(*(one_node(node, indexes) for node, indexes in by_node.items()))
        for result in results:
            if isinstance(result, Exception):
                raise result
        if unreplicated:
            raise CacheReplicationError(
                f"{'; '.join(unreplicated)} acknowledged within {self._wait_ms} ms", result=results
            )
        return results

    async def _redo(
        self,
        item: tuple[int, Command, tuple[Script, ...]],
        again: Again,
        durable: bool,
        sent: bool,
        unreplicated: list[str],
    ) -> Any:
        slot, command, scripts = item
        try:
            return await self._call(slot, command, again, scripts, durable, sent=sent)
        except CacheReplicationError as error:
            unreplicated.append(str(error))
            return error.result
