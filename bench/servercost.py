"""What a read costs the Redis server: its CPU per get against a raw GET's, and its AOF bytes per get.

**Server CPU per operation.** Around a loop of ``ops`` calls (at 1 and at 32 concurrent coroutines),
the server's own CPU time is read from ``INFO cpu`` (``used_cpu_user`` + ``used_cpu_sys``: the
process's ``getrusage``, the figures of ``/proc/<pid>/stat`` at microsecond resolution instead of
clock ticks), summed over every master on a cluster; the difference divided by the loop's
operations (keys for ``get_many``) is the server CPU per operation: reading the request, running
the command, writing the reply, the event loop, everything. Subjects, interleaved (each repetition
starts with a different one), the median of the per-repetition ratios reported:

- raw redis-py ``GET`` (+ ``unpackb``) of the raw keys, and ``MGET`` of 100 keys for the batch;
- rediscache's read command, ``MGET <entry key> <shard generation key>``, sent by raw redis-py
  (get hit only, no flush): the same client as the raw GET's, so what differs is the command
  alone. The server's CPU per request depends on its client too (how often the server must wake
  it, which the kernel charges to the server): a client that waits for replies idle costs the
  server more system time per request than a busy one;
- rediscache ``get`` (``get_many(100)``) of its keys, on an adapter of its own whose periodic flush
  is off (``flush_interval`` of an hour). After each loop its access accounting is flushed, and
  the flush's server CPU (and commandstats) is charged to the loop's reads at the rate the default
  ``flush_interval`` of 1 s flushes: a loop of ``w`` seconds is charged ``min(1, w / 1 s)`` of its
  flush. Every loop reads all 1,000 keys, so its flush carries the very entries a periodic flush
  after a second of reads would.

The servers' voluntary context switches over the loop (``/proc/<pid>/status``) are shown per
operation: each is a sleep in ``epoll_wait`` with nothing left to do and a wake-up, which costs the
server CPU time of its own; a client whose requests arrive one at a time wakes the server for each.

``INFO commandstats`` (reset before each loop) gives the command time beside it: the ``usec`` of
the commands the client sent (``GET``; ``MGET`` and the flush's ``EVALSHA``) per operation.
Commands run inside a script are counted in commandstats too, and the script's own time includes
theirs, so only the commands a subject sends itself are added up; every command is in the JSON.

**AOF bytes per operation.** ``CONFIG SET appendonly yes`` (and ``appendfsync no``, so every write
reaches the file at once) on the server, or on every master of the cluster, then the growth of
``aof_current_size`` over ``aof_ops`` calls of each: rediscache get hits, get misses (no flush in
between: the adapter's periodic flush is off), then the one flush of all those reads' accounting,
raw ``GET``, raw ``SET PX`` and rediscache ``set`` for reference. AOF is switched off afterwards.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis, RedisCluster

from bench.runner import Op, describe_error, measured_run
from bench.servers import BenchServer
from bench.workloads import (
    BATCH,
    KEYS,
    populate_raw,
    populate_rc,
    raw_cluster_get_many,
    raw_get_hit,
    raw_get_many,
    raw_set,
    rc_get_hit,
    rc_get_many,
    rc_get_miss,
    rc_set,
)
from rediscache import CacheKey, RedisCacheAdapter

__all__ = ["measure_server_cost"]

PREFIX = "bench-rc"  # the throughput rows' cache: its keys are populated
NO_FLUSH = 3600.0  # seconds: the adapter's periodic flush never runs during a section
#: rediscache's default flush_interval: its reads are charged one flush per this many seconds.
FLUSH_INTERVAL = 1.0
#: The commands each subject sends itself (commandstats also counts those its scripts run).
SENT = {"raw": {"get", "mget"}, "rediscache": {"mget", "evalsha"}, "rediscache_mget_by_redis_py": {"mget"}}
IGNORED = {"info", "config", "config|resetstat", "config|set", "config|get", "ping", "cluster|slots", "cluster"}


def _info(node: BenchServer, section: str) -> dict[str, Any]:
    info: dict[str, Any] = node.admin.info(section)
    return info


def server_cpu_seconds(nodes: list[BenchServer]) -> float:
    """The servers' CPU time so far, user + system, summed over ``nodes``."""
    total = 0.0
    for node in nodes:
        info = _info(node, "cpu")
        total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return total


