"""The FaultProxy does what the network tests rely on: latency on every round trip (handshakes too),
a drop that answers nothing until restored, and one chosen reply held while its command has run.

Against the real session server; raw sockets where redis-py's own retries would hide what the
proxy did. The time bounds here are the proxy's own promises (a delay is at least what was asked).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import redis.asyncio
from support.faults import FaultProxy, RespReplyParser
from support.proxy import RespCommandParser
from support.redis_servers import RedisServer

QUIET = 0.3  # long enough to say "no answer came" on loopback


@asynccontextmanager
async def _raw(proxy: FaultProxy) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(proxy.listen_host, proxy.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        await writer.wait_closed()


async def _no_answer(reader: asyncio.StreamReader) -> bool:
    try:
        await asyncio.wait_for(reader.read(100), QUIET)
    except TimeoutError:
        return True
    return False


# -- reply framing ---------------------------------------------------------------------------------


def _ends_fed_bytewise(stream: bytes) -> list[int]:
    """Where the parser says replies end, fed one byte at a time (the worst split), as stream offsets."""
    parser = RespReplyParser()
    return [offset + at for offset in range(len(stream)) for at in parser.feed(stream[offset : offset + 1])]


def test_the_reply_parser_finds_the_end_of_each_resp2_reply_however_the_bytes_are_split() -> None:
    replies = [b"+OK\r\n", b"-ERR no\r\n", b":42\r\n", b"$5\r\nhe\r\no\r\n", b"$-1\r\n", b"*-1\r\n", b"*0\r\n"]
    replies.append(b"*3\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n+x\r\n")  # nested, with a null inside
    stream = b"".join(replies)
    expected = [sum(map(len, replies[: i + 1])) for i in range(len(replies))]

    assert RespReplyParser().feed(stream) == expected
    assert _ends_fed_bytewise(stream) == expected


def test_the_reply_parser_reads_resp3_and_skips_push_messages() -> None:
    # (bytes, whether it is a reply): a push message answers no command; an attribute belongs to
    # the reply it precedes.
    parts = [
        (b"%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n", True),
        (b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n", False),
        (b"|1\r\n+ttl\r\n:3\r\n~2\r\n,1.5\r\n#t\r\n", True),
        (b"*2\r\n|1\r\n+a\r\n:1\r\n:7\r\n%0\r\n", True),  # an attribute inside an array
        (b"_\r\n", True),
        (b"=7\r\ntxt:abc\r\n", True),
        (b"!3\r\nbad\r\n", True),
        (b"(12345678901234567890\r\n", True),
    ]
    stream = b"".join(part for part, _ in parts)
    expected = [sum(len(p) for p, _ in parts[: i + 1]) for i, (_, is_reply) in enumerate(parts) if is_reply]

    assert RespReplyParser().feed(stream) == expected
    assert _ends_fed_bytewise(stream) == expected


def test_the_command_parser_keeps_arguments_when_asked() -> None:
    parser = RespCommandParser(keep_args=True)
    stream = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\nv\r\nx\r\nPING now\r\n"
    commands = [command for i in range(len(stream)) for command in parser.feed_commands(stream[i : i + 1])]

    assert commands == [("SET", [b"k", b"v\r\nx"]), ("PING", [b"now"])]


# -- latency ---------------------------------------------------------------------------------------


async def test_a_delay_is_added_to_every_round_trip_including_a_new_connections_handshake(
    fault_proxy: FaultProxy,
) -> None:
    fault_proxy.set_delay(round_trip=0.2)
    client = redis.asyncio.Redis.from_url(fault_proxy.url)
    try:
        started = time.monotonic()
        await client.ping()  # connect: HELLO/CLIENT SETINFO round trip, then PING
        first = time.monotonic() - started
        started = time.monotonic()
        await client.ping()  # the connection is open now: one round trip
        second = time.monotonic() - started
    finally:
        await client.aclose()

    assert first >= 2 * 0.2
    assert second >= 0.2
    assert fault_proxy.count("PING") == 2


async def test_a_delay_is_latency_not_a_queue_bytes_sent_apart_arrive_apart(fault_proxy: FaultProxy) -> None:
    fault_proxy.set_delay(to_server=0.2, to_client=0.0)
    async with _raw(fault_proxy) as (reader, writer):
        started = time.monotonic()
        for _ in range(4):  # four writes 50 ms apart, each its own chunk
            writer.write(b"PING\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
        answers = await asyncio.wait_for(reader.readexactly(4 * len(b"+PONG\r\n")), 5)
        elapsed = time.monotonic() - started

    assert answers == b"+PONG\r\n" * 4
    # Each PING waited its own 0.2 s (last sent at ~0.15 s): about 0.35 s in all; one after the
    # other they would take 0.8 s.
    assert 0.2 + 0.15 <= elapsed < 0.7


async def test_the_delay_can_be_changed_and_removed_at_run_time(fault_proxy: FaultProxy) -> None:
    client = redis.asyncio.Redis.from_url(fault_proxy.url)
    try:
        await client.ping()
        fault_proxy.set_delay(round_trip=0.3)
        started = time.monotonic()
        await client.ping()
        slow = time.monotonic() - started
        fault_proxy.set_delay(round_trip=0.0)
        started = time.monotonic()
        await client.ping()
        fast = time.monotonic() - started
    finally:
        await client.aclose()

    assert slow >= 0.3
    assert fast < 0.3


# -- drop and restore ------------------------------------------------------------------------------


async def test_a_drop_answers_nothing_on_open_or_new_connections_until_restored(fault_proxy: FaultProxy) -> None:
    async with _raw(fault_proxy) as (reader, writer):
        writer.write(b"PING\r\n")
        assert await asyncio.wait_for(reader.readexactly(7), 5) == b"+PONG\r\n"

        fault_proxy.drop()
        writer.write(b"ECHO held\r\n")
        async with _raw(fault_proxy) as (new_reader, new_writer):  # accepted while dropped
            new_writer.write(b"PING\r\n")
            assert await _no_answer(reader)
            assert await _no_answer(new_reader)

            fault_proxy.restore()  # held bytes go through, in order
            assert await asyncio.wait_for(reader.readexactly(10), 5) == b"$4\r\nheld\r\n"
            assert await asyncio.wait_for(new_reader.readexactly(7), 5) == b"+PONG\r\n"


async def test_a_drop_that_discards_loses_the_bytes_sent_meanwhile(
    fault_proxy: FaultProxy, redis_server: RedisServer, key_prefix: str, redis_client: redis.asyncio.Redis
) -> None:
    async with _raw(fault_proxy) as (reader, writer):
        fault_proxy.drop(discard=True)
        writer.write(f"SET {key_prefix}lost 1\r\n".encode())
        assert await _no_answer(reader)
        fault_proxy.restore()
        writer.write(b"PING\r\n")
        assert await asyncio.wait_for(reader.readexactly(7), 5) == b"+PONG\r\n"

    assert await redis_client.exists(f"{key_prefix}lost") == 0
    assert fault_proxy.bytes_discarded == len(f"SET {key_prefix}lost 1\r\n")


async def test_a_held_reply_is_delivered_late_but_its_command_ran_at_once(
    fault_proxy: FaultProxy, key_prefix: str, redis_client: redis.asyncio.Redis
) -> None:
    marker = f"{key_prefix}counter"
    client = redis.asyncio.Redis.from_url(fault_proxy.url)
    try:
        await client.ping()
        # INCRBY: what redis-py sends for incr().
        late = fault_proxy.delay_reply(0.5, command="incrby", contains=marker.encode())
        pending = asyncio.create_task(client.incr(marker))
        await asyncio.sleep(0.2)

        assert not pending.done()
        assert await redis_client.get(marker) == b"1"  # straight to the server: it ran
        assert await asyncio.wait_for(pending, 5) == 1
    finally:
        await client.aclose()
    assert late.held == 1
    assert late.matches == 1


@pytest.mark.parametrize("protocol", [2, 3])
async def test_only_the_nth_matching_reply_is_held_and_replies_stay_paired_with_their_commands(
    fault_proxy: FaultProxy, key_prefix: str, protocol: int
) -> None:
    client = redis.asyncio.Redis.from_url(fault_proxy.url, protocol=protocol)
    key = f"{key_prefix}k"
    try:
        await client.set(key, "v")
        late = fault_proxy.delay_reply(0.4, command="GET", contains=key.encode(), nth=2)
        pipe = client.pipeline(transaction=False)
        pipe.get(key).echo("a").get(key).echo("b").hset(f"{key_prefix}h", mapping={"f": "1"}).hgetall(f"{key_prefix}h")
        started = time.monotonic()
        results = await pipe.execute()
        elapsed = time.monotonic() - started
        started = time.monotonic()
        after = await client.get(key)  # the rule fired once: this one is not held
        elapsed_after = time.monotonic() - started
    finally:
        await client.aclose()

    assert results == [b"v", b"a", b"v", b"b", 1, {b"f": b"1"}]
    assert after == b"v"
    assert late.held == 1
    assert late.matches == 3
    assert elapsed >= 0.4
    assert elapsed_after < 0.4
