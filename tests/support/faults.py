"""A fault-injecting TCP proxy for Redis: latency, a dropped network, and late replies, switched at run time.

``FaultProxy`` is a ``CountingProxy`` (same forwarding, same counters) that can also, at any moment:

* **add latency** per direction (``set_delay``): every byte read from one side is delivered to the
  other ``delay`` seconds after it was read, in order. It is latency, not a bandwidth limit: a burst
  read at once is delivered at once, so each round trip gains ``to_server + to_client`` whatever the
  load. New connections' handshakes (``HELLO``, ``CLIENT SETINFO``, ``AUTH``, ``SELECT``) go through
  it like any command. (The TCP handshake itself does not: the kernel accepts connections before the
  proxy sees them.)
* **drop the network** (``drop`` / ``restore``): nothing is delivered either way. Connections stay
  open and new ones are accepted, but no answer comes, as with a partition or a frozen peer. By
  default bytes are held and delivered, in order, on ``restore`` (as TCP would retransmit them);
  ``drop(discard=True)`` throws them away instead.
* **delay one reply** (``delay_reply``): the reply to the nth command that matches (by name and/or by a
  marker among its arguments) is held for a chosen time, then forwarded. The command itself reaches
  the server at once, so it runs; only its answer is late (what a client sees when a reply is lost
  in flight or the server stalls after doing the work). Replies after it on the same connection wait
  behind it, as they would on a real connection.

Usage::

    async with FaultProxy(server.host, server.port) as proxy:
        client = redis.asyncio.Redis.from_url(proxy.url)
        proxy.set_delay(round_trip=0.2)
        late = proxy.delay_reply(2.0, command="GET", contains=b"marker")
        proxy.drop(); ...; proxy.restore()

How replies are matched to commands: Redis answers the commands of one connection in order, so the
proxy frames the server's stream into replies (RESP2 and RESP3; RESP3 push messages are not
replies) and pairs the nth reply with the nth command of that connection. This breaks on
connections whose commands don't get one reply each (``CLIENT REPLY OFF``, RESP2 pub/sub): don't
target those.

Bytes still held when a connection ends (either side closed it) are discarded with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field

from support.proxy import TO_CLIENT, TO_SERVER, CountingProxy, Direction, RespCommandParser, _Connection, _to_int

__all__ = ["FaultProxy", "ReplyDelay", "RespReplyParser"]


class RespReplyParser:
    """Incremental framing of the server -> client RESP2/RESP3 stream: where each complete reply ends.

    Bulk payloads are skipped as they arrive, never buffered whole. RESP3 push messages (``>``) are
    not replies to a command and are not reported; attributes (``|``) belong to the reply they precede.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._fed = 0  # bytes fed so far
        self._consumed = 0  # bytes parsed so far; the buffer holds the rest
        self._bulk_left: int | None = None  # bytes of the current bulk payload (+ CRLF) still to skip
        self._open: list[list[int]] = []  # open aggregates: [items left, 1 if it is an attribute]
        self._push = False  # the current top-level element is a push message

    def feed(self, data: bytes) -> list[int]:
        """Add bytes from the stream; return, for each reply they complete, the offset in ``data`` just past it."""
        chunk_start = self._fed
        self._fed += len(data)
        self._buffer += data
        ends: list[int] = []
        while self._step(ends):
            pass
        return [end - chunk_start for end in ends]

    def _step(self, ends: list[int]) -> bool:
        if self._bulk_left is not None:
            skipped = min(self._bulk_left, len(self._buffer))
            del self._buffer[:skipped]
            self._consumed += skipped
            self._bulk_left -= skipped
            if self._bulk_left:
                return False
            self._bulk_left = None
            self._element_done(ends)
            return True
        newline = self._buffer.find(b"\n")
        if newline < 0:
            return False
        line = bytes(self._buffer[:newline]).rstrip(b"\r")
        del self._buffer[: newline + 1]
        self._consumed += newline + 1
        kind, size = line[:1], _to_int(line[1:])
        if kind in (b"$", b"=", b"!"):  # bulk string, verbatim string, bulk error
            if size >= 0:
                self._bulk_left = size + 2
            else:
                self._element_done(ends)  # null bulk
        elif kind in (b"*", b"~", b">", b"%", b"|"):  # array, set, push, map, attribute
            if not self._open:
                self._push = kind == b">"
            items = size * 2 if kind in (b"%", b"|") else size
            if items > 0:
                self._open.append([items, int(kind == b"|")])
            elif kind != b"|":  # empty or null aggregate (an empty attribute annotates what follows)
                self._element_done(ends)
        else:  # + - : , # _ ( : one line
            self._element_done(ends)
        return True

    def _element_done(self, ends: list[int]) -> None:
        while self._open:
            frame = self._open[-1]
            frame[0] -= 1
            if frame[0] > 0:
                return
            self._open.pop()
            if frame[1]:
                return  # an attribute ended: the element it annotates is still to come
            # The aggregate is complete: it is one element of its parent.
        if not self._push:
            ends.append(self._consumed)
        self._push = False


