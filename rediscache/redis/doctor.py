"""``rediscache doctor``: what the server a cache runs on means for it, checked over the adapter's own
transport (a single server or every primary of a cluster).

Each check gives a :class:`Finding` of level ``ok``, ``notice`` (works, with a cost worth knowing)
or ``problem`` (unsafe or broken: the cache will fail or misbehave), with a one-line fix. What is a
problem: a server the cache cannot run on (Redis older than 6.2), a cluster that is not ``ok``,
a user the cache's commands or keys are denied to, scripts that cannot be loaded, an unreachable
node. Every ``maxmemory-policy`` is correct for this cache (``docs/redis-layout.md``, "Eviction"):
``allkeys-*`` is a notice (evicting bookkeeping resets a shard's generation: a hit-rate loss, never
a stale read), as are ``noeviction`` at a limit (writes fail when full), no persistence and no
replicas.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from rediscache._exceptions import CacheError
from rediscache.redis.layout import LAYOUT_VERSION, Layout
from rediscache.redis.scripts import Script
from rediscache.redis.transport import Node, Transport

__all__ = ["Finding", "Level", "acl_probes", "diagnose"]

Level = Literal["ok", "notice", "problem"]
#: The oldest Redis the scripts run on (ZRANDMEMBER, ZMSCORE, GETEX-era Lua API).
MIN_VERSION = (6, 2)
_PINGS = 5


@dataclass(frozen=True)
class Finding:
    check: str
    level: Level
    detail: str
    fix: str = ""


def _text(answer: Any) -> str:
    return answer.decode() if isinstance(answer, bytes) else str(answer)


def _info(answer: Any) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in _text(answer).splitlines():
        if ":" in line and not line.startswith("#"):
            name, value = line.split(":", 1)
            fields[name] = value.strip()
    return fields


def _config(answer: Any) -> dict[str, str]:
    # A map under RESP3, a flat [name, value, ...] list under RESP2.
    if isinstance(answer, dict):
        return {_text(k): _text(v) for k, v in answer.items()}
    items = list(answer)
    return {_text(items[i]): _text(items[i + 1]) for i in range(0, len(items) - 1, 2)}


def acl_probes(layout: Layout, commands: tuple[str, ...]) -> list[tuple[str, tuple[bytes, ...]]]:
    """One ``ACL DRYRUN`` argument list per command the cache needs, on keys and channels of this
    cache (so the user's key and channel patterns are checked too)."""
    shard = layout.shards[0]
    key, entry, channel = shard.ledger, shard.entry_key(b"doctor"), shard.channel
    args: dict[str, tuple[bytes, ...]] = {
        "evalsha": (b"evalsha", b"0" * 40, b"2", key, entry),
        "script|load": (b"script", b"load", b"return 1"),
        "mget": (b"mget", entry, shard.generation),
        "zscan": (b"zscan", shard.keys, b"0"),
        "set": (b"set", entry, b"v"),
        "subscribe": (b"subscribe", layout.channel),
        "ssubscribe": (b"ssubscribe", channel),
        "ping": (b"ping",),
        "wait": (b"wait", b"0", b"0"),
        "cluster|slots": (b"cluster", b"slots"),
        "cluster|nodes": (b"cluster", b"nodes"),
        "info": (b"info",),
        "del": (b"del", entry),
        "exists": (b"exists", key),
        "get": (b"get", entry),
        "getrange": (b"getrange", entry, b"0", b"1"),
        "hdel": (b"hdel", key, b"f"),
        "hget": (b"hget", key, b"f"),
        "hincrby": (b"hincrby", key, b"f", b"1"),
        "hmget": (b"hmget", key, b"f"),
        "hset": (b"hset", key, b"f", b"v"),
        "setrange": (b"setrange", entry, b"0", b"v"),
        "time": (b"time",),
        "touch": (b"touch", key),
        "zadd": (b"zadd", shard.keys, b"0", b"m"),
        "zcard": (b"zcard", shard.keys),
        "zcount": (b"zcount", shard.keys, b"0", b"1"),
        "zrandmember": (b"zrandmember", shard.keys),
        "zrange": (b"zrange", shard.keys, b"0", b"1"),
        "zrangebylex": (b"zrangebylex", shard.tags, b"-", b"+"),
        "zlexcount": (b"zlexcount", shard.tags, b"-", b"+"),
        "zrangebyscore": (b"zrangebyscore", shard.keys, b"0", b"1"),
        "zrem": (b"zrem", shard.keys, b"m"),
        "publish": (b"publish", layout.channel, b"m"),
        "spublish": (b"spublish", channel, b"m"),
    }
    return [(name, args[name]) for name in commands if name in args]


# Commands the cache can do without (ACL_COMMANDS in rediscache/adapters/redis.py explains).
_OPTIONAL = {"info", "cluster|slots", "cluster|nodes", "ssubscribe", "spublish", "wait"}


async def diagnose(
    transport: Transport,
    layout: Layout,
    scripts: tuple[Script, ...],
    acl_commands: tuple[str, ...],
    *,
    cluster: bool,
) -> tuple[list[Finding], dict[str, Any]]:
    """Every check, and the raw facts found (for ``--json``)."""
    findings: list[Finding] = []
    facts: dict[str, Any] = {"prefix": layout.prefix, "shards": layout.shard_count, "layout_version": LAYOUT_VERSION}
    try:
        nodes = await transport.primaries()
    except CacheError as exc:
        findings.append(Finding("connect", "problem", str(exc), "check --url (and --cluster for a cluster)"))
        return findings, facts
    facts["primaries"] = [node.name for node in nodes]
    for check in (_latency, _server, _memory, _persistence):
        try:
            findings += await check(transport, nodes, facts)
        except CacheError as exc:
            findings.append(Finding(check.__name__.strip("_"), "problem", str(exc), "check the server is reachable"))
    if cluster:
        findings += await _cluster(transport, layout, nodes, facts)
    findings += await _acl(transport, nodes, layout, acl_commands, facts)
    try:
        await transport.load_scripts("doctor", scripts)
        findings.append(Finding("scripts", "ok", f"{len(scripts)} scripts load on every primary"))
    except CacheError as exc:
        findings.append(
            Finding("scripts", "problem", f"cannot load the scripts: {exc}", "allow +script|load and +evalsha")
        )
    try:
        findings += await _layout(transport, layout, facts)
    except CacheError as exc:
        findings.append(
            Finding(
                "layout",
                "problem",
                f"cannot read this cache's keys: {exc}",
                f"give the user the key pattern ~{layout.prefix}* (and &{layout.prefix}*)",
            )
        )
    return findings, facts


async def _on_each(transport: Transport, nodes: list[Node], *command: Any) -> list[Any]:
    return list(await asyncio.gather(*(transport._call_on(node, command) for node in nodes)))


async def _latency(transport: Transport, nodes: list[Node], facts: dict[str, Any]) -> list[Finding]:
    found = []
    latencies: dict[str, float] = {}
    for node in nodes:
        times = []
        for _ in range(_PINGS):
            started = time.perf_counter()
            await transport._call_on(node, (b"PING",))
            times.append(time.perf_counter() - started)
        latencies[node.name] = sorted(times)[len(times) // 2]
    facts["latency_ms"] = {name: round(value * 1000, 3) for name, value in latencies.items()}
    worst = max(latencies.values())
    budget = transport.options.socket_timeout
    if worst > budget / 2:
        found.append(
            Finding(
                "latency",
                "problem",
                f"round trip {worst * 1000:.1f} ms, over half of socket_timeout ({budget * 1000:.0f} ms)",
                "raise socket_timeout and operation_timeout, or run closer to Redis",
            )
        )
    else:
        found.append(Finding("latency", "ok", f"round trip {worst * 1000:.2f} ms (median of {_PINGS} PINGs)"))
    return found


async def _server(transport: Transport, nodes: list[Node], facts: dict[str, Any]) -> list[Finding]:
    found = []
    infos = [_info(answer) for answer in await _on_each(transport, nodes, b"INFO", b"server")]
    kinds = set()
    for node, info in zip(nodes, infos, strict=True):
        kind = "Valkey" if "valkey_version" in info or info.get("server_name") == "valkey" else "Redis"
        version = info.get("valkey_version") or info.get("redis_version", "0")
        kinds.add(f"{kind} {version}")
        facts.setdefault("servers", {})[node.name] = {"kind": kind, "version": version}
        parsed = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
        # Valkey reports a redis_version of 7.2.4 for compatibility: its own version is what counts.
        if kind == "Redis" and parsed < MIN_VERSION:
            found.append(
                Finding(
                    "server",
                    "problem",
                    f"{node.name} runs Redis {version}; the scripts need 6.2 or later",
                    "upgrade Redis to 6.2+ (7+ for sharded pub/sub)",
                )
            )
    if not found:
        found.append(Finding("server", "ok", ", ".join(sorted(kinds))))
    return found


async def _memory(transport: Transport, nodes: list[Node], facts: dict[str, Any]) -> list[Finding]:
    found = []
    for node in nodes:
        try:
            settings = _config(await transport._call_on(node, (b"CONFIG", b"GET", b"maxmemory*")))
        except Exception as exc:
            found.append(
                Finding(
                    "maxmemory",
                    "notice",
                    f"cannot read the eviction settings of {node.name} ({exc})",
                    "check maxmemory-policy in your provider's console",
                )
            )
            continue
        limit = int(settings.get("maxmemory", "0") or 0)
        policy = settings.get("maxmemory-policy", "?")
        facts.setdefault("maxmemory", {})[node.name] = {"maxmemory": limit, "policy": policy}
        where = f"{node.name}: maxmemory {limit or 'unlimited'}, policy {policy}"
        if policy.startswith("allkeys-"):
            found.append(
                Finding(
                    "maxmemory",
                    "notice",
                    f"{where}: when full, Redis may evict a shard's bookkeeping; that shard then starts "
                    "a new generation and all its entries read as misses (never stale): a hit-rate loss",
                    "none on a server only for caches; on one shared with other data, give the cache its own",
                )
            )
        elif policy == "noeviction" and limit:
            found.append(
                Finding(
                    "maxmemory",
                    "notice",
                    f"{where}: when full, writes fail (CacheError) and reads keep working",
                    "give entries TTLs and watch used_memory, or use volatile-lru",
                )
            )
        elif not limit:
            found.append(
                Finding(
                    "maxmemory",
                    "notice",
                    f"{where}: no limit, Redis grows until the OS stops it",
                    "set maxmemory (and volatile-lru) on a server dedicated to caching",
                )
            )
        else:
            found.append(
                Finding("maxmemory", "ok", f"{where}: entries are evicted, bookkeeping kept; run `maintain` regularly")
            )
    return found


async def _persistence(transport: Transport, nodes: list[Node], facts: dict[str, Any]) -> list[Finding]:
    found = []
    for node in nodes:
        persistence = _info(await transport._call_on(node, (b"INFO", b"persistence")))
        replication = _info(await transport._call_on(node, (b"INFO", b"replication")))
        aof = persistence.get("aof_enabled") == "1"
        rdb = persistence.get("rdb_last_save_time") is not None and persistence.get("rdb_changes_since_last_save")
        replicas = int(replication.get("connected_slaves", "0"))
        facts.setdefault("replication", {})[node.name] = {
            "role": replication.get("role"),
            "replicas": replicas,
            "aof": aof,
        }
        if replication.get("role") not in (None, "master"):
            found.append(
                Finding(
                    "replicas",
                    "problem",
                    f"{node.name} is a {replication.get('role')}: writes fail there",
                    "point --url at the primary",
                )
            )
            continue
        if replicas:
            found.append(
                Finding(
                    "replicas",
                    "ok",
                    f"{node.name}: {replicas} replica(s); wait_for_replicas='auto' waits for 1 after each "
                    "invalidation (replica_timeout), so a failover keeps it",
                )
            )
        else:
            found.append(
                Finding(
                    "replicas",
                    "notice",
                    f"{node.name}: no replica; wait_for_replicas='auto' sends no WAIT. A crash loses the cache "
                    f"(persistence: {'AOF' if aof else 'RDB snapshots' if rdb else 'none'})",
                    "add a replica if a cold cache after a crash is costly",
                )
            )
    return found


async def _cluster(transport: Transport, layout: Layout, nodes: list[Node], facts: dict[str, Any]) -> list[Finding]:
    found = []
    try:
        for node, answer in zip(nodes, await _on_each(transport, nodes, b"CLUSTER", b"INFO"), strict=True):
            state = _info(answer).get("cluster_state", "?")
            if state != "ok":
                found.append(
                    Finding("cluster", "problem", f"{node.name}: cluster_state {state}", "check CLUSTER NODES")
                )
    except Exception as exc:
        found.append(Finding("cluster", "problem", f"cannot read CLUSTER INFO: {exc}", "allow +cluster|info"))
        return found
    spread = Counter([(await transport.node_for(shard.slot)).name for shard in layout.shards])
    facts["shard_spread"] = dict(spread)
    average = layout.shard_count / max(len(nodes), 1)
    text = ", ".join(f"{name}: {count}" for name, count in sorted(spread.items()))
    idle = [node.name for node in nodes if node.name not in spread]
    if idle or max(spread.values()) > 1.5 * average:
        found.append(
            Finding(
                "cluster",
                "notice",
                f"shards per master uneven ({text}{'; none on ' + ', '.join(idle) if idle else ''})",
                f"use shards= a multiple of the {len(nodes)} masters",
            )
        )
    elif not found:
        found.append(Finding("cluster", "ok", f"cluster_state ok, {layout.shard_count} shards per master: {text}"))
    return found


async def _acl(
    transport: Transport, nodes: list[Node], layout: Layout, commands: tuple[str, ...], facts: dict[str, Any]
) -> list[Finding]:
    node = nodes[0]
    try:
        user = _text(await transport._call_on(node, (b"ACL", b"WHOAMI")))
    except Exception as exc:
        return [
            Finding(
                "acl",
                "notice",
                f"cannot ask who the user is ({exc}); the scripts check below still proves the basics",
                "allow +acl|whoami +acl|dryrun to let doctor check every permission",
            )
        ]
    facts["user"] = user
    denied: list[str] = []
    optional: list[str] = []
    unknown: list[str] = []
    for name, args in acl_probes(layout, commands):
        try:
            answer = await transport._call_on(node, (b"ACL", b"DRYRUN", user.encode(), *args))
        except Exception as exc:
            text = str(exc)
            if "unknown command" in text.lower() or "NOPERM" in text or "no permissions" in text:
                unknown.append(f"{name} ({text})")
                break
            answer = text
        if _text(answer) != "OK":
            (optional if name in _OPTIONAL else denied).append(name)
    facts["acl"] = {"user": user, "denied": denied, "optional_denied": optional}
    if unknown:
        return [
            Finding(
                "acl",
                "notice",
                f"user {user!r}: cannot run ACL DRYRUN ({unknown[0]})",
                "allow +acl|dryrun (or check the user's rules by hand)",
            )
        ]
    if denied:
        return [
            Finding(
                "acl",
                "problem",
                f"user {user!r} is denied {', '.join(denied)} on this cache's keys and channels",
                f"ACL SETUSER {user} ~{layout.prefix}* &{layout.prefix}* +" + " +".join(denied),
            )
        ]
    note = f" (optional, denied: {', '.join(optional)})" if optional else ""
    return [Finding("acl", "ok", f"user {user!r} may run every command the cache needs{note}")]


async def _layout(transport: Transport, layout: Layout, facts: dict[str, Any]) -> list[Finding]:
    answers = await transport.command_many(
        "doctor", [(shard.slot, (b"EXISTS", *shard.index_keys)) for shard in layout.shards]
    )
    complete = sum(1 for answer in answers if int(answer) == 6)
    partial = sum(1 for answer in answers if 0 < int(answer) < 6)
    facts["layout"] = {"version": LAYOUT_VERSION, "shards_with_data": complete, "shards_partial": partial}
    if complete == 0 and partial == 0:
        return [
            Finding(
                "layout",
                "notice",
                f"no data of layout {LAYOUT_VERSION} under prefix {layout.prefix!r} with {layout.shard_count} shard(s)",
                "check --prefix and --shards (a cache is found only with the shard count it was written with)",
            )
        ]
    detail = f"layout {LAYOUT_VERSION}: {complete} of {layout.shard_count} shards hold data"
    if partial:
        detail += f", {partial} with bookkeeping partly evicted (their next write starts a new generation)"
    return [Finding("layout", "ok" if not partial else "notice", detail)]