def _pids(nodes: list[BenchServer]) -> list[int]:
    return [int(_info(node, "server")["process_id"]) for node in nodes]


def context_switches(pids: list[int]) -> int | None:
    """The servers' voluntary context switches so far (``/proc/<pid>/status``: each one a sleep in
    ``epoll_wait`` with nothing to do, and a wake-up), summed; ``None`` where ``/proc`` is not there."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except OSError:
            return None
    return total


def _commandstats(nodes: list[BenchServer]) -> dict[str, dict[str, float]]:
    """``INFO commandstats`` summed over ``nodes``: calls and usec per command."""
    out: dict[str, dict[str, float]] = {}
    for node in nodes:
        for name, stats in _info(node, "commandstats").items():
            command = name.removeprefix("cmdstat_")
            if command in IGNORED:
                continue
            into = out.setdefault(command, {"calls": 0.0, "usec": 0.0})
            into["calls"] += float(stats["calls"])
            into["usec"] += float(stats["usec"])
    return out


def _reset(nodes: list[BenchServer]) -> None:
    for node in nodes:
        node.admin.config_resetstat()


async def _cpu_run(
    nodes: list[BenchServer],
    op: Op,
    calls: int,
    per_call: int,
    concurrency: int,
    flush: Callable[[], Awaitable[None]] | None,
) -> dict[str, Any]:
    """One loop's server CPU per unit, its flush charged at one flush per ``FLUSH_INTERVAL`` of reads."""
    _reset(nodes)
    pids = _pids(nodes)
    before = server_cpu_seconds(nodes)
    switches = context_switches(pids)
    wall, _ = await measured_run(op, calls, concurrency)
    used = server_cpu_seconds(nodes) - before
    after_switches = context_switches(pids)
    woken = None if switches is None or after_switches is None else after_switches - switches
    stats = _commandstats(nodes)
    share = 0.0
    if flush is not None:
        mid = server_cpu_seconds(nodes)
        await flush()
        flushed = _commandstats(nodes)
        share = min(1.0, wall / FLUSH_INTERVAL)
        used += (server_cpu_seconds(nodes) - mid) * share
        for name, after in flushed.items():
            into = stats.setdefault(name, {"calls": 0.0, "usec": 0.0})
            earlier = dict(into)
            into["calls"] = earlier["calls"] + (after["calls"] - earlier["calls"]) * share
            into["usec"] = earlier["usec"] + (after["usec"] - earlier["usec"]) * share
    units = calls * per_call
    return {
        "server_cpu_us": used / units * 1e6,
        "wall_s": wall,
        "flush_share": share,
        "wakeups_per_op": None if woken is None else woken / units,
        "commands": stats,
    }


def _per_unit(stats: dict[str, dict[str, float]], units: int, sent: set[str]) -> tuple[float, dict[str, Any]]:
    commands = {
        name: {"per_op": s["calls"] / units, "usec_per_op": s["usec"] / units, "sent": name in sent}
        for name, s in stats.items()
    }
    return sum(s["usec"] for name, s in stats.items() if name in sent) / units, commands


def _ratio(a: dict[str, Any], b: dict[str, Any], key: str) -> float:
    """The median of the per-repetition ratios a / b."""
    return statistics.median(x / y for x, y in zip(a[key], b[key], strict=True) if y)


def _mget_by_redis_py(raw: Redis | RedisCluster, rc: RedisCacheAdapter) -> Op:
    """rediscache's read command (``MGET <entry key> <shard generation key>``) sent by raw redis-py."""
    commands = []
    for n in range(KEYS):
        fk = CacheKey(key=f"item:{n}").full_key.encode()
        shard = rc.layout.shard_of(fk)
        commands.append(("MGET", shard.entry_key(fk), shard.generation))
    execute: Callable[..., Awaitable[Any]] = raw.execute_command

    async def op(i: int) -> None:
        stored, _ = await execute(*commands[i % KEYS])
        if stored is None:
            raise AssertionError("expected a hit, got a miss")

    return op


