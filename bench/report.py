"""Writing a run's results: ``latest.json`` (everything), ``latest.md`` (the tables) and ``latest.png`` (a chart)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.targets import COMPARED, compared_ratio, cpu_figures

__all__ = ["render_markdown", "write_chart", "write_json", "write_markdown"]

LIBRARIES = ("raw redis-py", "rediscache", "cashews", "aiocache", "rediscache hybrid")
Y_MAX = 1.5  # the chart's scale; taller bars (L1 hits) are cut and labelled with their value
COLORS = {
    "raw redis-py": "#9e9e9e",
    "rediscache": "#d62728",
    "cashews": "#1f77b4",
    "aiocache": "#2ca02c",
    "rediscache hybrid": "#ff7f0e",
}


def write_json(results: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")


def _rate(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}"


def _cell(subject: dict[str, Any]) -> str:
    if subject["error"]:
        return "error"
    if subject["median"] is None:
        return "-"
    ratio = "-" if subject["ratio"] is None else f"{subject['ratio']:.2f}"
    note = f"{subject['note']}, " if subject["note"] else ""
    return f"{ratio} ({note}{_rate(subject['median'])}/s)"


def _rows(groups: list[dict[str, Any]]) -> list[tuple[str, int, dict[str, list[dict[str, Any]]]]]:
    """(row label, concurrency, {library: subjects}) in workload order, then concurrency."""
    order: list[str] = []
    rows: dict[tuple[str, int], dict[str, list[dict[str, Any]]]] = {}
    for group in groups:
        for subject in group["subjects"]:
            label = subject["row"] or group["workload"]
            if label not in order:
                order.append(label)
            rows.setdefault((label, group["concurrency"]), {}).setdefault(subject["library"], []).append(subject)
    keys = sorted(rows, key=lambda key: (order.index(key[0]), key[1]))
    return [(label, conc, rows[(label, conc)]) for label, conc in keys]


def _throughput_table(groups: list[dict[str, Any]]) -> list[str]:
    present = {subject["library"] for group in groups for subject in group["subjects"]}
    libraries = [library for library in LIBRARIES if library in present]
    lines = [
        "| Workload | Conc. | " + " | ".join(libraries) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in libraries) + " |",
    ]
    for label, conc, by_library in _rows(groups):
        cells = ["; ".join(_cell(s) for s in by_library.get(library, [])) or "" for library in libraries]
        lines.append(f"| {label} | {conc} | " + " | ".join(cells) + " |")
    return lines


def _targets_table(targets: list[dict[str, Any]]) -> list[str]:
    lines = ["| Target | Measured | Needed | Result |", "| --- | --- | --- | --- |"]
    for target in targets:
        if target["passed"] is None:
            result = "not measured"
        else:
            m = target["margin"]
            margin = "" if m is None else f" ({m * 100:+.1f}%)" if abs(m) < 0.01 else f" ({m * 100:+.0f}%)"
            result = ("pass" if target["passed"] else "**miss**") + margin
        note = f" ({target['note']})" if target.get("note") else ""
        lines.append(f"| {target['text']} | {target['shown'] or '-'}{note} | {target['needed']} | {result} |")
    return lines


def _cluster_vs_standalone_table(groups: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| Workload | Conc. | single server: rediscache / raw Redis (default pool) "
        "| cluster: rediscache / raw RedisCluster | cluster / single |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    concurrencies = sorted({g["concurrency"] for g in groups.values() if g["topology"] == "cluster"})
    for name, workload, row in COMPARED:
        for conc in concurrencies:
            standalone = compared_ratio(groups, "standalone", name, row, conc)
            cluster = compared_ratio(groups, "cluster", name, row, conc)
            both = cluster / standalone if cluster is not None and standalone else None
            cells = [_ratio(standalone), _ratio(cluster), _ratio(both)]
            lines.append(f"| {workload} | {conc} | " + " | ".join(cells) + " |")
    return lines


def _cpu_table(groups: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| Topology | Workload | Conc. | raw redis-py, µs/op | rediscache, µs/op | rediscache / raw |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for topology in ("standalone", "cluster"):
        concurrencies = sorted({g["concurrency"] for g in groups.values() if g["topology"] == topology})
        for name, workload, row in COMPARED:
            for conc in concurrencies:
                rc_us, raw_us, ratio, spread = cpu_figures(groups, topology, name, row, conc)
                if ratio is None and rc_us is None:
                    continue
                unit = " (per key)" if row else ""
                cells = [_us(raw_us), _us(rc_us), _ratio(ratio) + spread]
                lines.append(f"| {topology} | {workload}{unit} | {conc} | " + " | ".join(cells) + " |")
    return lines


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _probe_cell(data: dict[str, Any]) -> str:
    probe = data.get("other_client_get") if data else None
    if not probe or probe.get("p99_ratio") is None:
        return "-"
    return f"{probe['idle_p99_ms']:.2f} -> {probe['busy_p99_ms']:.2f} ms ({probe['p99_ratio']:.1f}x)"


def _invalidation_table(invalidations: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| Topology | Members | rediscache delete_by_tags | cashews delete_tags | rediscache / cashews "
        "| rediscache longest command | exact count (rediscache / cashews) "
        "| other client's GET p99, idle -> during: rediscache | same: cashews |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for inv in invalidations:
        rc = inv["libraries"].get("rediscache", {})
        cs = inv["libraries"].get("cashews", {})

        def seconds(data: dict[str, Any]) -> str:
            if not data:
                return "n/a"
            if data.get("error"):
                return "error"
            value = data.get("median_seconds")
            return "-" if value is None else f"{value * 1000:.0f} ms"

        ratio = "-" if inv.get("rc_over_cashews") is None else f"{inv['rc_over_cashews']:.2f}"
        longest = rc.get("longest_command_ms")
        longest_text = f"{longest:.1f} ms" if longest is not None else "none over 1 ms"
        if rc.get("median_logged_command_ms") is not None:
            count, typical = rc["commands_logged_per_run"], rc["median_logged_command_ms"]
            longest_text += f" ({count:.0f} over 1 ms, median {typical:.1f} ms)"
        exact = f"{rc.get('all_exact')} / {cs.get('all_exact') if cs else 'n/a'}"
        cells = [
            inv["topology"],
            f"{inv['size']:,}",
            seconds(rc),
            seconds(cs),
            ratio,
            longest_text,
            exact,
            _probe_cell(rc),
            _probe_cell(cs),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _memory_table(memory: list[dict[str, Any]]) -> list[str]:
    """One row per case, one column per payload size: ratio (rediscache / plain SET bytes per entry)."""
    sizes: list[str] = []
    cases: list[str] = []
    cells: dict[tuple[str, str], str] = {}
    for case in memory:
        size = case.get("size") or f"{case.get('payload_bytes')} B"
        if size not in sizes:
            sizes.append(size)
        if case["case"] not in cases:
            cases.append(case["case"])
        if case.get("error"):
            cells[(case["case"], size)] = "error"
        else:
            cells[(case["case"], size)] = (
                f"{case['ratio']:.2f} ({case['rediscache_bytes_per_entry']:.0f} / "
                f"{case['plain_bytes_per_entry']:.0f} B)"
            )
    lines = [
        "| Case | " + " | ".join(f"{size} payload" for size in sizes) + " |",
        "| --- | " + " | ".join("---:" for _ in sizes) + " |",
    ]
    for name in cases:
        lines.append(f"| {name} | " + " | ".join(cells.get((name, size), "-") for size in sizes) + " |")
    return lines


def _server_cost_table(server_cost: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| Topology | Workload | Conc. | server CPU per op: raw | rediscache | rediscache / raw "
        "| rediscache's MGET sent by redis-py / raw | server wake-ups per op: raw / rediscache "
        "| commandstats µs per op: raw | rediscache | rediscache / raw |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for topology in server_cost:
        for row in topology.get("cpu", []):
            head = f"| {row['topology']} | {row['workload']} | {row['concurrency']} |"
            if row.get("error") or "cpu_ratio" not in row:
                lines.append(f"{head} error | | | | | | | |")
                continue
            raw, rc = row["raw"], row["rediscache"]
            per = " (per key)" if row["workload"].startswith("get_many") else ""
            same = row.get("same_client_cpu_ratio")
            same_text = (
                "-" if same is None else f"{row['rediscache_mget_by_redis_py']['server_cpu_us']:.2f} µs, {same:.2f}"
            )
            cells = [
                f"{raw['server_cpu_us']:.2f} µs{per}",
                f"{rc['server_cpu_us']:.2f} µs",
                _ratio(row["cpu_ratio"]),
                same_text,
                f"{_ratio(raw.get('wakeups_per_op'))} / {_ratio(rc.get('wakeups_per_op'))}",
                f"{raw['command_us']:.2f}",
                f"{rc['command_us']:.2f}",
                _ratio(row["command_ratio"]),
            ]
            lines.append(f"{head} " + " | ".join(cells) + " |")
    return lines


def _aof_table(server_cost: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| Topology | rediscache get hit | get miss | the flush of their accounting, per read | raw GET | raw SET PX "
        "| rediscache set |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for topology in server_cost:
        aof = topology.get("aof") or {}
        if aof.get("error") or "rediscache_get_hit_bytes" not in aof:
            lines.append(f"| {topology['topology']} | error | | | | | |")
            continue
        keys = (
            "rediscache_get_hit_bytes",
            "rediscache_get_miss_bytes",
            "flush_bytes_per_read",
            "raw_get_bytes",
            "raw_set_bytes",
            "rediscache_set_bytes",
        )
        lines.append(f"| {topology['topology']} | " + " | ".join(f"{aof[key]:.1f} B" for key in keys) + " |")
    return lines


def _staleness_table(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "| Topology | changes | p50 | p90 | p99 | max | reader's L1 hits meanwhile |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        out.append(
            f"| {row['topology']} | {row['changes']} | {row['p50_ms']:.2f} ms | {row['p90_ms']:.2f} ms | "
            f"{row['p99_ms']:.2f} ms | {row['max_ms']:.2f} ms | {row['reader_l1_hits']:,} |"
        )
    return out


def _errors(results: dict[str, Any]) -> list[str]:
    errors = []
    for group in results.get("groups", []):
        if group.get("error"):
            errors.append(f"- `{group['id']}`: {group['error']}")
        for subject in group["subjects"]:
            if subject["error"]:
                errors.append(f"- `{group['id']}` {subject['label']}: {subject['error']}")
    for inv in results.get("invalidation", []):
        for library, data in inv["libraries"].items():
            if data.get("error"):
                errors.append(f"- delete_by_tags {inv['topology']} {inv['size']} {library}: {data['error']}")
        if inv.get("probe_error"):
            errors.append(f"- delete_by_tags {inv['topology']} {inv['size']} GET probe: {inv['probe_error']}")
    for case in results.get("memory", []):
        if case.get("error"):
            errors.append(f"- memory {case.get('size', '')} {case['case']}: {case['error']}")
    for topology in results.get("server_cost", []):
        for row in topology.get("cpu", []):
            if row.get("error"):
                errors.append(
                    f"- server cost {row['topology']} {row['workload']} c{row['concurrency']}: {row['error']}"
                )
        if (topology.get("aof") or {}).get("error"):
            errors.append(f"- AOF {topology['topology']}: {topology['aof']['error']}")
    errors += [f"- {error}" for error in results.get("errors", [])]
    return errors


def _noise(meta: dict[str, Any]) -> str:
    spread = meta.get("median_spread")
    if spread is None:
        return ""
    load, end = meta.get("load_average_at_start"), meta.get("load_average_at_end")
    load_text = f", load average {load[0]:.2f} at the start" if load else ""
    load_text += f" and {end[0]:.2f} at the end" if load and end else ""
    return (
        f" Noise: repetitions of one subject differ by {spread * 100:.0f}% (median of (max - min) / median)"
        f"{load_text}; the IQR beside each target is that of its per-repetition ratios."
    )


def render_markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    v = meta["versions"]
    settings = meta["settings"]
    groups = results.get("groups", [])
    standalone = [g for g in groups if g["topology"] == "standalone"]
    cluster = [g for g in groups if g["topology"] == "cluster"]
    sha = (meta["git_sha"] or "unknown")[:10] + (" (uncommitted changes)" if meta.get("git_dirty") else "")
    out = [
        "# rediscache benchmark",
        "",
        f"`make bench{'-quick' if settings['mode'] == 'quick' else ''}` of {meta['started']}, "
        f"{settings['mode']} mode, {meta['seconds']:.0f} s: {settings['repetitions']} interleaved repetitions "
        f"of {settings['units']:,} operations ({settings['batch_units']:,} keys for batches) per subject, "
        "after a warm-up. "
        f"rediscache {v.get('rediscache')} at {sha}; Python {meta['python']}, Redis {meta['redis_version']}, "
        f"redis-py {v.get('redis')} + hiredis {v.get('hiredis')}, msgpack {v.get('msgpack')}, "
        f"cashews {v.get('cashews')}, aiocache {v.get('aiocache')}; {meta['cpus']} CPUs.{_noise(meta)}",
        "",
        "Each cell: the ratio to raw redis-py on the same server in the same run (the median of the "
        "per-repetition ratios), then the median throughput on this machine (absolute numbers are noise "
        "elsewhere). Raw redis-py is `GET` + `msgpack.unpackb` for reads, `msgpack.packb` + `SET PX` for every "
        "write (tagged rows included: the floor no cache can beat); the baseline runs on a "
        "`BlockingConnectionPool(max_connections=50)` (rediscache's default pool), and the core rows also show "
        "raw redis-py on its default pool (`Redis.from_url(url, max_connections=50)`). Batch rows are in keys/s, "
        "against raw redis-py's batch (`MGET`, a pipeline of `SET`). Payload: a small dict, 102 bytes in msgpack; "
        "writes have a TTL of 1 h. How each row is made: `bench/README.md`.",
        "",
        "## Targets",
        "",
        *_targets_table(results.get("targets", [])),
        "",
        "## Throughput, standalone Redis",
        "",
        *_throughput_table(standalone),
        "",
        "## delete_by_tags",
        "",
        "One invalidation of a tag with N members (populated with each library's batch API, not timed); "
        "median over the repetitions. Longest command: SLOWLOG, threshold 1 ms. Other client: another process "
        "sending a `GET` every 0.5 ms on a connection of its own, its p99 in the 0.5 s before the invalidation "
        "(idle) and during it (corrected for coordinated omission), and the median of the per-run ratios.",
        "",
        *_invalidation_table(results.get("invalidation", [])),
        "",
        "## Redis memory per entry",
        "",
        f"`used_memory` growth for {settings['memory_entries']:,} entries on a fresh server, against plain SET "
        "of the same payload bytes under similar keys. Each cell: rediscache / plain SET, then both in bytes "
        "per entry. Namespace `tenant:{i%10}`, tags `cat:{i%100}` and `all`; TTL 1 h on both sides.",
        "",
        *_memory_table(results.get("memory", [])),
    ]
    if results.get("server_cost"):
        out += [
            "",
            "## What a read costs the server",
            "",
            "Server CPU per operation: the Redis process's own CPU time (`INFO cpu`, user + system; summed over the "
            "masters of the cluster) over a loop, per operation (per key for get_many), against raw redis-py's "
            "`GET` (`MGET` of 100 keys); rediscache's reads are charged one flush of their access accounting per "
            "second of reads (its default `flush_interval`). commandstats: the `usec` of the commands each client "
            "sent (`GET`; `MGET` and the flush's `EVALSHA`), per operation. Medians over the repetitions; the "
            "ratios are medians of the per-repetition ratios. The column in between: rediscache's read command "
            "(`MGET` of the entry and its shard's generation) sent by the raw client itself, so that only the "
            "command differs (a server's CPU per request also depends on how its client paces requests). Server "
            "wake-ups: the servers' voluntary context switches per operation (`/proc/<pid>/status`), each a sleep "
            "in `epoll_wait` and a wake-up: requests arriving one at a time wake the server once each.",
            "",
            *_server_cost_table(results["server_cost"]),
            "",
            "AOF bytes per operation (`appendonly yes` on the bench's servers, growth of `aof_current_size`); "
            "the reads' accounting is flushed once, after all of them:",
            "",
            *_aof_table(results["server_cost"]),
        ]
    if results.get("staleness"):
        out += [
            "",
            "## L1 staleness across processes (hybrid)",
            "",
            "Another OS process reads one key in a loop through a `HybridCacheAdapter` (from its L1 between "
            "changes); this one changes the key through a plain `RedisCacheAdapter`. Each figure is the time "
            "from just before the write was sent to the reader's first read of the new value. Target: p99 "
            "within 50 ms.",
            "",
            *_staleness_table(results["staleness"]),
        ]
    by_id = {g["id"]: g for g in groups}
    if cluster:
        out += [
            "",
            "## Redis Cluster, 3 masters",
            "",
            "Raw redis-py here is `redis.asyncio.RedisCluster` (`GET` + `unpackb`, `packb` + `SET PX`, "
            "`mget_nonatomic`); rediscache is `RedisCacheAdapter(url, cluster=True)`. Three Redis processes and "
            "the client share the cores.",
            "",
            *_throughput_table(cluster),
            "",
            "Each operation's ratio on the cluster against its ratio on the single server, in this run "
            "(target: cluster / single >= 0.95):",
            "",
            *_cluster_vs_standalone_table(by_id),
        ]
    if any(s.get("cpu_runs") for g in groups for s in g["subjects"]):
        out += [
            "",
            "## Client CPU per operation",
            "",
            "This process's CPU time (`getrusage(RUSAGE_SELF)`, user + system) over each timed run of the "
            "throughput rows, divided by its operations (keys, for get_many); the median over the repetitions. "
            "The ratio is the median of the per-repetition ratios (IQR when there are 4 or more). "
            "At 1 concurrent coroutine the client waits for each reply, at 32 it is busy. Raw redis-py on the "
            "single server: its default-pool subject (like `RedisCluster`'s per-node pools).",
            "",
            *_cpu_table(by_id),
        ]
    errors = _errors(results)
    if errors:
        out += ["", "## Errors", "", *errors]
    if results.get("profile"):
        out += ["", "Profile of rediscache's get hit and tagged set: `bench/results/profile.md`."]
    return "\n".join(out) + "\n"


def write_markdown(results: dict[str, Any], path: Path) -> None:
    path.write_text(render_markdown(results))


def write_chart(results: dict[str, Any], path: Path) -> None:
    """Bars of the ratio to raw redis-py, per workload row and library; one panel per concurrency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [g for g in results.get("groups", []) if g["topology"] == "standalone"]
    rows = _rows(groups)
    if not rows:
        return
    concurrencies = sorted({conc for _, conc, _ in rows})
    present = {s["library"] for g in groups for s in g["subjects"]}
    libraries = [library for library in LIBRARIES if library in present]
    fig, axes = plt.subplots(len(concurrencies), 1, figsize=(14, 4.2 * len(concurrencies)), squeeze=False)
    width = 0.8 / max(len(libraries), 1)
    for ax, conc in zip(axes[:, 0], concurrencies, strict=True):
        labels = [label for label, c, _ in rows if c == conc]
        data = {label: by_library for label, c, by_library in rows if c == conc}
        for k, library in enumerate(libraries):
            xs, heights = [], []
            for x, label in enumerate(labels):
                subjects = data[label].get(library, [])
                ratio = subjects[0]["ratio"] if subjects else None
                if ratio is not None:
                    xs.append(x + (k - (len(libraries) - 1) / 2) * width)
                    heights.append(ratio)
            shown = [min(h, Y_MAX) for h in heights]
            bars = ax.bar(xs, shown, width, label=library, color=COLORS.get(library))
            texts = [f"{h:.2f}" if h <= Y_MAX else f"{h:.1f} ↑" for h in heights]
            ax.bar_label(bars, labels=texts, fontsize=7, padding=2, rotation=90)
        ax.set_ylim(0, Y_MAX * 1.15)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(labels)), labels, rotation=0, fontsize=8)
        ax.set_ylabel("x raw redis-py (same run)")
        ax.set_title(f"{conc} concurrent coroutine{'s' if conc > 1 else ''}, standalone Redis")
        ax.legend(fontsize=8, ncols=len(libraries), loc="upper left")
        ax.grid(axis="y", alpha=0.3)
    meta = results["meta"]
    fig.suptitle(f"Throughput ratio to raw redis-py: {meta['settings']['mode']} run of {meta['started']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
