"""How long another OS process keeps serving an old value from its L1 after a change.

A reader process runs a ``HybridCacheAdapter`` that reads one key in a loop (yielding to its event
loop between reads, as an application does) and reports every new value it sees, with the time on
the machine's monotonic clock (shared by all processes). This process changes the value through a
plain ``RedisCacheAdapter`` and measures, for each change, the time from just before the write was
sent to the moment the reader first served the new value. The reader serves from its L1 between
changes (its L1 hits are reported), so the window measured is the invalidation's.

Run alone: ``python -m bench.staleness [--changes N] [--cluster]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from typing import Any

from rediscache import CacheKey, RedisCacheAdapter

READER = """
import asyncio, json, sys, time
from rediscache import CacheKey, HybridCacheAdapter

async def main(url, prefix, cluster):
    async with HybridCacheAdapter(url, key_prefix=prefix, cluster=cluster, l1_ttl=None) as cache:
        if not await cache.wait_until_coherent(10):
            raise SystemExit("never subscribed")
        print(json.dumps({"ready": True}), flush=True)
        seen = object()
        key = CacheKey(key="k")
        while True:
            entry = await cache.get(key)
            value = None if entry is None else entry.value
            if value != seen:
                seen = value
                l1_hits = (await cache.get_stats()).model_extra["l1_hits"]
                print(json.dumps({"value": value, "at": time.monotonic(), "l1_hits": l1_hits}), flush=True)
            await asyncio.sleep(0)

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] == "1"))
"""


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(
    url: str, *, changes: int = 300, cluster: bool = False, prefix: str = "bench-stale"
) -> dict[str, Any]:
    """The staleness window's distribution (milliseconds) over ``changes`` changes of one key."""
    reader = await asyncio.create_subprocess_exec(
        sys.executable, "-c", READER, url, prefix, "1" if cluster else "0", stdout=asyncio.subprocess.PIPE
    )
    assert reader.stdout is not None
    windows: list[float] = []
    first_hits = last_hits = 0
    async with RedisCacheAdapter(url, key_prefix=prefix, cluster=cluster) as writer:
        try:
            assert json.loads(await asyncio.wait_for(reader.stdout.readline(), 30)) == {"ready": True}
            await writer.set(CacheKey(key="k"), -1)
            for version in range(changes):
                await asyncio.sleep(random.uniform(0.002, 0.006))  # the reader serves from L1 meanwhile
                sent = time.monotonic()
                await writer.set(CacheKey(key="k"), version)
                while True:
                    report = json.loads(await asyncio.wait_for(reader.stdout.readline(), 10))
                    if report["value"] == version:
                        windows.append((report["at"] - sent) * 1000)
                        last_hits = report["l1_hits"]
                        first_hits = first_hits or last_hits
                        break
        finally:
            reader.kill()
            await reader.wait()
            await writer.clear()
    return {
        "changes": len(windows),
        "p50_ms": round(statistics.median(windows), 3),
        "p90_ms": round(_percentile(windows, 0.90), 3),
        "p99_ms": round(_percentile(windows, 0.99), 3),
        "max_ms": round(max(windows), 3),
        "reader_l1_hits": last_hits - first_hits,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=300)
    parser.add_argument("--cluster", action="store_true")
    parser.add_argument("--url", default=None, help="a server you own; default: a throwaway one")
    args = parser.parse_args()

    async def run(url: str) -> None:
        print(json.dumps(await measure(url, changes=args.changes, cluster=args.cluster)))

    if args.url:
        asyncio.run(run(args.url))
        return
    from bench.servers import bench_cluster, bench_server

    with bench_cluster() if args.cluster else bench_server() as server:
        asyncio.run(run(server.url))


if __name__ == "__main__":
    main()