async def _cpu_rows(
    nodes: list[BenchServer],
    raw: Redis | RedisCluster,
    rc: RedisCacheAdapter,
    ops: int,
    repetitions: int,
    concurrency: tuple[int, ...],
    log: Callable[[str], None],
    topology: str,
) -> list[dict[str, Any]]:
    same_client = _mget_by_redis_py(raw, rc)
    cases: list[tuple[str, int, int, dict[str, Op]]] = [
        (
            "get hit",
            conc,
            1,
            {"raw": raw_get_hit(raw), "rediscache": rc_get_hit(rc), "rediscache_mget_by_redis_py": same_client},
        )
        for conc in concurrency
    ]
    raw_many = raw_cluster_get_many(raw) if isinstance(raw, RedisCluster) else raw_get_many(raw)
    cases.append(("get_many(100)", 1, BATCH, {"raw": raw_many, "rediscache": rc_get_many(rc)}))
    rows = []
    for workload, conc, per_call, ops_of in cases:
        calls = max(ops // per_call, 5)
        names = list(ops_of)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        row: dict[str, Any] = {
            "topology": topology,
            "workload": workload,
            "concurrency": conc,
            "units": calls * per_call,
            "repetitions": repetitions,
            "error": None,
        }
        try:
            for name in names:  # warm-up
                await measured_run(ops_of[name], max(calls // 4, conc), conc)
            await rc.flush()
            for rep in range(repetitions):
                order = names[rep % len(names) :] + names[: rep % len(names)]
                for name in order:
                    flush = rc.flush if name == "rediscache" else None
                    runs[name].append(await _cpu_run(nodes, ops_of[name], calls, per_call, conc, flush))
        except Exception as exc:
            row["error"] = describe_error(exc)
            log(f"  ! server cost {topology} {workload} c{conc}: {row['error']}")
            rows.append(row)
            continue
        for name in names:
            cpu = [run["server_cpu_us"] for run in runs[name]]
            units = calls * per_call
            command_us = [_per_unit(run["commands"], units, SENT[name])[0] for run in runs[name]]
            wakeups = [run["wakeups_per_op"] for run in runs[name] if run["wakeups_per_op"] is not None]
            row[name] = {
                "wakeups_per_op": statistics.median(wakeups) if wakeups else None,
                "server_cpu_us": statistics.median(cpu),
                "server_cpu_runs": cpu,
                "command_us": statistics.median(command_us),
                "command_runs": command_us,
                "flush_shares": [run["flush_share"] for run in runs[name]],
                "commands": _per_unit(runs[name][-1]["commands"], units, SENT[name])[1],
            }
        row["cpu_ratio"] = _ratio(row["rediscache"], row["raw"], "server_cpu_runs")
        row["command_ratio"] = _ratio(row["rediscache"], row["raw"], "command_runs")
        if "rediscache_mget_by_redis_py" in row:
            row["same_client_cpu_ratio"] = _ratio(row["rediscache_mget_by_redis_py"], row["raw"], "server_cpu_runs")
        same = row.get("same_client_cpu_ratio")
        log(
            f"  server cost {topology} {workload} c{conc}: server CPU per op raw {row['raw']['server_cpu_us']:.1f} µs, "
            f"rediscache {row['rediscache']['server_cpu_us']:.1f} µs, x{row['cpu_ratio']:.2f}"
            + (f" (its MGET sent by redis-py x{same:.2f})" if same is not None else "")
            + f"; commands {row['raw']['command_us']:.2f} / {row['rediscache']['command_us']:.2f} µs, "
            f"x{row['command_ratio']:.2f}"
        )
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------------
# AOF
# --------------------------------------------------------------------------------------------------


def _aof_size(nodes: list[BenchServer]) -> int:
    return sum(int(_info(node, "persistence").get("aof_current_size", 0)) for node in nodes)


async def _aof_settled(nodes: list[BenchServer], timeout: float = 30.0) -> int:
    """``aof_current_size`` over ``nodes`` once no rewrite is running and every write reached the file."""
    deadline = time.monotonic() + timeout
    while True:
        infos = [_info(node, "persistence") for node in nodes]
        if all(
            int(i.get("aof_enabled", 0)) == 1
            and int(i.get("aof_rewrite_in_progress", 0)) == 0
            and int(i.get("aof_rewrite_scheduled", 0)) == 0
            and int(i.get("aof_buffer_length", 0)) == 0
            for i in infos
        ):
            return sum(int(i.get("aof_current_size", 0)) for i in infos)
        if time.monotonic() > deadline:
            raise TimeoutError(f"AOF not settled after {timeout:.0f} s: {infos}")
        await asyncio.sleep(0.02)


def _set_all(nodes: list[BenchServer], name: str, value: str) -> None:
    for node in nodes:
        node.admin.config_set(name, value)


async def _aof(
    nodes: list[BenchServer], raw: Redis | RedisCluster, rc: RedisCacheAdapter, ops: int, topology: str
) -> dict[str, Any]:
    out: dict[str, Any] = {"topology": topology, "ops": ops, "error": None}
    policies = [node.admin.config_get("appendfsync")["appendfsync"] for node in nodes]
    _set_all(nodes, "appendfsync", "no")
    _set_all(nodes, "appendonly", "yes")
    try:
        await rc.flush()
        size = await _aof_settled(nodes)

        async def grew(op: Op) -> float:
            nonlocal size
            await measured_run(op, ops, 1)
            after = await _aof_settled(nodes)
            grown, size = after - size, after
            return grown / ops

        out["rediscache_get_hit_bytes"] = await grew(rc_get_hit(rc))
        out["rediscache_get_miss_bytes"] = await grew(rc_get_miss(rc))
        await rc.flush()
        after = await _aof_settled(nodes)
        out["flush_bytes_per_read"] = (after - size) / (2 * ops)
        size = after
        out["raw_get_bytes"] = await grew(raw_get_hit(raw))
        out["raw_set_bytes"] = await grew(raw_set(raw))
        out["rediscache_set_bytes"] = await grew(rc_set(rc))
    finally:
        _set_all(nodes, "appendonly", "no")
        for node, policy in zip(nodes, policies, strict=True):
            node.admin.config_set("appendfsync", policy)
    return out


async def measure_server_cost(
    topology: str,
    nodes: list[BenchServer],
    url: str,
    raw: Redis | RedisCluster,
    *,
    ops: int,
    repetitions: int,
    aof_ops: int,
    concurrency: tuple[int, ...],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Server CPU per get hit (and per key of get_many) against raw GET (MGET), and AOF bytes per get."""
    result: dict[str, Any] = {"topology": topology, "cpu": [], "aof": None}
    async with RedisCacheAdapter(url, cluster=topology == "cluster", key_prefix=PREFIX, flush_interval=NO_FLUSH) as rc:
        await populate_raw(raw)
        await populate_rc(rc)
        await rc.get(CacheKey(key="item:0"))  # first-use checks done, scripts loaded
        result["cpu"] = await _cpu_rows(nodes, raw, rc, ops, repetitions, concurrency, log, topology)
        try:
            result["aof"] = await _aof(nodes, raw, rc, aof_ops, topology)
            a = result["aof"]
            log(
                f"  AOF {topology}: bytes per get hit {a['rediscache_get_hit_bytes']:.1f}, per miss "
                f"{a['rediscache_get_miss_bytes']:.1f}, flush per read {a['flush_bytes_per_read']:.1f}; raw GET "
                f"{a['raw_get_bytes']:.1f}, raw SET {a['raw_set_bytes']:.0f}, "
                f"rediscache set {a['rediscache_set_bytes']:.0f}"
            )
        except Exception as exc:
            result["aof"] = {"topology": topology, "error": describe_error(exc)}
            log(f"  ! AOF {topology}: {result['aof']['error']}")
    return result
