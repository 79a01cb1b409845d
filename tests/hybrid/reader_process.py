"""A second OS process for the coherence tests: a HybridCacheAdapter that reads one key in a loop
and prints (as JSON lines) every change in what it sees, with its L1 hit count.

Usage: python reader_process.py URL PREFIX KEY [--cluster]
"""

from __future__ import annotations

import asyncio
import json
import sys

from rediscache import CacheKey, HybridCacheAdapter


async def main(url: str, prefix: str, key: str, cluster: bool) -> None:
    async with HybridCacheAdapter(url, key_prefix=prefix, cluster=cluster, l1_ttl=None) as cache:
        if not await cache.wait_until_coherent(10):
            print(json.dumps({"error": "never subscribed"}), flush=True)
            return
        print(json.dumps({"ready": True}), flush=True)
        seen: object = object()
        while True:
            entry = await cache.get(CacheKey(key=key))
            value = None if entry is None else entry.value
            if value != seen:
                seen = value
                stats = await cache.get_stats()
                print(json.dumps({"value": value, "l1_hits": stats.model_extra["l1_hits"]}), flush=True)
            await asyncio.sleep(0.002)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], "--cluster" in sys.argv))
