"""Redis memory per entry: ``used_memory`` growth for N entries, against plain SET of the same payload.

Runs on a server of its own (fresh, started for this), flushed before each case. Payloads of 100 B,
1 KiB and 4 KiB: the codec's output (rediscache's header byte included) is exactly that long, and
plain SET writes those very bytes. rediscache writes with ``set_many`` (chunks of 1000); plain SET
writes under similar key names, in pipelines. For each payload size:

- with namespace + 2 tags: namespace ``tenant:{i % 10}``, tags ``cat:{i % 100}`` and ``all`` (tags
  shared by many entries, as real tags are); plain keys ``bench-plain:tenant:{i % 10}:item:{i}``;
- without namespace or tags; plain keys ``bench-plain:item:{i}``;

each with a TTL of one hour on both sides (``PX`` for plain SET), and without any TTL: 12 cases.
The adapter is used once before the baseline is read, so its Lua scripts are not counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from typing import Any

from redis.asyncio import Redis

from bench.runner import describe_error
from bench.servers import BenchServer, used_memory
from rediscache import CacheKey, MsgpackCodec, RedisCacheAdapter

__all__ = ["PAYLOAD_SIZES", "measure_memory"]

CHUNK = 1000
TTL = timedelta(hours=1)
#: Sizes of the stored payload (the codec's output), in bytes.
PAYLOAD_SIZES = (100, 1024, 4096)


def _encoded(body: int) -> int:
    return len(MsgpackCodec().encode(_value(0, body), "item:0"))


def _value(i: int, body: int) -> dict[str, Any]:
    return {"name": f"product {i:08d}", "body": "x" * body}  # the same size for every i < 10**8


@cache
def _body_for(size: int) -> int:
    """The body length whose encoded value is exactly ``size`` bytes."""
    body = max(size - 40, 0)
    while _encoded(body) < size:
        body += 1
    while body > 0 and _encoded(body) > size:
        body -= 1
    if _encoded(body) != size:
        raise ValueError(f"no payload of exactly {size} bytes (closest: {_encoded(body)})")
    return body


def payload(i: int, size: int) -> dict[str, Any]:
    """A value of entry ``i`` whose stored payload is exactly ``size`` bytes."""
    return _value(i, _body_for(size))


def _rc_key(i: int, tagged: bool) -> CacheKey:
    if tagged:
        return CacheKey(key=f"item:{i}", namespace=f"tenant:{i % 10}", tags=[f"cat:{i % 100}", "all"])
    return CacheKey(key=f"item:{i}")


async def _settle(server: BenchServer) -> int:
    await asyncio.sleep(0.2)  # let lazy frees and client buffers settle
    return used_memory(server)


async def _rediscache_case(server: BenchServer, n: int, size: int, tagged: bool, ttl: timedelta | None) -> int:
    async with RedisCacheAdapter(server.url, key_prefix="bench-mem") as rc:
        await rc.get(CacheKey(key="warm-up"))  # scripts loaded
        before = await _settle(server)
        for start in range(0, n, CHUNK):
            items = [(_rc_key(i, tagged), payload(i, size)) for i in range(start, min(start + CHUNK, n))]
            await rc.set_many(items, ttl=ttl)
        return await _settle(server) - before


async def _plain_case(server: BenchServer, n: int, size: int, tagged: bool, ttl: timedelta | None) -> int:
    encode = MsgpackCodec().encode  # the very payload bytes rediscache stores (its default codec)
    raw = Redis.from_url(server.url)
    try:
        await raw.ping()
        before = await _settle(server)
        for start in range(0, n, CHUNK):
            pipe = raw.pipeline(transaction=False)
            for i in range(start, min(start + CHUNK, n)):
                name = f"tenant:{i % 10}:item:{i}" if tagged else f"item:{i}"
                data = encode(payload(i, size), name)
                pipe.set(f"bench-plain:{name}", data, px=int(ttl.total_seconds() * 1000) if ttl else None)
            await pipe.execute()
        return await _settle(server) - before
    finally:
        await raw.aclose()


def _size_name(size: int) -> str:
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"


async def measure_memory(server: BenchServer, n: int, log: Callable[[str], None]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for size in PAYLOAD_SIZES:
        for tagged in (True, False):
            for ttl in (TTL, None):
                name = "namespace + 2 tags" if tagged else "no namespace, no tags"
                case: dict[str, Any] = {
                    "case": name + (", TTL 1 h" if ttl else ", no TTL"),
                    "size": _size_name(size),
                    "tagged": tagged,
                    "ttl": ttl is not None,
                    "entries": n,
                    "payload_bytes": size,
                }
                try:
                    server.admin.flushall()
                    plain = await _plain_case(server, n, size, tagged, ttl)
                    server.admin.flushall()
                    cached = await _rediscache_case(server, n, size, tagged, ttl)
                    server.admin.flushall()
                    case.update(
                        plain_bytes_per_entry=plain / n,
                        rediscache_bytes_per_entry=cached / n,
                        ratio=cached / plain if plain > 0 else None,
                        error=None,
                    )
                    log(
                        f"  memory {case['size']:>6} {case['case']:<36} plain SET {plain / n:7.0f} B/entry, "
                        f"rediscache {cached / n:7.0f} B/entry, x{case['ratio']:.2f}"
                    )
                except Exception as exc:
                    case["error"] = describe_error(exc)
                    log(f"  ! memory {case['size']} {case['case']}: {case['error']}")
                results.append(case)
    return results
