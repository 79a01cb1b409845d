"""A short tour of rediscache: namespaces, tags, patterns, TTL and shared stats.

Runs against Redis when it can get one (REDIS_URL, else a throwaway redis-server started from the
binary on PATH) and otherwise on the embedded memory backend, and says which.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from rediscache import CacheAdapter, CacheKey, CacheService, CacheStats, MemoryCacheAdapter, RedisCacheAdapter, cached


@contextmanager
def throwaway_redis() -> Iterator[str | None]:
    """A private redis-server on a free port for the length of the demo, or None if there is none."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as workdir:
        server = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                workdir,
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            server.terminate()
            server.wait(timeout=10)


def table(title: str, stats: CacheStats) -> str:
    rows = [
        ("entries", stats.total_entries),
        ("hits", stats.total_hits),
        ("misses", stats.total_misses),
        ("hit rate", f"{stats.hit_rate:.0%}"),
        ("bytes", stats.memory_usage_bytes),
        ("oldest", stats.oldest_entry and stats.oldest_entry.isoformat(timespec="seconds")),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"  {title}", "  " + "-" * (width + 28)]
    lines += [f"  {name:<{width}} | {value}" for name, value in rows]
    return "\n".join(lines)


async def tour(cache: CacheAdapter, other: CacheAdapter | None) -> None:
    # Namespaces keep tenants apart; tags cut across them.
    for tenant in ("acme", "globex"):
        for n in range(3):
            key = CacheKey(key=f"user:{n}", namespace=f"tenant:{tenant}", tags=["users", f"user:{n}"])
            await cache.set(key, {"id": n, "tenant": tenant, "roles": ("reader",)})
    await cache.set(CacheKey(key="config"), {"theme": "dark"})
    await cache.set(CacheKey(key="session:xyz"), "short-lived", ttl=timedelta(milliseconds=200))

    entry = await cache.get(CacheKey(key="user:1", namespace="tenant:acme"))
    assert entry is not None
    print(f"get tenant:acme:user:1 -> {entry.value} (hit #{entry.hit_count}, tags {entry.key.tags})")
    await cache.get(CacheKey(key="nope"))

    if other is not None:
        seen = await other.get(CacheKey(key="config"))
        print(f"a second instance on the same prefix reads config -> {seen and seen.value}")

    removed = await cache.delete_by_namespace("tenant:globex")
    print(f"delete_by_namespace('tenant:globex') -> {removed} entries")
    removed = await cache.delete_by_tags(["user:1"])
    print(f"delete_by_tags(['user:1']) -> {removed} entry (only acme's is left to remove)")
    removed = await cache.delete_by_pattern("tenant:acme:user:[02]")
    print(f"delete_by_pattern('tenant:acme:user:[02]') -> {removed} entries")

    await asyncio.sleep(0.3)
    print(f"after 300 ms the 200 ms session is gone: exists -> {await cache.exists(CacheKey(key='session:xyz'))}")
    print(f"cleanup_expired() -> {await cache.cleanup_expired()} expired entry unindexed")
    print()
    title = "stats, read by the second instance" if other is not None else "stats"
    print(table(title, await (other or cache).get_stats()))


async def kit_tour(first: CacheAdapter, second: CacheAdapter) -> None:
    """The kit on top: get_or_set and @cached, shared by two instances."""
    one, two = CacheService(first), CacheService(second)
    calls = 0

    async def price_from_database() -> dict[str, object]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.2)  # a slow source: the other callers wait for this one
        return {"sku": "A-1", "price": "9.90"}

    results = await asyncio.gather(
        *(service.get_or_set("price:A-1", price_from_database, tags=["prices"]) for service in (one, two) * 10)
    )
    print(f"20 concurrent get_or_set on two instances -> {len(results)} answers, {calls} database call")

    @cached(two, ttl=timedelta(minutes=5), tags=["reports"])
    async def report(year: int, region: str = "eu") -> str:
        nonlocal calls
        calls += 1
        return f"report {year}/{region}"

    await report(2026)
    await report(2026, region="eu")  # the same call, spelled differently: one key
    print(
        f"@cached report(2026) twice -> {calls - 1} computation; invalidate_tags(['reports']) -> "
        f"{await one.invalidate_tags(['reports'])}"
    )


async def main() -> None:
    with throwaway_redis() as url:
        if url is None:
            print("No Redis found (set REDIS_URL or install redis-server): running on the embedded memory backend.\n")
            async with MemoryCacheAdapter(max_size=1000) as memory:
                await tour(memory, None)
            return
        print(f"Running on Redis at {url}, with two adapter instances sharing one cache.\n")
        prefix = f"demo{os.getpid()}"
        async with (
            RedisCacheAdapter(url, key_prefix=prefix) as first,
            RedisCacheAdapter(url, key_prefix=prefix) as second,
        ):
            await tour(first, second)
            print()
            await kit_tour(first, second)
            await first.clear()


if __name__ == "__main__":
    asyncio.run(main())
