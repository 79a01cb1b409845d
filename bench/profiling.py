"""Where the time of rediscache's get hit and tagged set goes, against raw redis-py's GET and SET.

Four views, all at 1 concurrent coroutine on the standalone server:

1. **Split per operation**, for a ladder of subjects from raw ``GET``/``SET`` to rediscache's call
   (a raw read of the entry's key, redis-py's ``EVALSHA`` of rediscache's script with the very
   arguments rediscache sends, rediscache's transport alone, the whole call): wall time, the
   client's CPU time (``time.process_time``: the Python process, event loop and socket calls
   included) and the server's time (``INFO commandstats`` after ``CONFIG RESETSTAT``). What is left
   is the loopback and scheduling wait. Rounds are interleaved; each subject's fastest round is kept.
2. **The adapter's own code** per call, without I/O: ``_transport.run`` replaced by a stand-in.
3. **Steps in isolation** (``timeit``): building the key, the script call, command packing (redis-py's
   and hiredis'), encoding, decoding, building the ``CacheEntry``.
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
from datetime import timedelta
from typing import Any

import msgpack  # type: ignore[import-untyped]
from redis.asyncio.connection import Connection

from bench.libraries import StandaloneClients
from bench.runner import Op, describe_error, measured_run, timed_run
from bench.servers import BenchServer
from bench.workloads import (
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

__all__ = ["profile_rediscache", "render_profile"]

TOP = 18
OURS = ("rediscache/", "pydantic/")
SPLIT_ROUNDS = 9


def _commandstats(server: BenchServer) -> dict[str, dict[str, float]]:
    info: dict[str, Any] = server.admin.info("commandstats")
    return {name.removeprefix("cmdstat_"): stats for name, stats in info.items()}


async def _split_all(server: BenchServer, subjects: dict[str, Op], ops: int) -> dict[str, dict[str, Any]]:
    """Every subject measured ``SPLIT_ROUNDS`` times, interleaved; the fastest round of each is kept.

    The fastest, not the median: this view estimates what each step costs, and noise only ever adds.
    """
    errors: dict[str, str] = {}
    for name, op in subjects.items():
        try:
            await timed_run(op, max(ops // 5, 1), 1)  # warm
        except Exception as exc:
            errors[name] = describe_error(exc)
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in subjects if name not in errors}
    for _ in range(SPLIT_ROUNDS):
        for name in rounds:
            if name in errors:
                continue
            try:
                rounds[name].append(await _split(server, subjects[name], ops // SPLIT_ROUNDS))
            except Exception as exc:
                errors[name] = describe_error(exc)
    out: dict[str, dict[str, Any]] = {}
    for name in subjects:
        runs = rounds.get(name, [])
        out[name] = {"error": errors[name]} if name in errors or not runs else min(runs, key=lambda r: r["wall_us"])
    return out


async def _split(server: BenchServer, op: Op, ops: int) -> dict[str, Any]:
    server.admin.config_resetstat()
    wall, cpu = await measured_run(op, ops, 1)
    stats = _commandstats(server)
    # CONFIG RESETSTAT and INFO itself show up too: only count the commands the workload sent.
    sent = {name: s for name, s in stats.items() if name not in ("config|resetstat", "info", "config")}
    # Commands run inside a script are counted too, and the script's own time includes theirs.
    top = {"evalsha"} if "evalsha" in sent else set(sent)
    server_us = sum(float(s["usec"]) for name, s in sent.items() if name in top) / ops
    return {
        "wall_us": wall / ops * 1e6,
        "client_cpu_us": cpu / ops * 1e6,
        "server_us": server_us,
        "other_us": wall / ops * 1e6 - cpu / ops * 1e6 - server_us,
        "commands": {
            name: {
                "per_op": int(stat["calls"]) / ops,
                "usec_per_call": float(stat["usec_per_call"]),
                "in_script": name not in top,
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
        short = filename.split("site-packages/")[-1].split("/work/main/")[-1]
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


def _steps(c: StandaloneClients) -> list[dict[str, Any]]:
    rc: Any = c.rc  # private helpers below: the bench reads them, it doesn't depend on them
    conn = Connection()
    key = CacheKey(key="item:1")
    tagged = CacheKey(key="item:1", namespace="tenant:1", tags=["cat:1", "all"])
    payload = rc.codec.encode(PAYLOAD, key.full_key)
    ledger = msgpack.packb([len(payload), False, []])
    ttl_ms = 3_600_000

    def hiredis_pack(args: tuple[Any, ...]) -> bytes:
        from hiredis import pack_command  # what rediscache's transport packs with, when hiredis is installed

        packed: bytes = pack_command(args)
        return packed

    def new_tagged_key() -> CacheKey:
        return CacheKey(key="item:1", namespace="tenant:1", tags=["cat:1", "all"])

    def pack_raw_set() -> object:
        return conn.pack_command("SET", "bench-raw:item:1", PACKED, "PX", ttl_ms)

    def get_call_args() -> tuple[Any, ...]:
        call, _ = rc._get_call(key)
        script, keys, args = call
        return ("EVALSHA", script.sha, len(keys), *keys, *args)

    def set_call_args() -> tuple[Any, ...]:
        script, keys, args = rc._set_call(tagged, PAYLOAD, ttl_ms)
        return ("EVALSHA", script.sha, len(keys), *keys, *args)

    def entry() -> CacheEntry | None:
        from rediscache.adapters import redis as adapter_module

        ms = adapter_module._ms
        return CacheEntry.model_construct(
            key=key, value=PAYLOAD, created_at=ms(1_700_000_000_000), expires_at=ms(1_700_003_600_000),
            hit_count=3, last_accessed=ms(1_700_000_100_000),
        )  # fmt: skip

    steps: list[tuple[str, str, Callable[[], object]]] = [
        ("get", "CacheKey(key=...)", lambda: CacheKey(key="item:1")),
        ("get", "key.full_key", lambda: key.full_key),
        ("get", "adapter._get_call(key) (shard, key names)", lambda: rc._get_call(key)),
        ("get", "redis-py pack_command(EVALSHA get, 3 keys)", lambda: conn.pack_command(*get_args)),
        ("get", "hiredis pack_command(EVALSHA get, 3 keys)", lambda: hiredis_pack(get_args)),
        ("get", "redis-py pack_command(GET key) [raw]", lambda: conn.pack_command("GET", "bench-raw:item:1")),
        ("get", "codec.decode(payload)", lambda: rc.codec.decode(payload, key.full_key)),
        ("get", "msgpack.unpackb(payload) [raw]", lambda: msgpack.unpackb(PACKED)),
        ("get", "msgpack.unpackb(ledger row) (_stored_key)", lambda: msgpack.unpackb(ledger)),
        ("get", "adapter._stored_key(key, ledger)", lambda: rc._stored_key(key, ledger)),
        ("get", "CacheEntry.model_construct + 3 x _ms()", entry),
        ("set", "CacheKey(key, namespace, 2 tags)", new_tagged_key),
        ("set", "validate_ttl + _ttl_ms", lambda: ttl_of(TTL)),
        ("set", "codec.encode(value)", lambda: rc.codec.encode(PAYLOAD, tagged.full_key)),
        ("set", "msgpack.packb(value) [raw]", lambda: msgpack.packb(PAYLOAD)),
        ("set", "adapter._set_call(key, value, ttl) (encode included)", lambda: rc._set_call(tagged, PAYLOAD, ttl_ms)),
        ("set", "redis-py pack_command(EVALSHA set, 8 keys, 7 args)", lambda: conn.pack_command(*set_args)),
        ("set", "hiredis pack_command(EVALSHA set, 8 keys, 7 args)", lambda: hiredis_pack(set_args)),
        ("set", "redis-py pack_command(SET key value PX) [raw]", pack_raw_set),
    ]

    def ttl_of(ttl: timedelta) -> int:
        from rediscache._models import validate_ttl
        from rediscache.adapters import redis as adapter_module

        result: int = adapter_module._ttl_ms(validate_ttl(ttl))
        return result

    out = []
    try:
        get_args = get_call_args()
        set_args = set_call_args()
    except Exception as exc:
        return [{"operation": "-", "step": "building the script calls", "error": describe_error(exc)}]
    for operation, name, fn in steps:
        try:
            out.append({"operation": operation, "step": name, "us": _time_us(fn), "error": None})
        except Exception as exc:
            out.append({"operation": operation, "step": name, "us": None, "error": describe_error(exc)})
    return out


def _script_ops(c: StandaloneClients) -> tuple[dict[str, Op], dict[str, Op]]:
    """The steps between raw ``GET``/``SET`` and rediscache's calls, with the very arguments rediscache sends.

    - redis-py's ``execute_command`` of a plain read of the entry's key (what a read without a
      script would cost), and of ``EVALSHA`` of the get and set scripts (the Lua design, through
      redis-py's general command path);
    - rediscache's transport (``_transport.run``) with pre-built calls: its own command path, no
      key or entry building.
    """
    rc: Any = c.rc
    execute: Callable[..., Awaitable[Any]] = c.raw.execute_command  # redis-py leaves it unannotated

    def command(call: Any) -> tuple[Any, ...]:
        script, keys, args = call
        return ("EVALSHA", script.sha, len(keys), *keys, *args)

    def tagged(n: int) -> CacheKey:
        return CacheKey(key=f"item:{n}", namespace=f"tenant:{n % 10}", tags=[f"cat:{n % 100}", "all"])

    get_script_calls = [rc._get_calls(CacheKey(key=f"item:{n}"))[1] for n in range(KEYS)]
    set_script_calls = [rc._set_call(tagged(n), PAYLOAD, 3_600_000)[1] for n in range(KEYS)]
    get_calls = [command(call) for call in get_script_calls]
    set_calls = [command(call) for call in set_script_calls]
    transport = rc._transport

    entry_keys = [call[3] for call in get_calls]  # EVALSHA sha numkeys KEYS[1]=entry key ...
    kind: dict[str, Any] = {"type": None}

    async def get_op(i: int) -> None:
        await execute(*get_calls[i % KEYS])

    async def entry_read_op(i: int) -> None:
        # The entry's own key, read without a script: GET of a string entry, HMGET of a hash entry.
        if kind["type"] is None:
            kind["type"] = await execute("TYPE", entry_keys[0])
        if kind["type"] in (b"hash", "hash"):
            await execute("HMGET", entry_keys[i % KEYS], "v", "c", "x")
        else:
            await execute("GET", entry_keys[i % KEYS])

    async def set_op(i: int) -> None:
        await execute(*set_calls[i % KEYS])

    async def transport_get_op(i: int) -> None:
        await transport.run("get", 0, get_script_calls[i % KEYS])

    async def transport_set_op(i: int) -> None:
        await transport.run("set", 0, set_script_calls[i % KEYS])

    reads: dict[str, Op] = {
        "raw read of the entry key (no script)": entry_read_op,
        "redis-py EVALSHA of the get script": get_op,
        "rediscache transport.run of the get script": transport_get_op,
    }
    writes: dict[str, Op] = {
        "redis-py EVALSHA of the set script (ns + 2 tags)": set_op,
        "rediscache transport.run of the set script": transport_set_op,
    }
    return reads, writes


async def _own_layer(c: StandaloneClients, url: str, ops: int) -> dict[str, float]:
    """rediscache's adapter code per call (everything above the transport), without I/O.

    ``get`` and tagged ``set`` run with the adapter's ``_transport.run`` replaced by a coroutine that
    returns a recorded reply (no I/O, no event-loop switch); the raw rows do what the raw subjects do
    around their command (f-string key, msgpack) with the same stand-in.
    """
    real: Any = c.rc
    get_reply = await real._transport.run("get", 0, real._get_calls(CacheKey(key="item:1"))[1])
    set_reply = await real._transport.run("set", 0, real._set_call(CacheKey(key="item:1"), PAYLOAD, 3_600_000)[1])
    rc: Any = RedisCacheAdapter(url, key_prefix="bench-rc")
    reply: Any = get_reply

    async def execute(*args: Any, **kwargs: Any) -> Any:
        return reply

    async def run(op: str, slot: int, call: Any, **options: Any) -> Any:
        return reply

    rc._checked = True
    rc._transport.run = run
    try:
        start = time.perf_counter()
        for i in range(ops):
            await rc.get(CacheKey(key=f"item:{i % KEYS}"))
        get_us = (time.perf_counter() - start) / ops * 1e6
        reply = set_reply
        start = time.perf_counter()
        for i in range(ops):
            key = CacheKey(key=f"item:{i % KEYS}", namespace=f"tenant:{i % 10}", tags=[f"cat:{i % 100}", "all"])
            await rc.set(key, PAYLOAD, ttl=TTL)
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
        await rc.close()
    return {
        "rediscache get": get_us,
        "rediscache set ns + 2 tags": set_us,
        "raw get (key + unpackb)": raw_get_us,
        "raw set (key + packb)": raw_set_us,
    }


async def profile_rediscache(c: StandaloneClients, server: BenchServer, ops: int) -> dict[str, Any]:
    await populate_standalone(c)
    script_reads, script_writes = _script_ops(c)
    subjects: dict[str, Op] = {
        "raw GET + unpackb": raw_get_hit(c.raw),
        **script_reads,
        "rediscache get hit": rc_get_hit(c.rc),
        "raw SET PX": raw_set(c.raw),
        **script_writes,
        "rediscache set ns + 2 tags": rc_set_tagged(c.rc),
    }
    split = await _split_all(server, subjects, ops)
    batches = {"raw MGET(100), per call": raw_get_many(c.raw), "rediscache get_many(100), per call": rc_get_many(c.rc)}
    split.update(await _split_all(server, batches, max(ops // 20, SPLIT_ROUNDS)))
    own = await _own_layer(c, server.url, ops)
    profiled = ("rediscache get hit", "rediscache set ns + 2 tags", "raw GET + unpackb")
    profiles = {name: await _cprofile(subjects[name], ops) for name in profiled}
    return {"ops": ops, "split": split, "own_layer": own, "cprofile": profiles, "steps": _steps(c)}


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
        "runs, listed after it in italics).",
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
            "`get` / tagged `set` with the adapter's `_transport.run` replaced by a coroutine returning a recorded "
            "reply (key, call and entry building, codec), against the raw subject's own work around its command "
            "(key f-string, msgpack).",
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
    return "\n".join(out) + "\n"
