"""Where the time of rediscache's get hit and tagged set goes, against raw redis-py's GET and SET.

Four views, all at 1 concurrent coroutine on the standalone server:

1. **Split per operation**, for a ladder of subjects from raw ``GET``/``SET``/``MGET`` to
   rediscache's call, with the very commands rediscache sends: a read is one ``MGET`` of the entry
   string and its shard's generation key, sent by redis-py's ``execute_command``, then by
   rediscache's transport (``transport.command``), then the whole ``get``; a tagged set is
   redis-py's ``EVALSHA`` of the set script, then ``transport.run``, then ``set``; ``get_many(100)``
   is raw ``MGET``, ``transport.command_many`` of the per-shard ``MGET`` commands, then ``get_many``. For
   each: wall time, the client's CPU time (``getrusage(RUSAGE_SELF)`` user + system: the Python
   process, event loop and socket calls included) and the server's time (``INFO commandstats``
   after ``CONFIG RESETSTAT``: the ``usec`` of the commands the subject sends itself; the periodic
   ``EVALSHA`` flush of access accounting is rediscache's reads' own). What is left is the loopback
   and scheduling wait. Rounds are interleaved; each subject's fastest round is kept.
2. **The adapter's own code** per call, without I/O: the transport's ``command`` and ``run``
   replaced by a stand-in returning a recorded reply.
3. **Steps in isolation** (``timeit``): building the key, finding the shard and the entry key,
   command packing (redis-py's and hiredis'), decoding the entry string, the codec, counting the
   hit, building the ``CacheEntry``; the set's key, call and packing.
4. **cProfile**: the functions with the most own time, and rediscache's (and pydantic's) functions by
   cumulative time, in microseconds per operation (cProfile's own overhead inflates small
   functions: compare rows, don't add them up).

Some steps call private helpers of the adapter; a step that no longer exists is reported as such,
not fatal.
"""

from __future__ import annotations

import cProfile
import gc
import pstats
import time
import timeit
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]
from redis.asyncio.connection import Connection

from bench.libraries import StandaloneClients
from bench.runner import Op, describe_error, measured_run, timed_run
from bench.servers import BenchServer
from bench.workloads import (
    BATCH,
    KEYS,
    PACKED,
    PAYLOAD,
    TTL,
    populate_standalone,
    raw_get_hit,
    raw_get_many,
    raw_set,
    rc_get_hit,
    rc_get_many,
    rc_set_tagged,
)
from rediscache import CacheEntry, CacheKey, RedisCacheAdapter
from rediscache._models import make_entry
from rediscache.redis.layout import decode_entry
from rediscache.redis.transport import evalsha

__all__ = ["profile_rediscache", "render_profile"]

TOP = 18
OURS = ("rediscache/", "pydantic/")
SPLIT_ROUNDS = 9
REPO = str(Path(__file__).resolve().parent.parent) + "/"


def _us(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1e6, timezone.utc)


def _commandstats(server: BenchServer) -> dict[str, dict[str, float]]:
    info: dict[str, Any] = server.admin.info("commandstats")
    return {name.removeprefix("cmdstat_"): stats for name, stats in info.items()}


#: Server commands of the bench's own bookkeeping, never counted.
_ADMIN = ("config|resetstat", "info", "config")


@dataclass
class Step:
    """One subject of the split: its operation and the commands it sends itself (commandstats also
    counts the commands its scripts run, and a script's time includes theirs)."""

    op: Op
    sent: frozenset[str]


