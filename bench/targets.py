"""The issue's targets, checked against one run's results (all ratios measured in that same run).

A throughput target compares two subjects of one group with the median of their per-repetition
ratios. ``margin`` says by how much a target is met or missed: measured / needed - 1 for a floor
("at least"), needed / measured - 1 for a ceiling ("at most"); positive means met.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

__all__ = ["evaluate_targets"]


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

INVALIDATION_TIME_AT_MOST = 0.5  # x cashews' delete_tags
INVALIDATION_COMMAND_MS_AT_MOST = 10.0
MEMORY_AT_MOST = 1.6


def _paired(a: dict[str, Any], b: dict[str, Any]) -> tuple[float | None, str]:
    """The median of the per-repetition ratios, and their interquartile range as text."""
    ratios = sorted(x / y for x, y in zip(a["runs"], b["runs"], strict=False) if x is not None and y)
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
