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

**Other clients' latency** (invalidations of at least ``probe_min_size`` members): another OS process,
a plain synchronous redis-py client on a connection of its own, sends a ``GET`` every 0.5 ms (or as
soon as the previous one returned, when it is late) and records when each one started and how long
it took, on the machine's monotonic clock (shared by all processes). Before each library's timed
invalidation the probe runs for 0.5 s with nothing else going on (the idle window); then it runs
through the invalidation (the busy window: GETs sent between its first request and its return).
A GET held up by a long command holds back the probe's next ones too, so each late GET also stands
for the GETs a client sending every 0.5 ms regardless would have sent meanwhile, answered when it
was (HdrHistogram's correction for coordinated omission). Each window gives the GETs' p50, p99 and
max; each run, busy p99 / idle p99 of its own two windows. The probe is paused while entries are
being written.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
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


#: The probe: a GET every PROBE_INTERVAL seconds while on; stdin lines "on", "off", "stop" (dump and exit).
PROBE = r"""
import json, os, select, sys, time
import redis

client = redis.Redis(host=sys.argv[1], port=int(sys.argv[2]), socket_timeout=60)
key, interval = sys.argv[3], float(sys.argv[4])
client.get(key)
print("ready", flush=True)
starts, latencies = [], []
clock = time.monotonic
on = False
pending = b""
while True:
    if on:
        start = clock()
        client.get(key)
        end = clock()
        starts.append(start)
        latencies.append(end - start)
        due = max(due + interval, end)
        timeout = max(due - clock(), 0)
    else:
        timeout = None
    if not select.select([0], [], [], timeout)[0]:
        continue
    data = os.read(0, 4096)
    if not data:
        break
    pending += data
    *lines, pending = pending.split(b"\n")
    for line in lines:
        if line == b"on":
            on, due = True, clock()
        elif line == b"off":
            on = False
        elif line == b"stop":
            on = None
    if on is None:
        break
json.dump({"starts": starts, "latencies": latencies}, sys.stdout)
"""
PROBE_INTERVAL = 0.0005
IDLE_WINDOW = 0.5  # seconds
PROBE_KEY = "bench-raw:item:1"


class Probe:
    """Another client's GETs in another process (see the module's docstring)."""

    def __init__(self, server: BenchServer) -> None:
        self.server = server
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        args = (self.server.host, str(self.server.port), PROBE_KEY, str(PROBE_INTERVAL))
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", PROBE, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 30)
        if line.strip() != b"ready":
            raise RuntimeError(f"the GET probe did not start: {line!r}")

    async def _send(self, line: bytes) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(line + b"\n")
        await self.process.stdin.drain()

    async def on(self) -> None:
        await self._send(b"on")

    async def off(self) -> None:
        await self._send(b"off")

    async def stop(self) -> list[tuple[float, float]]:
        """Every GET's (start, latency in seconds) since the start."""
        assert self.process is not None and self.process.stdout is not None
        await self._send(b"stop")
        out = await asyncio.wait_for(self.process.stdout.read(), 60)
        await self.process.wait()
        data = json.loads(out)
        return list(zip(data["starts"], data["latencies"], strict=True))

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _open_loop(samples: list[tuple[float, float]], interval: float) -> list[tuple[float, float]]:
    """The GETs a client sending every ``interval`` regardless of replies would have seen.

    A GET that took longer than the interval held back the probe's next ones (coordinated
    omission); each of those is added as it would have fared, sent at its tick and answered when
    the late one was: the correction of HdrHistogram's ``recordValueWithExpectedInterval``.
    """
    out = []
    for at, latency in samples:
        out.append((at, latency))
        missing, k = latency - interval, 1
        while missing >= interval:
            out.append((at + k * interval, missing))
            missing, k = missing - interval, k + 1
    return out


def window_stats(samples: list[tuple[float, float]], start: float, end: float) -> dict[str, Any]:
    """p50 / p99 / max (ms) of the GETs sent within [start, end] (corrected for coordinated omission),
    and how many the probe actually sent."""
    sent = sum(1 for at, _ in samples if start <= at <= end)
    latencies = [latency * 1000 for at, latency in _open_loop(samples, PROBE_INTERVAL) if start <= at <= end]
    if not latencies:
        return {"samples": 0, "sent": sent, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "samples": len(latencies),
        "sent": sent,
        "p50_ms": statistics.median(latencies),
        "p99_ms": _percentile(latencies, 0.99),
        "max_ms": max(latencies),
    }


async def _idle_window(probe: Probe | None) -> tuple[float, float] | None:
    """The probe on; 0.5 s of nothing else (after a short settling pause)."""
    if probe is None:
        return None
    await probe.on()
    await asyncio.sleep(0.1)
    start = time.monotonic()
    await asyncio.sleep(IDLE_WINDOW)
    return start, time.monotonic()


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


def _windows(idle: tuple[float, float] | None, start: float, end: float) -> dict[str, Any] | None:
    return None if idle is None else {"idle": idle, "busy": (start, end)}


async def rc_run(
    rc: RedisCacheAdapter, servers: list[BenchServer], size: int, tag: str, probe: Probe | None = None
) -> dict[str, Any]:
    """Populate (not timed), then time one ``delete_by_tags``; its count must be exact and nothing left."""
    await rc_populate(rc, size, tag)
    slowlog_reset(servers)
    idle = await _idle_window(probe)
    start = time.monotonic()
    count = await rc_invalidate(rc, tag)
    end = time.monotonic()
    if probe is not None:
        await probe.off()
    slow = slowlog_max(servers)
    left = (await rc.get_stats()).total_entries
    return {
        "seconds": end - start,
        "count": count,
        "exact": count == size and left == 0,
        "slowlog": slow,
        "windows": _windows(idle, start, end),
    }


async def cashews_run(
    c: StandaloneClients, server: BenchServer, size: int, tag: str, probe: Probe | None = None
) -> dict[str, Any]:
    """Populate (not timed), then time one ``delete_tags``; counted by SCAN before and after (not timed)."""
    pattern = f"{CS_PREFIX}{tag}:*"
    await cashews_populate(c, size, tag)
    before = _count_keys(server, CASHEWS_DB, pattern)
    slowlog_reset([server])
    idle = await _idle_window(probe)
    start = time.monotonic()
    await cashews_invalidate(c, tag)
    end = time.monotonic()
    if probe is not None:
        await probe.off()
    slow = slowlog_max([server])
    after = _count_keys(server, CASHEWS_DB, pattern)
    return {
        "seconds": end - start,
        "count": before - after,
        "exact": before == size and after == 0,
        "slowlog": slow,
        "windows": _windows(idle, start, end),
    }


async def measure_invalidation(
    c: StandaloneClients,
    server: BenchServer,
    sizes: tuple[int, ...],
    repetitions: int,
    log: Callable[[str], None],
    probe_min_size: int | None = None,
) -> list[dict[str, Any]]:
    rc = RedisCacheAdapter(server.url, key_prefix=INVALIDATION_PREFIX)
    try:
        return await _measure(c, rc, server, sizes, repetitions, log, probe_min_size)
    finally:
        await rc.close()


async def _measure(
    c: StandaloneClients,
    rc: RedisCacheAdapter,
    server: BenchServer,
    sizes: tuple[int, ...],
    repetitions: int,
    log: Callable[[str], None],
    probe_min_size: int | None,
) -> list[dict[str, Any]]:
    results = []
    for size in sizes:
        runs: dict[str, list[dict[str, Any]]] = {"rediscache": [], "cashews": []}
        errors: dict[str, str] = {}
        probe: Probe | None = None
        if probe_min_size is not None and size >= probe_min_size:
            probe = Probe(server)
            try:
                await probe.start()
            except Exception as exc:
                errors["probe"] = describe_error(exc)
                log(f"  ! delete_by_tags {size}: GET probe: {errors['probe']}")
                await probe.kill()
                probe = None
        try:
            for rep in range(repetitions):
                order = ["rediscache", "cashews"] if rep % 2 == 0 else ["cashews", "rediscache"]
                for library in order:
                    if library in errors:
                        continue
                    try:
                        if library == "rediscache":
                            runs[library].append(await rc_run(rc, [server], size, _tag(size, rep), probe))
                        else:
                            runs[library].append(await cashews_run(c, server, size, _tag(size, rep), probe))
                    except Exception as exc:
                        errors[library] = describe_error(exc)
                        log(f"  ! delete_by_tags {size} {library}: {errors[library]}")
            samples = await probe.stop() if probe is not None else None
        finally:
            if probe is not None:
                await probe.kill()
        if samples is not None:
            _latencies(runs, samples)
        results.append(_summarize("standalone", size, runs, errors))
        log(_one_line(results[-1]))
    return results


def _latencies(runs: dict[str, list[dict[str, Any]]], samples: list[tuple[float, float]]) -> None:
    """Each run's idle and busy windows' GET latencies, and busy p99 / idle p99."""
    for library_runs in runs.values():
        for run in library_runs:
            windows = run.get("windows")
            if not windows:
                continue
            idle, busy = window_stats(samples, *windows["idle"]), window_stats(samples, *windows["busy"])
            ratio = busy["p99_ms"] / idle["p99_ms"] if busy["p99_ms"] is not None and idle["p99_ms"] else None
            run["other_client_get"] = {"idle": idle, "busy": busy, "p99_ratio": ratio}


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
        probed = [run["other_client_get"] for run in library_runs if run.get("other_client_get")]
        libraries[library] = {
            "median_seconds": statistics.median(seconds) if seconds else None,
            "all_exact": all(run["exact"] for run in library_runs) if library_runs else None,
            "longest_command_ms": max(longest) if longest else None,
            "median_logged_command_ms": statistics.median(typical) if typical else None,
            "commands_logged_per_run": statistics.median(logged) if logged else None,
            "slowlog_threshold_ms": library_runs[0]["slowlog"]["threshold_ms"] if library_runs else None,
            "other_client_get": _probe_summary(probed),
            "runs": library_runs,
            "error": errors.get(library),
        }
    ratio = None
    if "cashews" in runs and runs["rediscache"] and runs["cashews"]:
        pairs = [rc["seconds"] / cs["seconds"] for rc, cs in zip(runs["rediscache"], runs["cashews"], strict=False)]
        ratio = statistics.median(pairs) if pairs else None
    summary = {"topology": topology, "size": size, "libraries": libraries, "rc_over_cashews": ratio}
    if "probe" in errors:
        summary["probe_error"] = errors["probe"]
    return summary


def _probe_summary(probed: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Medians over the runs of the other client's GET latency: idle and busy windows, and busy / idle p99."""
    if not probed:
        return None

    def median(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None

    return {
        "idle_p50_ms": median([p["idle"]["p50_ms"] for p in probed]),
        "idle_p99_ms": median([p["idle"]["p99_ms"] for p in probed]),
        "busy_p50_ms": median([p["busy"]["p50_ms"] for p in probed]),
        "busy_p99_ms": median([p["busy"]["p99_ms"] for p in probed]),
        "busy_max_ms": max((p["busy"]["max_ms"] for p in probed if p["busy"]["max_ms"] is not None), default=None),
        "p99_ratio": median([p["p99_ratio"] for p in probed]),
        "p99_ratios": [p["p99_ratio"] for p in probed],
        "samples_idle": median([p["idle"]["samples"] for p in probed]),
        "samples_busy": median([p["busy"]["samples"] for p in probed]),
    }


def _one_line(summary: dict[str, Any]) -> str:
    cells = []
    for library, data in summary["libraries"].items():
        if data["error"]:
            cells.append(f"{library}=ERROR")
        elif data["median_seconds"] is not None:
            longest = data["longest_command_ms"]
            slow = f", longest {longest:.1f} ms" if longest is not None else ", none over 1 ms"
            probe = data.get("other_client_get")
            if probe and probe["p99_ratio"] is not None:
                slow += f", other GET p99 {probe['busy_p99_ms']:.2f} vs {probe['idle_p99_ms']:.2f} ms idle"
            cells.append(f"{library}={data['median_seconds'] * 1000:.0f} ms (exact={data['all_exact']}{slow})")
    return f"  {summary['topology']}/delete_by_tags/{summary['size']:<12} " + ", ".join(cells)