async def _split_all(server: BenchServer, subjects: dict[str, Step | str], ops: int) -> dict[str, dict[str, Any]]:
    """Every subject measured ``SPLIT_ROUNDS`` times, interleaved; the fastest round of each is kept.

    The fastest, not the median: this view estimates what each step costs, and noise only ever adds.
    A subject given as a string is one that could not be built: that is its error.
    """
    errors: dict[str, str] = {name: step for name, step in subjects.items() if isinstance(step, str)}
    steps = {name: step for name, step in subjects.items() if isinstance(step, Step)}
    for name, step in steps.items():
        try:
            await timed_run(step.op, max(ops // 5, 1), 1)  # warm
        except Exception as exc:
            errors[name] = describe_error(exc)
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in steps if name not in errors}
    for _ in range(SPLIT_ROUNDS):
        for name in rounds:
            if name in errors:
                continue
            try:
                rounds[name].append(await _split(server, steps[name], max(ops // SPLIT_ROUNDS, 1)))
            except Exception as exc:
                errors[name] = describe_error(exc)
    out: dict[str, dict[str, Any]] = {}
    for name in subjects:
        runs = rounds.get(name, [])
        out[name] = {"error": errors[name]} if name in errors or not runs else min(runs, key=lambda r: r["wall_us"])
    return out


async def _split(server: BenchServer, step: Step, ops: int) -> dict[str, Any]:
    server.admin.config_resetstat()
    wall, cpu = await measured_run(step.op, ops, 1)
    stats = _commandstats(server)
    # CONFIG RESETSTAT and INFO itself show up too: only count the commands the workload sent.
    sent = {name: s for name, s in stats.items() if name not in _ADMIN}
    server_us = sum(float(s["usec"]) for name, s in sent.items() if name in step.sent) / ops
    return {
        "wall_us": wall / ops * 1e6,
        "client_cpu_us": cpu / ops * 1e6,
        "server_us": server_us,
        "other_us": wall / ops * 1e6 - cpu / ops * 1e6 - server_us,
        "commands": {
            name: {
                "per_op": int(stat["calls"]) / ops,
                "usec_per_call": float(stat["usec_per_call"]),
                "in_script": name not in step.sent,
            }
            for name, stat in sent.items()
        },
    }


async def _cprofile(op: Op, ops: int) -> dict[str, list[dict[str, Any]]]:
    """The functions with the most own time, and rediscache's own functions (and pydantic's) by cumulative time."""
    await timed_run(op, max(ops // 5, 1), 1)
    profiler = cProfile.Profile()
    gc.collect()
    profiler.enable()
    await measured_run(op, ops, 1, collect=False)
    profiler.disable()
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        short = filename.split("site-packages/")[-1].removeprefix(REPO)
        rows.append(
            {
                "function": f"{name} ({short}:{line})",
                "calls_per_op": calls / ops,
                "own_us_per_op": own / ops * 1e6,
                "cumulative_us_per_op": cumulative / ops * 1e6,
            }
        )
    rows.sort(key=lambda row: row["own_us_per_op"], reverse=True)
    ours = [row for row in rows if row["function"].split("(")[-1].startswith(OURS)]
    ours.sort(key=lambda row: row["cumulative_us_per_op"], reverse=True)
    return {"top": rows[:TOP], "ours": ours[:TOP]}


def _time_us(fn: Callable[[], object], number: int = 20_000) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def _tagged(n: int) -> CacheKey:
    return CacheKey(key=f"item:{n}", namespace=f"tenant:{n % 10}", tags=[f"cat:{n % 100}", "all"])


def _hiredis_pack(args: tuple[Any, ...]) -> bytes:
    from hiredis import pack_command  # what rediscache's transport packs with, when hiredis is installed

    packed: bytes = pack_command(args)
    return packed


def _steps(c: StandaloneClients, stored: bytes, generation: bytes) -> list[dict[str, Any]]:
    """Each step of a get hit and of a tagged set, alone; ``stored``/``generation``: what the read's
    MGET of item:1 answered."""
    rc: Any = c.rc  # private helpers below: the bench reads them, it doesn't depend on them
    conn = Connection()
    key = CacheKey(key="item:1")
    fk = key.full_key.encode()
    layout = rc.layout
    shard = layout.shard_of(fk)
    mget = (b"MGET", shard.entry_key(fk), shard.generation)
    tagged = _tagged(1)
    ttl_ms = 3_600_000

    def new_tagged_key() -> CacheKey:
        return CacheKey(key="item:1", namespace="tenant:1", tags=["cat:1", "all"])

    def pack_raw_set() -> object:
        return conn.pack_command("SET", "bench-raw:item:1", PACKED, "PX", ttl_ms)

    def set_call_args() -> tuple[Any, ...]:
        _, call = rc._set_call(tagged, PAYLOAD, ttl_ms)
        return evalsha(call)

    def read_entry() -> object:
        from rediscache.adapters import redis as adapter_module

        return rc._read(key, fk, shard.number, stored, int(generation), adapter_module._now())

    def entry() -> CacheEntry:
        decoded = decode_entry(stored)
        header = decoded.header
        return make_entry(key, PAYLOAD, _us(header.created_us), _us(header.expiry_us), header.hits, _us(0))

    def count_hit() -> int:
        count: int = rc._accounting.hit(shard.number, fk, 1, 1_700_000_000_000)
        return count

    def ttl_of(ttl: timedelta) -> int:
        from rediscache._models import validate_ttl
        from rediscache.adapters import redis as adapter_module

        result: int = adapter_module._ttl_ms(validate_ttl(ttl))
        return result

    def shard_and_key() -> bytes:
        fk = key.full_key.encode()
        entry_key: bytes = layout.shard_of(fk).entry_key(fk)
        return entry_key

    steps: list[tuple[str, str, Callable[[], object]]] = [
        ("get", "CacheKey(key=...)", lambda: CacheKey(key="item:1")),
        ("get", "key.full_key", lambda: key.full_key),
        ("get", "layout.shard_of + shard.entry_key", shard_and_key),
        ("get", "redis-py pack_command(MGET entry, generation)", lambda: conn.pack_command(*mget)),
        ("get", "hiredis pack_command(MGET entry, generation)", lambda: _hiredis_pack(mget)),
        ("get", "redis-py pack_command(GET key) [raw]", lambda: conn.pack_command("GET", "bench-raw:item:1")),
        ("get", "decode_entry(entry string)", lambda: decode_entry(stored)),
        (
            "get",
            "adapter._read(...) (header, generation, codec, accounting, CacheEntry: all after the MGET)",
            read_entry,
        ),
        ("get", "codec.decode(payload)", lambda: rc.codec.decode(decode_entry(stored).payload, key.full_key)),
        ("get", "msgpack.unpackb(payload) [raw]", lambda: msgpack.unpackb(PACKED)),
        ("get", "accounting.hit (counted in the process)", count_hit),
        ("get", "make_entry + 3 x _us()", entry),
        ("set", "CacheKey(key, namespace, 2 tags)", new_tagged_key),
        ("set", "validate_ttl + _ttl_ms", lambda: ttl_of(TTL)),
        ("set", "codec.encode(value)", lambda: rc.codec.encode(PAYLOAD, tagged.full_key)),
        ("set", "msgpack.packb(value) [raw]", lambda: msgpack.packb(PAYLOAD)),
        ("set", "adapter._set_call(key, value, ttl) (encode included)", lambda: rc._set_call(tagged, PAYLOAD, ttl_ms)),
        ("set", "redis-py pack_command(EVALSHA set)", lambda: conn.pack_command(*set_args)),
        ("set", "hiredis pack_command(EVALSHA set)", lambda: _hiredis_pack(set_args)),
        ("set", "redis-py pack_command(SET key value PX) [raw]", pack_raw_set),
    ]

    out = []
    try:
        set_args = set_call_args()
    except Exception as exc:
        return [{"operation": "-", "step": "building the set script's call", "error": describe_error(exc)}]
    for operation, name, fn in steps:
        try:
            out.append({"operation": operation, "step": name, "us": _time_us(fn), "error": None})
        except Exception as exc:
            out.append({"operation": operation, "step": name, "us": None, "error": describe_error(exc)})
    return out


def _built(build: Callable[[], Step]) -> Step | str:
    """A ladder step, or the error that kept it from being built (a private helper gone)."""
    try:
        return build()
    except Exception as exc:
        return describe_error(exc)


def _ladder(c: StandaloneClients) -> tuple[dict[str, Step | str], dict[str, Step | str], dict[str, Step | str]]:
    """The steps between raw ``GET``/``SET``/``MGET`` and rediscache's calls, with the very commands
    rediscache sends: through redis-py's general ``execute_command``, then through rediscache's own
    transport (its command path: no key or entry building, no decoding)."""
    rc: Any = c.rc
    execute: Callable[..., Awaitable[Any]] = c.raw.execute_command  # redis-py leaves it unannotated
    layout, transport = rc.layout, rc.transport

    def read_command(n: int) -> tuple[int, tuple[Any, ...]]:
        fk = CacheKey(key=f"item:{n}").full_key.encode()
        shard = layout.shard_of(fk)
        return shard.slot, (b"MGET", shard.entry_key(fk), shard.generation)

    def mget_execute() -> Step:
        commands = [read_command(n)[1] for n in range(KEYS)]

        async def op(i: int) -> None:
            await execute(*commands[i % KEYS])

        return Step(op, frozenset({"mget"}))

    def mget_transport() -> Step:
        commands = [read_command(n) for n in range(KEYS)]

        async def op(i: int) -> None:
            slot, command = commands[i % KEYS]
            await transport.command("get", slot, *command)

        return Step(op, frozenset({"mget"}))

    def set_calls() -> list[tuple[int, Any]]:
        calls = []
        for n in range(KEYS):
            shard, call = rc._set_call(_tagged(n), PAYLOAD, 3_600_000)
            calls.append((shard.slot, call))
        return calls

    def set_execute() -> Step:
        commands = [evalsha(call) for _, call in set_calls()]

        async def op(i: int) -> None:
            await execute(*commands[i % KEYS])

        return Step(op, frozenset({"evalsha"}))

    def set_transport() -> Step:
        calls = set_calls()

        async def op(i: int) -> None:
            slot, call = calls[i % KEYS]
            await transport.run("set", slot, call)

        return Step(op, frozenset({"evalsha"}))

    def many_transport() -> Step:
        batches = []
        for b in range(KEYS // BATCH):
            groups: dict[int, list[bytes]] = {}
            generations: dict[int, bytes] = {}
            for n in range(b * BATCH, (b + 1) * BATCH):
                fk = CacheKey(key=f"item:{n}").full_key.encode()
                shard = layout.shard_of(fk)
                groups.setdefault(shard.slot, []).append(shard.entry_key(fk))
                generations[shard.slot] = shard.generation
            batches.append([(slot, (b"MGET", *keys, generations[slot])) for slot, keys in groups.items()])

        async def op(i: int) -> None:
            await transport.command_many("get_many", batches[i % len(batches)])

        return Step(op, frozenset({"mget"}))

    reads: dict[str, Step | str] = {
        "redis-py MGET of the entry and its shard's generation": _built(mget_execute),
        "rediscache transport.command(MGET entry, generation)": _built(mget_transport),
    }
    writes: dict[str, Step | str] = {
        "redis-py EVALSHA of the set script (ns + 2 tags)": _built(set_execute),
        "rediscache transport.run of the set script": _built(set_transport),
    }
    batches: dict[str, Step | str] = {
        "rediscache transport.command_many(MGET per shard), per call": _built(many_transport),
    }
    return reads, writes, batches


async def _own_layer(c: StandaloneClients, url: str, ops: int) -> dict[str, float]:
    """rediscache's adapter code per call (everything above the transport), without I/O.

    ``get`` and tagged ``set`` run with the adapter's transport calls (``command``, ``run``) replaced
    by a coroutine that returns a recorded reply (no I/O, no event-loop switch); the raw rows do what
    the raw subjects do around their command (f-string key, msgpack) with the same stand-in.
    """
    real: Any = c.rc
    fk = CacheKey(key="item:1").full_key.encode()
    shard = real.layout.shard_of(fk)
    get_reply = await real.transport.command("get", shard.slot, b"MGET", shard.entry_key(fk), shard.generation)
    set_shard, set_call = real._set_call(CacheKey(key="item:1"), PAYLOAD, 3_600_000)
    set_reply = await real.transport.run("set", set_shard.slot, set_call)
    rc: Any = RedisCacheAdapter(url, key_prefix="bench-rc", flush_interval=3600)
    reply: Any = get_reply

    async def execute(*args: Any, **kwargs: Any) -> Any:
        return reply

    rc._checked = True  # no first-use checks (and no periodic flush): nothing is sent
    rc._transport.command = execute
    rc._transport.run = execute
    try:
        start = time.perf_counter()
        for i in range(ops):
            await rc.get(CacheKey(key=f"item:{i % KEYS}"))
        get_us = (time.perf_counter() - start) / ops * 1e6
        reply = set_reply
        start = time.perf_counter()
        for i in range(ops):
            await rc.set(_tagged(i % KEYS), PAYLOAD, ttl=TTL)
        set_us = (time.perf_counter() - start) / ops * 1e6
        reply = PACKED
        start = time.perf_counter()
        for i in range(ops):
            msgpack.unpackb(await execute("GET", f"bench-raw:item:{i % KEYS}"))
        raw_get_us = (time.perf_counter() - start) / ops * 1e6
        start = time.perf_counter()
        for i in range(ops):
            await execute("SET", f"bench-raw:item:{i % KEYS}", msgpack.packb(PAYLOAD), px=3_600_000)
        raw_set_us = (time.perf_counter() - start) / ops * 1e6
    finally:
        rc._transport.__dict__.pop("command", None)
        rc._transport.__dict__.pop("run", None)
        await rc.close()
    return {
        "rediscache get": get_us,
        "rediscache set ns + 2 tags": set_us,
        "raw get (key + unpackb)": raw_get_us,
        "raw set (key + packb)": raw_set_us,
    }


async def profile_rediscache(c: StandaloneClients, server: BenchServer, ops: int) -> dict[str, Any]:
    await populate_standalone(c)
    reads, writes, batch_steps = _ladder(c)
    subjects: dict[str, Step | str] = {
        "raw GET + unpackb": Step(raw_get_hit(c.raw), frozenset({"get"})),
        **reads,
        # the periodic flush of its access accounting (EVALSHA) is the reads' too
        "rediscache get hit": Step(rc_get_hit(c.rc), frozenset({"mget", "evalsha"})),
        "raw SET PX": Step(raw_set(c.raw), frozenset({"set"})),
        **writes,
        "rediscache set ns + 2 tags": Step(rc_set_tagged(c.rc), frozenset({"evalsha"})),
    }
    split = await _split_all(server, subjects, ops)
    batches: dict[str, Step | str] = {
        "raw MGET(100), per call": Step(raw_get_many(c.raw), frozenset({"mget"})),
        **batch_steps,
        "rediscache get_many(100), per call": Step(rc_get_many(c.rc), frozenset({"mget", "evalsha"})),
    }
    split.update(await _split_all(server, batches, max(ops // 20, SPLIT_ROUNDS)))
    profile: dict[str, Any] = {"ops": ops, "split": split, "errors": []}
    try:
        profile["own_layer"] = await _own_layer(c, server.url, ops)
    except Exception as exc:
        profile["errors"].append(f"adapter code without I/O: {describe_error(exc)}")
    profiled = ("rediscache get hit", "rediscache set ns + 2 tags", "raw GET + unpackb")
    profile["cprofile"] = {}
    for name in profiled:
        step = subjects[name]
        if isinstance(step, Step):
            profile["cprofile"][name] = await _cprofile(step.op, ops)
    try:
        rc: Any = c.rc
        fk = CacheKey(key="item:1").full_key.encode()
        shard = rc.layout.shard_of(fk)
        stored, generation = await c.raw.execute_command("MGET", shard.entry_key(fk), shard.generation)
        profile["steps"] = _steps(c, stored, generation)
    except Exception as exc:
        profile["steps"] = [{"operation": "-", "step": "reading a stored entry", "error": describe_error(exc)}]
    return profile


def render_profile(profile: dict[str, Any]) -> str:
    out = [
        "# Where rediscache's time goes (1 concurrent coroutine)",
        "",
        f"{profile['ops']:,} operations per subject, in {SPLIT_ROUNDS} interleaved rounds; each row is the "
        "subject's fastest round (noise only adds). See `bench/profiling.py` for the method.",
        "",
        "## Split per operation (µs)",
        "",
        "Client CPU is the whole Python process (event loop and socket calls included); server is the "
        "`usec` of the commands the client sent (`INFO commandstats`; a script's time includes the commands it "
        "runs, listed after it in italics). rediscache's reads send one `MGET` each, and its periodic flush of "
        "access accounting an `EVALSHA` per shard per second: both are counted.",
        "",
        "| Operation | wall | client CPU | server | other (loopback, scheduling) | commands per op |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, s in profile["split"].items():
        if s.get("error"):
            out.append(f"| {name} | error: {s['error']} | | | | |")
            continue
        commands = ", ".join(
            ("_{}_" if c.get("in_script") else "{}").format(f"{cmd} x{c['per_op']:.2f} @ {c['usec_per_call']:.1f} µs")
            for cmd, c in sorted(s["commands"].items(), key=lambda item: bool(item[1].get("in_script")))
        )
        out.append(
            f"| {name} | {s['wall_us']:.1f} | {s['client_cpu_us']:.1f} | {s['server_us']:.1f} | {s['other_us']:.1f} "
            f"| {commands} |"
        )
    own = profile.get("own_layer", {})
    if own:
        out += [
            "",
            "## rediscache's adapter code per call (µs, no I/O)",
            "",
            "`get` / tagged `set` with the transport's `command` and `run` replaced by a coroutine returning a "
            "recorded reply (key, shard, call and entry building, codec, accounting), against the raw subject's own "
            "work around its command (key f-string, msgpack).",
            "",
            "| Call | µs |",
            "| --- | ---: |",
            *[f"| {name} | {value:.2f} |" for name, value in own.items()],
        ]
    out += ["", "## Steps in isolation (µs per call, no I/O)", "", "| Operation | Step | µs |", "| --- | --- | ---: |"]
    for step in profile["steps"]:
        value = f"{step['us']:.2f}" if step.get("us") is not None else f"n/a ({step.get('error')})"
        out.append(f"| {step['operation']} | {step['step']} | {value} |")
    for name, tables in profile["cprofile"].items():
        for kind, rows in tables.items():
            title = (
                f"top {len(rows)} by own time"
                if kind == "top"
                else "rediscache's and pydantic's functions by cumulative time"
            )
            if not rows:
                continue
            out += [
                "",
                f"## cProfile: {name} ({title}, µs per operation)",
                "",
                "| Function | calls/op | own µs/op | cumulative µs/op |",
                "| --- | ---: | ---: | ---: |",
            ]
            for row in rows:
                out.append(
                    f"| `{row['function']}` | {row['calls_per_op']:.2f} | {row['own_us_per_op']:.2f} "
                    f"| {row['cumulative_us_per_op']:.2f} |"
                )
    if profile.get("errors"):
        out += ["", "## Errors", "", *[f"- {error}" for error in profile["errors"]]]
    return "\n".join(out) + "\n"
