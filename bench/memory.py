"""Redis memory per entry: ``used_memory`` growth for N entries of a 1 KiB payload, against plain SET.

Runs on a server of its own (fresh, started for this), flushed before each case. rediscache writes
with ``set_many`` (chunks of 1000); plain SET writes the very payload bytes rediscache stores (its
codec's output, header byte included) under similar key names, in pipelines. Cases:

- with namespace + 2 tags: namespace ``tenant:{i % 10}``, tags ``cat:{i % 100}`` and ``all`` (tags
  shared by many entries, as real tags are); plain keys ``bench-plain:tenant:{i % 10}:item:{i}``;
- without namespace or tags; plain keys ``bench-plain:item:{i}``;

each with a TTL of one hour on both sides (``PX`` for plain SET), and without any TTL. The
adapter is used once before the baseline is read, so its Lua scripts are not counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from redis.asyncio import Redis

from bench.runner import describe_error
from bench.servers import BenchServer, used_memory
from rediscache import CacheKey, MsgpackCodec, RedisCacheAdapter

__all__ = ["measure_memory"]

CHUNK = 1000
TTL = timedelta(hours=1)


def big_payload(i: int) -> dict[str, Any]:
    """About 1 KiB in msgpack (1024 bytes with rediscache's header byte)."""
    return {"id": i, "name": f"product {i:08d}", "body": "x" * 986}


def _rc_key(i: int, tagged: bool) -> CacheKey:
    if tagged:
        return CacheKey(key=f"item:{i}", namespace=f"tenant:{i % 10}", tags=[f"cat:{i % 100}", "all"])
    return CacheKey(key=f"item:{i}")


async def _settle(server: BenchServer) -> int:
    await asyncio.sleep(0.2)  # let lazy frees and client buffers settle
    return used_memory(server)


async def _rediscache_case(server: BenchServer, n: int, tagged: bool, ttl: timedelta | None) -> int:
    async with RedisCacheAdapter(server.url, key_prefix="bench-mem") as rc:
        await rc.get(CacheKey(key="warm-up"))  # scripts loaded, stats hash created
        before = await _settle(server)
        for start in range(0, n, CHUNK):
            items = [(_rc_key(i, tagged), big_payload(i)) for i in range(start, min(start + CHUNK, n))]
            await rc.set_many(items, ttl=ttl)
        return await _settle(server) - before


async def _plain_case(server: BenchServer, n: int, tagged: bool, ttl: timedelta | None) -> int:
    encode = MsgpackCodec().encode  # the very payload bytes rediscache stores (its default codec)
    raw = Redis.from_url(server.url)
    try:
        await raw.ping()
        before = await _settle(server)
        for start in range(0, n, CHUNK):
            pipe = raw.pipeline(transaction=False)
            for i in range(start, min(start + CHUNK, n)):
                name = f"tenant:{i % 10}:item:{i}" if tagged else f"item:{i}"
                payload = encode(big_payload(i), name)
                pipe.set(f"bench-plain:{name}", payload, px=int(ttl.total_seconds() * 1000) if ttl else None)
            await pipe.execute()
        return await _settle(server) - before
    finally:
        await raw.aclose()


async def measure_memory(server: BenchServer, n: int, log: Callable[[str], None]) -> list[dict[str, Any]]:
    encoded = len(MsgpackCodec().encode(big_payload(n // 2), "item:0"))
    results: list[dict[str, Any]] = []
    for tagged in (True, False):
        for ttl in (TTL, None):
            name = "namespace + 2 tags" if tagged else "no namespace, no tags"
            case: dict[str, Any] = {
                "case": name + (", TTL 1 h" if ttl else ", no TTL"),
                "tagged": tagged,
                "ttl": ttl is not None,
                "entries": n,
                "payload_bytes": encoded,
            }
            try:
                server.admin.flushall()
                plain = await _plain_case(server, n, tagged, ttl)
                server.admin.flushall()
                cached = await _rediscache_case(server, n, tagged, ttl)
                server.admin.flushall()
                case.update(
                    plain_bytes_per_entry=plain / n,
                    rediscache_bytes_per_entry=cached / n,
                    ratio=cached / plain if plain > 0 else None,
                    error=None,
                )
                log(
                    f"  memory {case['case']:<36} plain SET {plain / n:7.0f} B/entry, "
                    f"rediscache {cached / n:7.0f} B/entry, x{case['ratio']:.2f}"
                )
            except Exception as exc:
                case["error"] = describe_error(exc)
                log(f"  ! memory {case['case']}: {case['error']}")
            results.append(case)
    return results
