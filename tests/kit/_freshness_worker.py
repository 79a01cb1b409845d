"""One process of the multi-process freshness tests (run by test_freshness_processes.py, not by pytest).

Usage:
    python _freshness_worker.py outage REDIS_URL KEY_PREFIX CALLERS KEYS
    python _freshness_worker.py refresh REDIS_URL KEY_PREFIX CALLS

Each worker connects, counts itself in ``<prefix>:ready`` and waits for the test to set ``<prefix>:go``
to the start time (wall clock, seconds since the epoch), so a slow start-up shifts nothing.

``outage``: CALLERS concurrent callers read KEYS keys through ``get_or_set`` with fail-safe, on a
timeline shared by every worker (from the start time): the database is up, then down for
OUTAGE seconds, then up again. Prints the errors callers saw, the factory calls made (time, and
whether the database was down), and what each caller got (time, key, when the value was computed).

``refresh``: makes CALLS concurrent ``get_or_set`` calls with eager refresh on the key ``hot``
(which the test stored and let age past the threshold), timing each; waits for the background
refresh; prints the timings, when each call returned, and the service's health. The factory notes
in Redis when it finished (``<prefix>:factory-finished``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import sys
import time
from datetime import timedelta
from typing import Any

import redis.asyncio

from rediscache import CacheKey, ConnectionOptions, EntryOptions, RedisCacheAdapter
from rediscache.kit import CacheService

# The outage timeline, in seconds from START (shared with the test).
WARM_UNTIL = 1.5
OUTAGE_FROM = 2.0
OUTAGE = 10.0
THROTTLE = 2.0
TTL = timedelta(seconds=1)
RUN_UNTIL = OUTAGE_FROM + OUTAGE + THROTTLE + 1.5
OUTAGE_OPTIONS = EntryOptions(
    fail_safe=True, fail_safe_throttle=timedelta(seconds=THROTTLE), fail_safe_max_duration=timedelta(minutes=1)
)

REFRESH_TTL = timedelta(seconds=4)
REFRESH_OPTIONS = EntryOptions(eager_refresh_threshold=0.5)
REFRESH_FACTORY_SECONDS = 1.0


async def ready_then_start(client: redis.asyncio.Redis, prefix: str) -> float:
    """Count this worker as ready, wait for the test's start signal; the start time."""
    await client.incr(f"{prefix}:ready")
    deadline = time.monotonic() + 60
    while (go := await client.get(f"{prefix}:go")) is None:
        if time.monotonic() > deadline:
            raise TimeoutError("no start signal")
        await asyncio.sleep(0.005)
    start = float(go)
    await asyncio.sleep(max(0.0, start - time.time()))
    return start


async def outage(url: str, prefix: str, callers: int, keys: int) -> None:
    client = redis.asyncio.Redis.from_url(url)
    # Generous deadlines: the test is about the database failing, not Redis; on a loaded 2-core
    # machine a burst of 100 callers' round trips can pass the 1 s default budget.
    adapter = RedisCacheAdapter(
        url, key_prefix=prefix, options=ConnectionOptions(socket_timeout=2, operation_timeout=4)
    )
    service = CacheService(adapter, default_options=OUTAGE_OPTIONS, lock_wait=timedelta(seconds=5))
    factory_calls: list[tuple[float, bool]] = []
    errors: list[tuple[float, str]] = []
    seen: list[tuple[float, int, float]] = []

    def make_factory(key: int) -> Any:
        async def factory() -> dict[str, Any]:
            now = time.time() - start
            down = OUTAGE_FROM <= now < OUTAGE_FROM + OUTAGE
            factory_calls.append((now, down))
            if down:
                raise ConnectionError("database is down")
            return {"key": key, "at": now}

        return factory

    async def caller(index: int) -> None:
        n = index
        while (now := time.time() - start) < RUN_UNTIL:
            key = n % keys
            n += 7
            try:
                value = await service.get_or_set(f"item:{key}", make_factory(key), ttl=TTL)
            except Exception as exc:  # what the test counts: an error that reached a caller
                errors.append((now, repr(exc)))
            else:
                seen.append((time.time() - start, key, value["at"]))
            await asyncio.sleep(0.02)

    try:
        await asyncio.gather(*(adapter.exists(CacheKey(key="warm-up")) for _ in range(callers)))
        start = await ready_then_start(client, prefix)
        await asyncio.gather(*(caller(i) for i in range(callers)))
        health = dataclasses.asdict(service.health())
        print(json.dumps({"errors": errors, "factory_calls": factory_calls, "seen": seen, "health": health}))
    finally:
        await adapter.close()
        await client.aclose()


async def refresh(url: str, prefix: str, calls: int) -> None:
    client = redis.asyncio.Redis.from_url(url)
    adapter = RedisCacheAdapter(url, key_prefix=prefix)
    service = CacheService(adapter)
    try:
        # Open the connections and load the scripts before the start line.
        await asyncio.gather(*(adapter.exists(CacheKey(key="warm-up")) for _ in range(calls)))
        # What a latency-minded service does once it has started (docs/operations.md, "Start-up"): one full
        # collection, then the start-up objects frozen out of later ones. Otherwise the interpreter's first
        # full collection (12-17 ms here, as long again on a shared core) lands in whichever burst comes
        # first, with or without the cache.
        gc.collect()
        gc.freeze()
        pauses: list[float] = []
        gc.callbacks.append(_timing(pauses))
        await ready_then_start(client, prefix)

        async def factory() -> str:
            await client.incr(f"{prefix}:factory-calls")
            await asyncio.sleep(REFRESH_FACTORY_SECONDS)
            await client.set(f"{prefix}:factory-finished", repr(time.time()))
            return "refreshed"

        async def timed() -> tuple[str, float, float]:
            started = time.perf_counter()
            value = await service.get_or_set("hot", factory, ttl=REFRESH_TTL, options=REFRESH_OPTIONS)
            return value, time.perf_counter() - started, time.time()

        results = await asyncio.gather(*(timed() for _ in range(calls)))
        await asyncio.sleep(REFRESH_FACTORY_SECONDS + 0.5)  # let a background refresh of ours finish
        print(
            json.dumps(
                {
                    "values": [value for value, _, _ in results],
                    "elapsed": [elapsed for _, elapsed, _ in results],
                    "returned": [returned for _, _, returned in results],
                    "health": dataclasses.asdict(service.health()),
                    "gc_pauses": pauses,
                }
            )
        )
    finally:
        await adapter.close()
        await client.aclose()


def _timing(pauses: list[float]) -> Any:
    """A ``gc.callbacks`` entry that appends each collection's duration (seconds) to ``pauses``."""
    started = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - started[0])

    return callback


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "outage":
        asyncio.run(outage(args[0], args[1], int(args[2]), int(args[3])))
    else:
        asyncio.run(refresh(args[0], args[1], int(args[2])))
