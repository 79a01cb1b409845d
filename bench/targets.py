"""The issue's targets, checked against one run's results (all ratios measured in that same run).

A throughput target compares two subjects of one group with the median of their per-repetition
ratios. ``margin`` says by how much a target is met or missed: measured / needed - 1 for a floor
("at least"), needed / measured - 1 for a ceiling ("at most"); positive means met.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

__all__ = ["COMPARED", "CPU_COMPARED", "compared_ratio", "cpu_figures", "evaluate_targets"]


@dataclass(frozen=True)
class RatioTarget:
    id: str
    text: str
    group: str
    numerator: str  # subject labels
    denominator: str
    at_least: float


RATIO_TARGETS = [
    RatioTarget("get_hit_raw_c1", "get hit >= 0.85 x raw redis-py GET+decode, 1 concurrent",
                "standalone/get_hit/c1", "rediscache", "raw redis-py", 0.85),
    RatioTarget("get_hit_raw_c32", "get hit >= 0.85 x raw redis-py GET+decode, 32 concurrent",
                "standalone/get_hit/c32", "rediscache", "raw redis-py", 0.85),
    RatioTarget("get_hit_cashews_c1", "get hit >= 1.0 x cashews get, 1 concurrent",
                "standalone/get_hit/c1", "rediscache", "cashews", 1.0),
    RatioTarget("get_hit_cashews_c32", "get hit >= 1.3 x cashews get, 32 concurrent",
                "standalone/get_hit/c32", "rediscache", "cashews", 1.3),
    RatioTarget("set_tagged_raw_c1", "set ns + 2 tags >= 0.75 x raw redis-py SET, 1 concurrent",
                "standalone/set_tagged/c1", "rediscache", "raw redis-py", 0.75),
    RatioTarget("set_tagged_raw_c32", "set ns + 2 tags >= 0.75 x raw redis-py SET, 32 concurrent",
                "standalone/set_tagged/c32", "rediscache", "raw redis-py", 0.75),
    RatioTarget("set_tagged_cashews_c1", "set ns + 2 tags >= 2 x cashews set with one tag, 1 concurrent",
                "standalone/set_tagged/c1", "rediscache", "cashews (1 tag)", 2.0),
    RatioTarget("set_tagged_cashews_c32", "set ns + 2 tags >= 3 x cashews set with one tag, 32 concurrent",
                "standalone/set_tagged/c32", "rediscache", "cashews (1 tag)", 3.0),
    RatioTarget("get_many_c1", "get_many(100) >= 10 x 100 sequential gets, 1 concurrent",
                "standalone/get_many/c1", "rediscache get_many(100)", "rediscache 100 x get", 10.0),
    RatioTarget("l1_hit_c1", "hybrid L1 hit >= 20 x raw redis-py GET+decode, 1 concurrent (issue 5)",
                "standalone/l1_hit/c1", "rediscache hybrid", "raw redis-py", 20.0),
]  # fmt: skip

STALENESS_P99_MS_AT_MOST = 50.0

# Issue 9: the cluster path against raw ``redis.asyncio.RedisCluster``, set against the single server.
#: (group name, workload as shown, subject row) of the operations measured on both topologies.
COMPARED = [
    ("get_hit", "get hit", ""),
    ("get_miss", "get miss", ""),
    ("set", "set", ""),
    ("set_tagged", "set ns + 2 tags", ""),
    ("get_many", "get_many(100)", "get_many(100)"),
]
#: Each cluster ratio (rediscache / raw RedisCluster) >= this x the same operation's single-server ratio.
CLUSTER_VS_STANDALONE_AT_LEAST = 0.95
#: The operations whose client CPU per operation is a target on the cluster (and shown for the single server).
CPU_COMPARED = [("get_hit", "get hit"), ("set_tagged", "set ns + 2 tags")]
#: rediscache's client CPU per operation on the cluster <= this x raw RedisCluster's.
CPU_AT_MOST = 1.15
RAW = "raw redis-py"
RC = "rediscache"

INVALIDATION_TIME_AT_MOST = 0.5  # x cashews' delete_tags
INVALIDATION_COMMAND_MS_AT_MOST = 10.0
MEMORY_AT_MOST = 1.6


def _paired(a: dict[str, Any], b: dict[str, Any], key: str = "runs") -> tuple[float | None, str]:
    """The median of the per-repetition ratios of ``key`` (throughput or CPU), and their IQR as text."""
    ratios = sorted(x / y for x, y in zip(a.get(key) or [], b.get(key) or [], strict=False) if x is not None and y)
    if not ratios:
        return None, ""
    if len(ratios) < 4:
        return statistics.median(ratios), ""
    low, _, high = statistics.quantiles(ratios, n=4)
    return statistics.median(ratios), f" (IQR {low:.2f}-{high:.2f})"


def _floor(measured: float | None, needed: float) -> tuple[bool | None, float | None]:
    if measured is None:
        return None, None
    return measured >= needed, measured / needed - 1


def _ceiling(measured: float | None, needed: float) -> tuple[bool | None, float | None]:
    if measured is None:
        return None, None
    if measured <= 0:
        return True, None
    return measured <= needed, needed / measured - 1


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    groups = {group["id"]: group for group in results.get("groups", [])}
    out: list[dict[str, Any]] = []
    for target in RATIO_TARGETS:
        row: dict[str, Any] = {"id": target.id, "text": target.text, "needed": f">= {target.at_least:g}"}
        group = groups.get(target.group)
        subjects = {s["label"]: s for s in group["subjects"]} if group else {}
        num, den = subjects.get(target.numerator), subjects.get(target.denominator)
        measured, spread = _paired(num, den) if num and den else (None, "")
        passed, margin = _floor(measured, target.at_least)
        shown = None if measured is None else f"{measured:.2f}x{spread}"
        row.update(measured=measured, shown=shown, passed=passed, margin=margin)
        if measured is None:
            row["note"] = "not measured" + (f" ({target.group} missing)" if group is None else " (error)")
        out.append(row)
    out += _cluster_targets(groups)
    out += _cpu_targets(groups)
    out.append(_invalidation_target(results.get("invalidation", [])))
    out.append(_memory_target(results.get("memory", [])))
    out.append(_staleness_target(results.get("staleness", [])))
    return out


def _staleness_target(rows: list[dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": "staleness",
        "text": "another process's L1 stops serving an old value within 50 ms at p99 (issue 5)",
        "needed": f"p99 <= {STALENESS_P99_MS_AT_MOST:g} ms",
    }
    standalone = next((r for r in rows if r.get("topology") == "standalone"), None)
    if standalone is None:
        row.update(measured=None, shown=None, passed=None, margin=None, note="not measured")
        return row
    passed, margin = _ceiling(standalone["p99_ms"], STALENESS_P99_MS_AT_MOST)
    shown = f"p99 {standalone['p99_ms']:.2f} ms (p50 {standalone['p50_ms']:.2f} ms)"
    cluster = next((r for r in rows if r.get("topology") == "cluster"), None)
    row.update(measured=standalone["p99_ms"], shown=shown, passed=passed, margin=margin)
    if cluster is not None:
        row["note"] = f"cluster: p99 {cluster['p99_ms']:.2f} ms"
    return row


def _invalidation_target(invalidations: list[dict[str, Any]]) -> dict[str, Any]:
    standalone = [inv for inv in invalidations if inv["topology"] == "standalone"]
    row: dict[str, Any] = {
        "id": "delete_by_tags",
        "text": "delete_by_tags, 100k members: <= 0.5 x cashews delete_tags time, exact count, "
        "no Redis command over 10 ms",
        "needed": f"<= {INVALIDATION_TIME_AT_MOST:g}x, exact, <= {INVALIDATION_COMMAND_MS_AT_MOST:g} ms",
    }
    if not standalone:
        row.update(measured=None, shown=None, passed=None, margin=None, note="not measured")
        return row
    largest = max(standalone, key=lambda inv: inv["size"])
    rc = largest["libraries"].get("rediscache", {})
    ratio = largest.get("rc_over_cashews")
    longest = rc.get("longest_command_ms")
    exact = rc.get("all_exact")
    time_ok, margin = _ceiling(ratio, INVALIDATION_TIME_AT_MOST)
    command_ok = longest is None or longest <= INVALIDATION_COMMAND_MS_AT_MOST
    passed = None if time_ok is None or exact is None else bool(time_ok and exact and command_ok)
    longest_text = "none over 1 ms" if longest is None else f"longest {longest:.1f} ms"
    shown = None if ratio is None else f"{ratio:.2f}x, exact={exact}, {longest_text}"
    row.update(measured=ratio, shown=shown, passed=passed, margin=margin, size=largest["size"])
    if largest["size"] != 100_000:
        row["note"] = f"measured at {largest['size']:,} members (quick mode)"
    return row


def _memory_target(memory: list[dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": "memory",
        "text": "Redis memory per entry, ns + 2 tags, 1 KiB payload: <= 1.6 x plain SET",
        "needed": f"<= {MEMORY_AT_MOST:g}x",
    }
    case = next((m for m in memory if m.get("tagged") and m.get("ttl") and m.get("ratio") is not None), None)
    if case is None:
        row.update(measured=None, shown=None, passed=None, margin=None, note="not measured")
        return row
    passed, margin = _ceiling(case["ratio"], MEMORY_AT_MOST)
    no_ttl = next((m for m in memory if m.get("tagged") and not m.get("ttl") and m.get("ratio") is not None), None)
    shown = f"{case['ratio']:.2f}x ({case['rediscache_bytes_per_entry']:.0f} vs {case['plain_bytes_per_entry']:.0f} B)"
    row.update(measured=case["ratio"], shown=shown, passed=passed, margin=margin)
    row["note"] = "TTL 1 h on both sides" + (f"; without TTL: {no_ttl['ratio']:.2f}x" if no_ttl else "")
    return row


def _pair(
    groups: dict[str, dict[str, Any]], topology: str, name: str, row: str, conc: int
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """rediscache's and raw redis-py's subjects of ``<topology>/<name>/c<conc>`` in its row ``row``."""
    group = groups.get(f"{topology}/{name}/c{conc}")
    if group is None:
        return None
    found: dict[str, dict[str, Any]] = {}
    for subject in group["subjects"]:
        if subject["row"] == row and subject["library"] in (RAW, RC):
            found.setdefault(subject["library"], subject)
    if RAW not in found or RC not in found:
        return None
    return found[RC], found[RAW]


def _concurrencies(groups: dict[str, dict[str, Any]]) -> list[int]:
    return sorted({g["concurrency"] for g in groups.values() if g["topology"] == "cluster"}) or [1, 32]


def compared_ratio(groups: dict[str, dict[str, Any]], topology: str, name: str, row: str, conc: int) -> float | None:
    """rediscache / raw redis-py (median of the per-repetition ratios) for one operation on one topology."""
    pair = _pair(groups, topology, name, row, conc)
    return _paired(*pair)[0] if pair else None


def cpu_figures(
    groups: dict[str, dict[str, Any]], topology: str, name: str, row: str, conc: int
) -> tuple[float | None, float | None, float | None, str]:
    """Client CPU µs per operation of rediscache and raw redis-py (medians), their paired ratio and its IQR."""
    pair = _pair(groups, topology, name, row, conc)
    if pair is None:
        return None, None, None, ""
    rc, raw = pair
    ratio, spread = _paired(rc, raw, key="cpu_runs")
    return rc.get("cpu_us_per_op"), raw.get("cpu_us_per_op"), ratio, spread


def _cluster_targets(groups: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for conc in _concurrencies(groups):
        for name, workload, row in COMPARED:
            needed = CLUSTER_VS_STANDALONE_AT_LEAST
            target: dict[str, Any] = {
                "id": f"cluster_{name}_c{conc}",
                "text": f"cluster {workload}: (rediscache / raw RedisCluster) >= {needed:g} x "
                f"(rediscache / raw Redis) on the single server, {conc} concurrent (issue 9)",
                "needed": f">= {needed:g}",
            }
            cluster = compared_ratio(groups, "cluster", name, row, conc)
            standalone = compared_ratio(groups, "standalone", name, row, conc)
            measured = cluster / standalone if cluster is not None and standalone else None
            passed, margin = _floor(measured, needed)
            shown = None if measured is None else f"{measured:.2f}x (cluster {cluster:.2f}x, single {standalone:.2f}x)"
            target.update(
                measured=measured, shown=shown, passed=passed, margin=margin, cluster=cluster, standalone=standalone
            )
            if measured is None:
                missing = [t for t, r in (("cluster", cluster), ("standalone", standalone)) if r is None]
                target["note"] = f"not measured ({', '.join(missing)} {name} c{conc} missing or failed)"
            out.append(target)
    return out


def _cpu_shown(rc_us: float | None, raw_us: float | None, ratio: float | None, spread: str) -> str | None:
    if ratio is None:
        return None
    figures = f", rediscache {rc_us:.1f} / raw {raw_us:.1f} µs/op" if rc_us is not None and raw_us is not None else ""
    return f"{ratio:.2f}x{spread}{figures}"


def _cpu_targets(groups: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for conc in _concurrencies(groups):
        for name, workload in CPU_COMPARED:
            target: dict[str, Any] = {
                "id": f"cluster_cpu_{name}_c{conc}",
                "text": f"cluster {workload}: client CPU per operation <= {CPU_AT_MOST:g} x raw RedisCluster's, "
                f"{conc} concurrent (issue 9)",
                "needed": f"<= {CPU_AT_MOST:g}x",
            }
            rc_us, raw_us, ratio, spread = cpu_figures(groups, "cluster", name, "", conc)
            passed, margin = _ceiling(ratio, CPU_AT_MOST)
            target.update(
                measured=ratio,
                shown=_cpu_shown(rc_us, raw_us, ratio, spread),
                passed=passed,
                margin=margin,
                rediscache_cpu_us=rc_us,
                raw_cpu_us=raw_us,
            )
            single = cpu_figures(groups, "standalone", name, "", conc)
            if single[2] is not None:
                target["note"] = f"single server: {_cpu_shown(*single)}"
            if ratio is None:
                target["note"] = f"not measured (cluster/{name}/c{conc} missing or failed)"
            out.append(target)
    return out
