"""A counting TCP proxy: how many Redis commands, and how many round trips, does the code under test make?

Usage (the ``counting_proxy`` fixture in tests/conftest.py does the ``async with`` for you)::

    async with CountingProxy(server.host, server.port) as proxy:
        client = redis.asyncio.Redis.from_url(proxy.url)
        await client.ping()          # opens the connection (redis-py also sends CLIENT SETINFO)
        await proxy.settle()
        proxy.reset()                # count only what follows
        await client.get("k")
        assert proxy.commands == ["GET"] and proxy.round_trips == 1
        await client.aclose()

What is counted (client -> server direction only):

* ``commands``: the name, upper-cased, of every command the clients sent, in the order the proxy
  read them: one per top-level RESP array (``*N\\r\\n$len\\r\\nNAME\\r\\n...``) and one per non-empty
  inline command line (``PING\\r\\n``). MULTI/EXEC of a transaction are commands too.
* ``round_trips``: per connection, the number of times the client started sending after it had
  received something from the server (or for the first time). A pipeline written at once is one
  round trip however many commands it holds; N awaited commands are N round trips. Round trips of
  concurrent connections add up.

Counts are updated when the proxy reads the client's bytes, before it forwards them, so once an
awaited command has returned it has been counted. ``settle()`` is for traffic nobody awaited
(fire-and-forget writes, background tasks, closing connections): it waits until no byte has moved
either way for a short while.

Redis Cluster: a proxy in front of one node does not help, because the nodes announce their own
addresses (CLUSTER SLOTS, MOVED) and the client then bypasses the proxy. Round-trip and command
counting is done against the standalone server; cluster tests count per node on the server side
instead (``INFO commandstats`` / ``CLIENT LIST``). The proxy itself works in front of any host:port.

For latency, a dropped network or late replies, use its subclass ``FaultProxy`` (tests/support/faults.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

from .ports import free_port, port_range

_LISTEN_ATTEMPTS = 5

READ_SIZE = 65536

# Which way bytes travel through the proxy.
Direction = Literal["to_server", "to_client"]
TO_SERVER: Direction = "to_server"
TO_CLIENT: Direction = "to_client"


class RespCommandParser:
    """Incremental parser of the client -> server RESP stream that returns the names of complete commands.

    Bulk-string payloads other than the command name are skipped as they arrive, never buffered
    whole, so large values cost no memory. With ``keep_args=True`` they are kept instead, and
    ``feed_commands`` returns every complete command with its arguments (for matching on them).
    """

    def __init__(self, *, keep_args: bool = False) -> None:
        self._buffer = bytearray()
        self._items_left = 0  # items of the current command (array) still to read
        self._bulk_left: int | None = None  # bytes of the current bulk string (+ CRLF) still to read
        self._name: str | None = None  # the current command's name, once its first item is read
        self._keep_args = keep_args
        self._args: list[bytes] = []  # the current command's arguments (only with keep_args)
        self._commands: list[tuple[str, list[bytes]]] = []  # completed, not yet returned (only with keep_args)

    def feed(self, data: bytes) -> list[str]:
        """Add bytes from the stream; return the commands they complete."""
        self._buffer += data
        names: list[str] = []
        while self._step(names):
            pass
        return names

    def feed_commands(self, data: bytes) -> list[tuple[str, list[bytes]]]:
        """Like ``feed`` (needs ``keep_args=True``): each complete command as (NAME, [arguments])."""
        if not self._keep_args:
            raise RuntimeError("feed_commands() needs RespCommandParser(keep_args=True)")
        self.feed(data)
        commands, self._commands = self._commands, []
        return commands

    def _step(self, names: list[str]) -> bool:
        """Consume one protocol element if it is all buffered; False when more data is needed."""
        if self._bulk_left is not None:
            return self._consume_bulk(names)
        line = self._take_line()
        if line is None:
            return False
        if self._items_left:
            if line.startswith(b"$") and _to_int(line[1:]) >= 0:
                self._bulk_left = _to_int(line[1:]) + 2
            else:  # Null bulk or a non-bulk item: clients don't send these, but stay in sync.
                self._item_done(line, names)
        elif line.startswith(b"*"):
            self._items_left = max(_to_int(line[1:]), 0)  # "*0" / "*-1" carry no command
        elif line.strip():
            words = line.split()  # inline command, e.g. typed in telnet
            names.append(_name(words[0]))
            if self._keep_args:
                self._commands.append((_name(words[0]), words[1:]))
        return True

    def _consume_bulk(self, names: list[str]) -> bool:
        assert self._bulk_left is not None
        if self._name is None or self._keep_args:  # The command name (or a kept argument): wait for all of it.
            if len(self._buffer) < self._bulk_left:
                return False
            payload = bytes(self._buffer[: self._bulk_left - 2])
            del self._buffer[: self._bulk_left]
            self._bulk_left = None
            self._item_done(payload, names)
            return True
        skipped = min(self._bulk_left, len(self._buffer))
        del self._buffer[:skipped]
        self._bulk_left -= skipped
        if self._bulk_left:
            return False
        self._bulk_left = None
        self._item_done(b"", names)
        return True

    def _item_done(self, payload: bytes, names: list[str]) -> None:
        if self._name is None:
            self._name = _name(payload)
        elif self._keep_args:
            self._args.append(payload)
        self._items_left -= 1
        if self._items_left == 0:
            names.append(self._name)
            if self._keep_args:
                self._commands.append((self._name, self._args))
                self._args = []
            self._name = None

    def _take_line(self) -> bytes | None:
        end = self._buffer.find(b"\n")
        if end < 0:
            return None
        line = bytes(self._buffer[:end]).rstrip(b"\r")
        del self._buffer[: end + 1]
        return line


def _to_int(digits: bytes) -> int:
    try:
        return int(digits)
    except ValueError:
        return -1


def _name(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").upper()


@dataclass(eq=False)
class _Connection:
    client_writer: asyncio.StreamWriter
    server_writer: asyncio.StreamWriter
    parser: RespCommandParser = field(default_factory=RespCommandParser)
    # True once the client has sent data that nothing from the server has followed yet.
    awaiting_reply: bool = False

    def close(self) -> None:
        # Closing both transports makes both pumps read EOF, so the handler ends on its own.
        self.client_writer.close()
        self.server_writer.close()


class CountingProxy:
    """Forwards TCP connections from 127.0.0.1:<free port> to ``target_host:target_port``, counting."""

    def __init__(self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.listen_host = listen_host
        self.commands: list[str] = []
        self.round_trips = 0
        self.connections_opened = 0
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._connections: set[_Connection] = set()
        self._last_activity = 0.0

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> CountingProxy:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        if port_range() is None:
            self._server = await asyncio.start_server(self._handle, self.listen_host, 0)
        else:  # REDISCACHE_TEST_PORTS: listen inside the range, retrying a port taken meanwhile
            for attempt in range(_LISTEN_ATTEMPTS):
                try:
                    self._server = await asyncio.start_server(self._handle, self.listen_host, free_port())
                    break
                except OSError:
                    if attempt == _LISTEN_ATTEMPTS - 1:
                        raise
        assert self._server is not None
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and cut every proxied connection."""
        if self._server is not None:
            self._server.close()
        # Not Task.cancel() first: asyncio logs an error for a cancelled connection handler.
        for connection in list(self._connections):
            connection.close()
        if self._handlers:
            _, stuck = await asyncio.wait(self._handlers, timeout=1.0)
            for handler in stuck:  # e.g. still connecting to the target
                handler.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # -- what tests use ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the proxy is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"redis://{self.listen_host}:{self.port}"

    @property
    def busy_connections(self) -> int:
        """Connections whose client sent something the server has not answered yet (requests in flight)."""
        return sum(connection.awaiting_reply for connection in self._connections)

    def count(self, name: str) -> int:
        """How many times command ``name`` (any case) was sent."""
        return self.commands.count(name.upper())

    def counts(self) -> Counter[str]:
        return Counter(self.commands)

    def reset(self) -> None:
        """Forget what was counted so far (connections stay open)."""
        self.commands.clear()
        self.round_trips = 0

    async def settle(self, quiet: float = 0.05, timeout: float = 5.0) -> None:
        """Wait until no byte has moved in either direction for ``quiet`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (idle := loop.time() - self._last_activity) < quiet:
            if loop.time() >= deadline:
                raise TimeoutError(f"proxy traffic did not settle within {timeout}s")
            await asyncio.sleep(quiet - idle)

    # -- forwarding ----------------------------------------------------------------------------

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._proxy(client_reader, client_writer)
        finally:
            self._handlers.discard(task)

    async def _proxy(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            await _close(client_writer)  # The client sees what it would see with the server down.
            return
        self.connections_opened += 1
        connection = _Connection(client_writer, server_writer)
        self._connections.add(connection)
        pumps = [
            asyncio.create_task(self._client_to_server(client_reader, server_writer, connection)),
            asyncio.create_task(self._server_to_client(server_reader, client_writer, connection)),
        ]
        try:
            # Redis connections are not half-closed: when one side is done, so is the other.
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._connections.discard(connection)
            self._connection_done(connection)
            await _close(client_writer)
            await _close(server_writer)

    async def _client_to_server(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: _Connection
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(READ_SIZE):
                self._touch()
                if not connection.awaiting_reply:
                    self.round_trips += 1
                    connection.awaiting_reply = True
                self.commands += connection.parser.feed(data)
                await self._forward(connection, TO_SERVER, data, writer)

    async def _server_to_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: _Connection
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(READ_SIZE):
                self._touch()
                # Before forwarding: the client may send its next command as soon as it has this.
                connection.awaiting_reply = False
                await self._forward(connection, TO_CLIENT, data, writer)

    # Hooks for subclasses (tests/support/faults.py): what happens to bytes once counted, and
    # when a proxied connection is gone.

    async def _forward(
        self, connection: _Connection, direction: Direction, data: bytes, writer: asyncio.StreamWriter
    ) -> None:
        """Pass ``data`` on (here: at once). A ``direction`` pump reads its next bytes only after this returns."""
        writer.write(data)
        await writer.drain()

    def _connection_done(self, connection: _Connection) -> None:
        """Called once per proxied connection, after both pumps stopped and before the sockets close."""

    def _touch(self) -> None:
        self._last_activity = asyncio.get_running_loop().time()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
