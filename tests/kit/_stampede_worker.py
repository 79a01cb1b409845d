"""One process of the multi-process stampede test (run by test_stampede_processes.py, not by pytest).

Usage: python _stampede_worker.py REDIS_URL KEY_PREFIX PROCESSES CALLS

Waits until PROCESSES workers are ready (a counter in Redis), then makes CALLS concurrent
``get_or_set`` calls on one cold key with a slow factory that counts its runs in Redis
(``<prefix>:factory-calls``), and prints the results and the service's health as JSON.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
from datetime import timedelta

import redis.asyncio

from rediscache import CacheKey, RedisCacheAdapter
from rediscache.kit import CacheService

BARRIER_TIMEOUT = 30.0
FACTORY_SECONDS = 0.3


async def main(url: str, prefix: str, processes: int, calls: int) -> None:
    client = redis.asyncio.Redis.from_url(url)
    adapter = RedisCacheAdapter(url, key_prefix=prefix)
    service = CacheService(adapter)
    try:
        await adapter.exists(CacheKey(key="warm-up"))  # connect and load the scripts before the start line
        await client.incr(f"{prefix}:ready")
        deadline = time.monotonic() + BARRIER_TIMEOUT
        while int(await client.get(f"{prefix}:ready") or 0) < processes:
            if time.monotonic() > deadline:
                raise TimeoutError("the other workers did not start")
            await asyncio.sleep(0.005)

        async def factory() -> dict[str, str]:
            await client.incr(f"{prefix}:factory-calls")
            await asyncio.sleep(FACTORY_SECONDS)  # a slow source: the window in which a stampede would happen
            return {"value": "computed"}

        results = await asyncio.gather(
            *(service.get_or_set("cold", factory, ttl=timedelta(minutes=5)) for _ in range(calls))
        )
        print(json.dumps({"results": results, "health": dataclasses.asdict(service.health())}))
    finally:
        await adapter.close()
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
