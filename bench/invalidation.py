"""delete_by_tags: the time of one invalidation of a tag with N members, and its longest Redis command.

For each size and repetition, each library first writes N entries carrying one common tag with its
own batch API (not timed), then one invalidation of that tag is timed. The libraries alternate who
goes first from one repetition to the next.

- rediscache (prefix ``bench-rc-inv``): ``set_many`` in chunks of 1000 (``CacheKey(..., tags=[tag])``), then
  ``delete_by_tags([tag])``, which returns the exact count.
- cashews: it has no batch write with tags; ``set_many`` writes the values and ``set_add`` adds the
  keys to the tag's set ``_tag:<tag>``, exactly what ``set(key, value, tags=[tag])`` writes. The tag
  is registered with ``register_tag`` against the keys' template. Then ``delete_tags(tag)``; it
  returns nothing, so its count is the keys present before minus those left after (SCAN, not timed).

Around every timed invalidation the SLOWLOG is reset and read (threshold 1 ms): the longest single
command of the invalidation, or "none over 1 ms".
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import redis

from bench.libraries import CASHEWS_DB, CS_PREFIX, StandaloneClients
from bench.runner import describe_error
from bench.servers import BenchServer, slowlog_max, slowlog_reset
from bench.workloads import PAYLOAD
from rediscache import CacheKey, RedisCacheAdapter

__all__ = ["measure_cluster_invalidation", "measure_invalidation"]

#: rediscache's invalidation runs on a cache of its own, so "nothing left" means exactly that.
INVALIDATION_PREFIX = "bench-rc-inv"
CHUNK = 1000
TTL = timedelta(hours=1)
TTL_S = 3600


def _tag(size: int, rep: int) -> str:
    return f"inv{size}r{rep}"


async def rc_populate(rc: RedisCacheAdapter, size: int, tag: str) -> None:
    for start in range(0, size, CHUNK):
        keys = range(start, min(start + CHUNK, size))
        await rc.set_many([(CacheKey(key=f"{tag}:{n}", tags=[tag]), PAYLOAD) for n in keys], ttl=TTL)


async def rc_invalidate(rc: RedisCacheAdapter, tag: str) -> int:
    return await rc.delete_by_tags([tag])


async def cashews_populate(c: StandaloneClients, size: int, tag: str) -> None:
    cache = c.cashews
    cache.register_tag(tag, CS_PREFIX + tag + ":{n}")
    for start in range(0, size, CHUNK):
        keys = [f"{CS_PREFIX}{tag}:{n}" for n in range(start, min(start + CHUNK, size))]
        await cache.set_many(dict.fromkeys(keys, PAYLOAD), expire=TTL_S)
        await cache.set_add(f"_tag:{tag}", *keys, expire=TTL_S)


async def cashews_invalidate(c: StandaloneClients, tag: str) -> None:
    await c.cashews.delete_tags(tag)


def _count_keys(server: BenchServer, db: int, pattern: str) -> int:
    with redis.Redis(host=server.host, port=server.port, db=db) as client:
        return sum(1 for _ in client.scan_iter(match=pattern, count=1000))


async def rc_run(rc: RedisCacheAdapter, servers: list[BenchServer], size: int, tag: str) -> dict[str, Any]:
    """Populate (not timed), then time one ``delete_by_tags``; its count must be exact and nothing left."""
    await rc_populate(rc, size, tag)
    slowlog_reset(servers)
    start = time.perf_counter()
    count = await rc_invalidate(rc, tag)
    seconds = time.perf_counter() - start
    slow = slowlog_max(servers)
    left = (await rc.get_stats()).total_entries
    return {"seconds": seconds, "count": count, "exact": count == size and left == 0, "slowlog": slow}


async def cashews_run(c: StandaloneClients, server: BenchServer, size: int, tag: str) -> dict[str, Any]:
    """Populate (not timed), then time one ``delete_tags``; counted by SCAN before and after (not timed)."""
    pattern = f"{CS_PREFIX}{tag}:*"
    await cashews_populate(c, size, tag)
    before = _count_keys(server, CASHEWS_DB, pattern)
    slowlog_reset([server])
    start = time.perf_counter()
    await cashews_invalidate(c, tag)
    seconds = time.perf_counter() - start
    slow = slowlog_max([server])
    after = _count_keys(server, CASHEWS_DB, pattern)
    return {"seconds": seconds, "count": before - after, "exact": before == size and after == 0, "slowlog": slow}


async def measure_invalidation(
    c: StandaloneClients,
    server: BenchServer,
    sizes: tuple[int, ...],
    repetitions: int,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    rc = RedisCacheAdapter(server.url, key_prefix=INVALIDATION_PREFIX)
    try:
        return await _measure(c, rc, server, sizes, repetitions, log)
    finally:
        await rc.close()


async def _measure(
    c: StandaloneClients,
    rc: RedisCacheAdapter,
    server: BenchServer,
    sizes: tuple[int, ...],
    repetitions: int,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    results = []
    for size in sizes:
        runs: dict[str, list[dict[str, Any]]] = {"rediscache": [], "cashews": []}
        errors: dict[str, str] = {}
        for rep in range(repetitions):
            order = ["rediscache", "cashews"] if rep % 2 == 0 else ["cashews", "rediscache"]
            for library in order:
                if library in errors:
                    continue
                try:
                    if library == "rediscache":
                        runs[library].append(await rc_run(rc, [server], size, _tag(size, rep)))
                    else:
                        runs[library].append(await cashews_run(c, server, size, _tag(size, rep)))
                except Exception as exc:
                    errors[library] = describe_error(exc)
                    log(f"  ! delete_by_tags {size} {library}: {errors[library]}")
        results.append(_summarize("standalone", size, runs, errors))
        log(_one_line(results[-1]))
    return results


async def measure_cluster_invalidation(
    url: str, nodes: list[BenchServer], size: int, repetitions: int, log: Callable[[str], None]
) -> dict[str, Any]:
    rc = RedisCacheAdapter(url, cluster=True, key_prefix=INVALIDATION_PREFIX)
    try:
        return await _measure_cluster(rc, nodes, size, repetitions, log)
    finally:
        await rc.close()


async def _measure_cluster(
    rc: RedisCacheAdapter, nodes: list[BenchServer], size: int, repetitions: int, log: Callable[[str], None]
) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"rediscache": []}
    errors: dict[str, str] = {}
    for rep in range(repetitions):
        try:
            runs["rediscache"].append(await rc_run(rc, nodes, size, _tag(size, rep)))
        except Exception as exc:
            errors["rediscache"] = describe_error(exc)
            log(f"  ! cluster delete_by_tags {size}: {errors['rediscache']}")
            break
    summary = _summarize("cluster", size, runs, errors)
    log(_one_line(summary))
    return summary


def _summarize(
    topology: str, size: int, runs: dict[str, list[dict[str, Any]]], errors: dict[str, str]
) -> dict[str, Any]:
    libraries: dict[str, Any] = {}
    for library, library_runs in runs.items():
        seconds = [run["seconds"] for run in library_runs]
        longest = [run["slowlog"]["longest_ms"] for run in library_runs if run["slowlog"]["longest_ms"] is not None]
        typical = [run["slowlog"]["median_logged_ms"] for run in library_runs if run["slowlog"].get("median_logged_ms")]
        logged = [run["slowlog"]["logged"] for run in library_runs]
        libraries[library] = {
            "median_seconds": statistics.median(seconds) if seconds else None,
            "all_exact": all(run["exact"] for run in library_runs) if library_runs else None,
            "longest_command_ms": max(longest) if longest else None,
            "median_logged_command_ms": statistics.median(typical) if typical else None,
            "commands_logged_per_run": statistics.median(logged) if logged else None,
            "slowlog_threshold_ms": library_runs[0]["slowlog"]["threshold_ms"] if library_runs else None,
            "runs": library_runs,
            "error": errors.get(library),
        }
    ratio = None
    if "cashews" in runs and runs["rediscache"] and runs["cashews"]:
        pairs = [rc["seconds"] / cs["seconds"] for rc, cs in zip(runs["rediscache"], runs["cashews"], strict=False)]
        ratio = statistics.median(pairs) if pairs else None
    return {"topology": topology, "size": size, "libraries": libraries, "rc_over_cashews": ratio}


def _one_line(summary: dict[str, Any]) -> str:
    cells = []
    for library, data in summary["libraries"].items():
        if data["error"]:
            cells.append(f"{library}=ERROR")
        elif data["median_seconds"] is not None:
            longest = data["longest_command_ms"]
            slow = f", longest {longest:.1f} ms" if longest is not None else ", none over 1 ms"
            cells.append(f"{library}={data['median_seconds'] * 1000:.0f} ms (exact={data['all_exact']}{slow})")
    return f"  {summary['topology']}/delete_by_tags/{summary['size']:<12} " + ", ".join(cells)