@dataclass(eq=False)
class ReplyDelay:
    """One ``delay_reply`` rule. ``matches`` keeps counting after it fired, so a test can see retries."""

    delay: float
    command: str | None
    contains: bytes | None
    nth: int
    matches: int = 0  # matching commands the clients sent since the rule was made
    held: int = 0  # replies held by this rule (0 or 1): proof the fault happened

    def match(self, name: str, args: list[bytes]) -> bool:
        if self.command is not None and name != self.command:
            return False
        return self.contains is None or any(self.contains in arg for arg in args)


@dataclass(eq=False)
class _Lane:
    """Bytes of one direction of one connection waiting for their delivery time, and who delivers them."""

    writer: asyncio.StreamWriter
    queue: deque[tuple[float, bytes]] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # set while the queue is not empty
    task: asyncio.Task[None] | None = None


@dataclass(eq=False)
class _Faults:
    """A connection's state for fault injection."""

    commands: RespCommandParser = field(default_factory=lambda: RespCommandParser(keep_args=True))
    replies: RespReplyParser = field(default_factory=RespReplyParser)
    # One item per command sent and not yet answered: the rule whose reply it is, or None.
    unanswered: deque[ReplyDelay | None] = field(default_factory=deque)
    lanes: dict[Direction, _Lane] = field(default_factory=dict)


