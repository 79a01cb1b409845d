"""``make bench`` / ``make bench-quick``: run every workload and write ``bench/results/latest.{json,md,png}``.

Usage (from the repository root, in the bench environment ``bench/.venv``)::

    python -m bench.run            # the full run (6 to 7 minutes on 2 cores)
    python -m bench.run --quick    # CI-sized (under 2 minutes)
    python -m bench.run --only throughput,memory --out /tmp/bench

Sections: ``throughput`` (standalone rows, and L1 rows once the hybrid adapter exists),
``invalidation``, ``memory``, ``staleness``, ``cluster``, ``server`` (what a read costs the server:
CPU per get and AOF bytes per get, on the single server and on the cluster), ``profile`` (full mode
only, unless named in ``--only``). ``cluster`` without ``throughput`` also runs the five standalone
rows its targets compare with (get hit, get miss, set, set ns + 2 tags, get_many(100), at 1 and 32).
A failing workload or section is recorded in the results and the run goes on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.invalidation import measure_cluster_invalidation, measure_invalidation
from bench.libraries import library_versions, open_cluster_clients, open_standalone_clients
from bench.memory import measure_memory
from bench.profiling import profile_rediscache, render_profile
from bench.report import write_chart, write_json, write_markdown
from bench.runner import describe_error, run_group
from bench.servercost import measure_server_cost
from bench.servers import BenchServer, bench_cluster, bench_server, redis_server_version
from bench.settings import FULL, QUICK, Settings
from bench.staleness import measure as measure_staleness
from bench.targets import COMPARED, evaluate_targets
from bench.workloads import cluster_groups, l1_groups, standalone_groups

SECTIONS = ("throughput", "invalidation", "memory", "staleness", "cluster", "server", "profile")
REPO = Path(__file__).resolve().parent.parent
_T0 = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _meta(settings: Settings) -> dict[str, Any]:
    status = _git("status", "--porcelain", "--", "rediscache", "lua")
    server_version = redis_server_version()
    return {
        "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "settings": settings.to_json(),
        "git_sha": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "redis_server": server_version[0],
        "redis_version": server_version[1],
        "versions": library_versions(),
    }


async def _standalone(settings: Settings, sections: set[str], results: dict[str, Any]) -> None:
    with bench_server() as server:
        results["meta"]["redis_server_info"] = _server_info(server)
        clients = await open_standalone_clients(server)
        closers: list[Callable[[], Awaitable[None]]] = []
        try:
            if sections & {"throughput", "cluster"}:
                groups = standalone_groups(clients, settings)
                if "throughput" in sections:
                    try:
                        extra, closers = l1_groups(clients, server.url, settings)
                        groups += extra
                    except Exception as exc:
                        results["errors"].append(f"L1 rows: {describe_error(exc)}")
                    log(f"standalone throughput: {len(groups)} groups on {server.url}")
                else:
                    # --only cluster: just the single-server rows the cluster targets are set against.
                    compared = {
                        f"standalone/{name}/c{conc}" for name, _, _ in COMPARED for conc in settings.concurrency
                    }
                    groups = [g for g in groups if g.id in compared]
                    log(f"standalone rows the cluster rows are compared with: {len(groups)} groups on {server.url}")
                for group in groups:
                    results["groups"].append(
                        await run_group(
                            group,
                            repetitions=settings.repetitions,
                            warmup_fraction=settings.warmup_fraction,
                            log=log,
                        )
                    )
                # The hybrid adapter's listener must not run during the sections that follow.
                while closers:
                    await closers.pop()()
            if "server" in sections:
                step = _server_cost(settings, "standalone", [server], server.url, clients.raw, results)
                await _section("server cost (standalone)", step, results)
            if "invalidation" in sections:
                log(f"delete_by_tags: {', '.join(f'{n:,}' for n in settings.invalidation_sizes)} members")
                results["invalidation"] += await measure_invalidation(
                    clients,
                    server,
                    settings.invalidation_sizes,
                    settings.invalidation_repetitions,
                    log,
                    probe_min_size=settings.probe_min_size,
                )
            if "profile" in sections and settings.profile_ops:
                log(f"profiling rediscache get hit and tagged set ({settings.profile_ops:,} ops)")
                results["profile"] = await profile_rediscache(clients, server, settings.profile_ops)
        finally:
            for close in closers:
                await close()
            await clients.close()


def _server_info(server: BenchServer) -> dict[str, Any]:
    info: dict[str, Any] = server.admin.info("server")
    return {key: info.get(key) for key in ("redis_version", "redis_mode", "multiplexing_api", "arch_bits")}


async def _server_cost(
    settings: Settings, topology: str, nodes: list[BenchServer], url: str, raw: Any, results: dict[str, Any]
) -> None:
    log(
        f"server cost ({topology}): server CPU per get ({settings.server_ops:,} ops x "
        f"{settings.server_repetitions}), AOF bytes per get ({settings.aof_ops:,} ops)"
    )
    results["server_cost"].append(
        await measure_server_cost(
            topology,
            nodes,
            url,
            raw,
            ops=settings.server_ops,
            repetitions=settings.server_repetitions,
            aof_ops=settings.aof_ops,
            concurrency=settings.concurrency,
            log=log,
        )
    )


async def _memory(settings: Settings, results: dict[str, Any]) -> None:
    with bench_server() as server:
        log(f"memory per entry: {settings.memory_entries:,} entries per case, 12 cases, on a fresh server")
        results["memory"] = await measure_memory(server, settings.memory_entries, log)


async def _staleness(settings: Settings, results: dict[str, Any]) -> None:
    """The L1 staleness window across OS processes, on a single server and on the cluster."""
    with bench_server() as server:
        log(f"staleness: {settings.staleness_changes} changes seen by another process's L1 (standalone)")
        found = await measure_staleness(server.url, changes=settings.staleness_changes)
        results["staleness"].append({"topology": "standalone", **found})
    with bench_cluster() as cluster:
        log(f"staleness: {settings.staleness_changes} changes seen by another process's L1 (cluster)")
        found = await measure_staleness(cluster.url, changes=settings.staleness_changes, cluster=True)
        results["staleness"].append({"topology": "cluster", **found})


async def _cluster(settings: Settings, sections: set[str], results: dict[str, Any]) -> None:
    with bench_cluster() as cluster:
        log(f"cluster: 3 masters from {cluster.url}")
        clients = await open_cluster_clients(cluster)
        try:
            if "cluster" in sections:
                for group in cluster_groups(clients, settings):
                    results["groups"].append(
                        await run_group(
                            group, repetitions=settings.repetitions, warmup_fraction=settings.warmup_fraction, log=log
                        )
                    )
            if "server" in sections:
                step = _server_cost(settings, "cluster", cluster.nodes, cluster.url, clients.raw, results)
                await _section("server cost (cluster)", step, results)
            if "cluster" in sections:
                size, repetitions = settings.cluster_invalidation_size, settings.invalidation_repetitions
                results["invalidation"].append(
                    await measure_cluster_invalidation(cluster.url, cluster.nodes, size, repetitions, log)
                )
        finally:
            await clients.close()


async def run(settings: Settings, sections: set[str]) -> dict[str, Any]:
    results: dict[str, Any] = {
        "meta": _meta(settings),
        "groups": [],
        "invalidation": [],
        "memory": [],
        "server_cost": [],
        "staleness": [],
        "targets": [],
        "errors": [],
    }
    if sections & {"throughput", "invalidation", "profile", "cluster", "server"}:
        await _section("standalone", _standalone(settings, sections, results), results)
    if "memory" in sections:
        await _section("memory", _memory(settings, results), results)
    if "staleness" in sections:
        await _section("staleness", _staleness(settings, results), results)
    if sections & {"cluster", "server"}:
        await _section("cluster", _cluster(settings, sections, results), results)
    results["meta"]["seconds"] = time.perf_counter() - _T0
    results["meta"]["load_average_at_end"] = os.getloadavg()
    results["meta"]["median_spread"] = _median_spread(results["groups"])
    results["targets"] = evaluate_targets(results)
    return results


def _median_spread(groups: list[dict[str, Any]]) -> float | None:
    """How noisy the run was: the median over all subjects of (max - min) / median of their repetitions."""
    spreads = [s["spread"] for g in groups for s in g["subjects"] if s.get("spread") is not None]
    return statistics.median(spreads) if spreads else None


async def _section(name: str, step: Coroutine[Any, Any, None], results: dict[str, Any]) -> None:
    try:
        await step
    except Exception as exc:
        results["errors"].append(f"{name}: {describe_error(exc)}")
        log(f"! {name} failed: {describe_error(exc)}")


def write_results(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json(results, out / "latest.json")
    write_markdown(results, out / "latest.md")
    try:
        write_chart(results, out / "latest.png")
    except Exception as exc:
        log(f"! chart: {describe_error(exc)}")
    if results.get("profile"):
        (out / "profile.md").write_text(render_profile(results["profile"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized run (under 2 minutes)")
    parser.add_argument("--only", help=f"comma-separated sections among {', '.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="where to write the results")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    sections = set(SECTIONS) if args.only is None else {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = sections - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if args.quick and args.only is None:
        sections.discard("profile")
    log(f"bench: {settings.mode} mode, sections {', '.join(s for s in SECTIONS if s in sections)}")
    results = asyncio.run(run(settings, sections))
    write_results(results, args.out)
    for target in results["targets"]:
        verdict = "not measured" if target["passed"] is None else ("pass" if target["passed"] else "MISS")
        log(f"{verdict:>12}  {target['text']}: {target['shown'] or '-'}")
    log(f"wrote {args.out / 'latest.json'}, latest.md, latest.png in {results['meta']['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