class FaultProxy(CountingProxy):
    """A ``CountingProxy`` that adds latency, drops the network or delays chosen replies (see the module doc)."""

    def __init__(self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1") -> None:
        super().__init__(target_host, target_port, listen_host=listen_host)
        self._delay: dict[Direction, float] = {TO_SERVER: 0.0, TO_CLIENT: 0.0}
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._discard = False
        self._rules: list[ReplyDelay] = []
        self._faults: dict[_Connection, _Faults] = {}
        self._lane_tasks: set[asyncio.Task[None]] = set()
        self.bytes_discarded = 0

    # -- the switches --------------------------------------------------------------------------

    def set_delay(
        self, *, to_server: float | None = None, to_client: float | None = None, round_trip: float | None = None
    ) -> None:
        """Latency from now on (bytes already read keep theirs); ``round_trip`` splits evenly between directions."""
        if round_trip is not None:
            to_server = to_client = round_trip / 2
        for direction, delay in ((TO_SERVER, to_server), (TO_CLIENT, to_client)):
            if delay is not None:
                if delay < 0:
                    raise ValueError("a delay can't be negative")
                self._delay[direction] = delay

    @property
    def round_trip_delay(self) -> float:
        return self._delay[TO_SERVER] + self._delay[TO_CLIENT]

    def drop(self, *, discard: bool = False) -> None:
        """Stop delivering bytes either way; connections stay open and new ones are accepted."""
        self._discard = discard
        self._flowing.clear()

    def restore(self) -> None:
        """Deliver again (held bytes first, in order)."""
        self._discard = False
        self._flowing.set()

    @property
    def dropped(self) -> bool:
        return not self._flowing.is_set()

    def delay_reply(
        self, delay: float, *, command: str | None = None, contains: bytes | None = None, nth: int = 1
    ) -> ReplyDelay:
        """Hold for ``delay`` seconds the reply to the ``nth`` command (counted from now) named ``command``
        (any case; None: any name) with ``contains`` in one of its arguments (None: any)."""
        if nth < 1 or delay < 0:
            raise ValueError("nth must be >= 1 and delay >= 0")
        rule = ReplyDelay(delay, None if command is None else command.upper(), contains, nth)
        self._rules.append(rule)
        return rule

    def matching(self, *, command: str | None = None, contains: bytes | None = None) -> ReplyDelay:
        """A rule that never fires, only counts matching commands (``.matches``)."""
        rule = ReplyDelay(0.0, None if command is None else command.upper(), contains, nth=0)
        self._rules.append(rule)
        return rule

    # -- forwarding (hooks of CountingProxy) ---------------------------------------------------

    async def _forward(
        self, connection: _Connection, direction: Direction, data: bytes, writer: asyncio.StreamWriter
    ) -> None:
        faults = self._faults.get(connection)
        if faults is None:
            faults = self._faults[connection] = _Faults()
        arrival = asyncio.get_running_loop().time() + self._delay[direction]
        if direction == TO_SERVER:
            for name, args in faults.commands.feed_commands(data):
                faults.unanswered.append(self._target(name, args))
            self._enqueue(connection, faults, direction, writer, arrival, data)
            return
        # To the client: cut the bytes where a held reply starts and ends, so only it (and what
        # follows it) waits longer.
        start = previous_end = 0
        for end in faults.replies.feed(data):
            rule = faults.unanswered.popleft() if faults.unanswered else None
            if rule is not None:
                if previous_end > start:
                    self._enqueue(connection, faults, direction, writer, arrival, data[start:previous_end])
                self._enqueue(connection, faults, direction, writer, arrival + rule.delay, data[previous_end:end])
                rule.held += 1
                start = end
            previous_end = end
        if start < len(data):
            self._enqueue(connection, faults, direction, writer, arrival, data[start:])

    def _target(self, name: str, args: list[bytes]) -> ReplyDelay | None:
        """Count the command against every rule; the first rule for which it is the nth match takes its reply."""
        chosen = None
        for rule in self._rules:
            if rule.match(name, args):
                rule.matches += 1
                if chosen is None and rule.matches == rule.nth:
                    chosen = rule
        return chosen

    def _enqueue(
        self,
        connection: _Connection,
        faults: _Faults,
        direction: Direction,
        writer: asyncio.StreamWriter,
        when: float,
        data: bytes,
    ) -> None:
        if self.dropped and self._discard:
            self.bytes_discarded += len(data)
            return
        lane = faults.lanes.get(direction)
        if lane is None:
            lane = faults.lanes[direction] = _Lane(writer)
            lane.task = asyncio.create_task(self._deliver(connection, lane))
            self._lane_tasks.add(lane.task)
            lane.task.add_done_callback(self._lane_tasks.discard)
        lane.queue.append((when, data))
        lane.ready.set()

    async def _deliver(self, connection: _Connection, lane: _Lane) -> None:
        """Write the lane's bytes in order, each at its time and only while the network flows."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                await lane.ready.wait()
                when, data = lane.queue[0]
                if not self._flowing.is_set():
                    await self._flowing.wait()
                    continue  # re-check: a discard may have come and gone meanwhile
                if (wait := when - loop.time()) > 0:
                    await asyncio.sleep(wait)
                    continue  # the network may have been dropped while this waited
                lane.queue.popleft()
                if not lane.queue:
                    lane.ready.clear()
                lane.writer.write(data)
                await lane.writer.drain()
                self._touch()
        except (OSError, RuntimeError):
            connection.close()  # the peer is gone: end the connection as the plain proxy would

    def _connection_done(self, connection: _Connection) -> None:
        faults = self._faults.pop(connection, None)
        if faults is not None:
            for lane in faults.lanes.values():
                if lane.task is not None:
                    lane.task.cancel()

    async def close(self) -> None:
        self._flowing.set()  # nothing waits for a restore that will not come
        await super().close()
        tasks = list(self._lane_tasks)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)

    async def settle(self, quiet: float = 0.05, timeout: float = 5.0) -> None:
        """As ``CountingProxy.settle``, but also waits for held bytes (not while dropped: they wait for ``restore``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.dropped and any(lane.queue for f in self._faults.values() for lane in f.lanes.values()):
            if loop.time() >= deadline:
                raise TimeoutError(f"held bytes were not delivered within {timeout}s")
            await asyncio.sleep(0.01)
        await super().settle(quiet, max(deadline - loop.time(), quiet))
