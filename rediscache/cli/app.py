"""The subcommands: each parses its options, calls the adapter or :mod:`rediscache.redis.introspect`
/ :mod:`rediscache.redis.doctor`, and formats what they return (a table by default, ``--json``
for scripts). Nothing here knows how Redis stores the cache."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict
from datetime import datetime
from functools import wraps
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from rediscache._exceptions import CacheError
from rediscache._models import CacheKey
from rediscache.adapters.redis import _ALL_SCRIPTS, ACL_COMMANDS, RedisCacheAdapter
from rediscache.redis.doctor import Finding, diagnose
from rediscache.redis.introspect import Introspector, Kind, ShardFigures

__all__ = ["cli"]

_T = TypeVar("_T")
#: Exit statuses (CONTRACT.md "Operations").
OK, PROBLEMS, USAGE = 0, 1, 2
DEFAULT_URL = "redis://localhost:6379/0"
_STYLE = {"ok": "green", "notice": "yellow", "problem": "bold red"}


class Options:
    def __init__(self, url: str, prefix: str, cluster: bool, shards: int | None, as_json: bool) -> None:
        self.url, self.prefix, self.cluster, self.shards, self.json = url, prefix, cluster, shards, as_json

    def adapter(self) -> RedisCacheAdapter:
        try:
            return RedisCacheAdapter(
                self.url,
                key_prefix=self.prefix,
                cluster=self.cluster,
                shards=self.shards,
                read_only_reads=True,  # the command reads nothing through get: nothing to flush
            )
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None


def _console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 120, soft_wrap=False)


def _fail(message: str) -> NoReturn:
    click.echo(f"rediscache: {message}", err=True)
    sys.exit(PROBLEMS)


def _emit_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def common(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--url``, ``--prefix``, ``--cluster``, ``--shards``, ``--json`` on a subcommand, turned into
    an :class:`Options` passed as ``options``."""

    @click.option(
        "--url",
        default=lambda: os.environ.get("REDISCACHE_URL", DEFAULT_URL),
        show_default="$REDISCACHE_URL or " + DEFAULT_URL,
        help="The Redis server (any node of a cluster with --cluster).",
    )
    @click.option(
        "--prefix",
        default=lambda: os.environ.get("REDISCACHE_PREFIX", "rediscache"),
        show_default="$REDISCACHE_PREFIX or rediscache",
        help="The cache's key_prefix.",
    )
    @click.option("--cluster", is_flag=True, help="The URL is a node of a Redis Cluster.")
    @click.option(
        "--shards", type=click.IntRange(1, 1024), default=None, help="The cache's shards= (default 1, 16 on a cluster)."
    )
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @wraps(command)
    def wrapper(url: str, prefix: str, cluster: bool, shards: int | None, as_json: bool, **kwargs: Any) -> Any:
        return command(Options(url, prefix, cluster, shards, as_json), **kwargs)

    return wrapper


def _run(options: Options, work: Callable[[RedisCacheAdapter], Coroutine[Any, Any, _T]]) -> _T:
    """Run ``work`` with an adapter, closed after; a ``CacheError`` ends the command with status 1."""
    adapter = options.adapter()

    async def go() -> _T:
        try:
            return await work(adapter)
        finally:
            await adapter.close()

    try:
        return asyncio.run(go())
    except CacheError as exc:
        _fail(str(exc))


def _selection(tag: str | None, namespace: str | None, pattern: str | None) -> tuple[Kind, str]:
    chosen = [(kind, value) for kind, value in (("tag", tag), ("namespace", namespace), ("pattern", pattern)) if value]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --tag, --namespace, --pattern")
    kind, value = chosen[0]
    return kind, value  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rediscache")
def cli() -> None:
    """Look into, check and maintain a rediscache cache in Redis or Redis Cluster.

    Exit status: 0 healthy / done, 1 problems found, 2 usage error."""


# -- doctor ------------------------------------------------------------------------------------------


@cli.command()
@common
@click.option("--strict", is_flag=True, help="Notices count as problems (exit 1).")
def doctor(options: Options, strict: bool) -> None:
    """Check the server for this cache: kind and version, cluster, memory policy, ACL, replicas,
    latency, scripts, layout. Exit 1 when something is unsafe (with --strict: on notices too)."""

    async def work(adapter: RedisCacheAdapter) -> tuple[list[Finding], dict[str, Any]]:
        return await diagnose(adapter.transport, adapter.layout, _ALL_SCRIPTS, ACL_COMMANDS, cluster=options.cluster)

    findings, facts = _run(options, work)
    bad = {"problem", "notice"} if strict else {"problem"}
    failed = any(finding.level in bad for finding in findings)
    if options.json:
        _emit_json({"healthy": not failed, "findings": [asdict(f) for f in findings], "facts": facts})
    else:
        console = _console()
        table = Table(title=f"rediscache doctor: {adapter_name(options)}", show_lines=False)
        for column in ("check", "", "found", "fix"):
            table.add_column(column, overflow="fold")
        for finding in findings:
            style = _STYLE[finding.level]
            table.add_row(finding.check, f"[{style}]{finding.level}[/]", finding.detail, finding.fix)
        console.print(table)
        console.print("[bold red]unsafe: see the fixes above[/]" if failed else "[green]healthy[/]")
    sys.exit(PROBLEMS if failed else OK)


def adapter_name(options: Options) -> str:
    return f"prefix {options.prefix!r} on {options.url.split('@')[-1]}"


# -- stats ---------------------------------------------------------------------------------------------


def _stats_table(stats: dict[str, Any], shards: list[ShardFigures]) -> Table:
    reads = stats["total_hits"] + stats["total_misses"]
    table = Table(
        title=(
            f"{stats['total_entries']} entries, {stats['total_hits']} hits / {stats['total_misses']} misses "
            f"(hit rate {stats['hit_rate']:.1%} of {reads}), payloads {stats['memory_usage_bytes']} B"
        ),
        caption="memory: MEMORY USAGE of the bookkeeping keys + a sample of entries scaled to the count",
    )
    for column in ("shard", "node", "entries", "expired", "tag m.", "ns m.", "hits", "misses", "payload B", "memory B"):
        table.add_column(column, justify="right" if column not in ("node",) else "left")
    for shard in shards:
        table.add_row(
            str(shard.number),
            shard.node,
            str(shard.entries),
            str(shard.expired_pending),
            str(shard.tag_members),
            str(shard.namespace_members),
            str(shard.hits),
            str(shard.misses),
            str(shard.payload_bytes),
            "n/a" if shard.memory is None else str(shard.memory),
        )
    return table


def _shard_json(shard: ShardFigures) -> dict[str, Any]:
    return {**asdict(shard), "memory": shard.memory}


@cli.command()
@common
@click.option("--watch", is_flag=True, help="Refresh in place until interrupted.")
@click.option(
    "--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True, help="Seconds between refreshes."
)
def stats(options: Options, watch: bool, interval: float) -> None:
    """The shared counters, per shard, with the index sizes and real memory."""

    async def read(adapter: RedisCacheAdapter) -> tuple[dict[str, Any], list[ShardFigures]]:
        figures = (await adapter.get_stats()).model_dump(mode="json")
        return figures, await Introspector(adapter.transport, adapter.layout).shard_figures()

    if not watch:
        figures, shards = _run(options, read)
        if options.json:
            _emit_json({"stats": figures, "shards": [_shard_json(s) for s in shards]})
        else:
            _console().print(_stats_table(figures, shards))
        return
    if options.json:
        raise click.UsageError("--watch refreshes a table; use --json without it (and call it in a loop)")

    async def loop(adapter: RedisCacheAdapter) -> None:
        with Live(console=_console(), auto_refresh=False) as live:
            while True:
                figures, shards = await read(adapter)
                live.update(_stats_table(figures, shards), refresh=True)
                await asyncio.sleep(interval)

    with contextlib.suppress(KeyboardInterrupt):
        _run(options, loop)


# -- inspect ---------------------------------------------------------------------------------------------


@cli.command()
@common
@click.argument("key")
@click.option("--namespace", default=None, help="The key's namespace (its full_key is NAMESPACE:KEY).")
def inspect(options: Options, key: str, namespace: str | None) -> None:
    """One entry's metadata: namespace, tags, created, expiry, size, generation, indexes. Exit 1 if absent."""
    try:
        full_key = CacheKey(key=key, namespace=namespace).full_key
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None

    async def work(adapter: RedisCacheAdapter) -> Any:
        return await Introspector(adapter.transport, adapter.layout).inspect(full_key)

    report = _run(options, work)
    if options.json:
        _emit_json(asdict(report))
    else:
        console = _console()
        if not report.present:
            console.print(f"{full_key!r}: no entry (shard {report.shard})")
        else:
            table = Table(title=f"{full_key} (shard {report.shard})", show_header=False)
            table.add_column("field")
            table.add_column("value", overflow="fold")
            for name, value in asdict(report).items():
                if name not in ("full_key", "shard"):
                    table.add_row(name, str(value))
            console.print(table)
    sys.exit(OK if report.present else PROBLEMS)


# -- ls --------------------------------------------------------------------------------------------------


@cli.command(name="ls")
@common
@click.option("--tag", default=None, help="Entries carrying this tag.")
@click.option("--namespace", default=None, help="Entries of this namespace.")
@click.option("--pattern", default=None, help="Entries whose full_key matches this glob (Redis's).")
@click.option("--count", "count_only", is_flag=True, help="Print the number of entries only.")
def list_keys(options: Options, tag: str | None, namespace: str | None, pattern: str | None, count_only: bool) -> None:
    """The full_keys of a tag, a namespace or a pattern, read from the indexes (never KEYS or SCAN)."""
    kind, name = _selection(tag, namespace, pattern)

    async def work(adapter: RedisCacheAdapter) -> int:
        introspector = Introspector(adapter.transport, adapter.layout)
        if count_only:
            total = await introspector.count(kind, name)
            if options.json:
                _emit_json({kind: name, "count": total})
            else:
                click.echo(str(total))
            return total
        listed: list[str] = []
        shown = 0
        async for page in introspector.members(kind, name):
            shown += len(page)
            if options.json:
                listed.extend(page)
            else:
                click.echo("\n".join(page))  # a page at a time: a large tag is never all in memory
        if options.json:
            _emit_json({kind: name, "count": len(listed), "keys": listed})
        return shown

    _run(options, work)


# -- invalidate ------------------------------------------------------------------------------------------


async def _with_progress(total: int, remaining: Callable[[], Awaitable[int]], job: Awaitable[_T]) -> _T:
    """Run ``job``, showing on stderr how much of ``total`` is gone (read from ``remaining()``)."""
    task = asyncio.ensure_future(job)
    columns = (SpinnerColumn(), TextColumn("invalidating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        bar = progress.add_task("invalidate", total=total or None)
        while not task.done():
            await asyncio.wait([task], timeout=0.2)
            if total:
                # The progress is advice; the invalidation's own answer is what counts.
                with contextlib.suppress(CacheError):
                    progress.update(bar, completed=max(0, total - await remaining()))
    return task.result()


#: Entries from which ``invalidate`` shows a progress bar.
_PROGRESS_FROM = 1000


@cli.command()
@common
@click.option("--tag", default=None, help="Remove the entries carrying this tag.")
@click.option("--namespace", default=None, help="Remove the entries of this namespace.")
@click.option("--pattern", default=None, help="Remove the entries whose full_key matches this glob.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def invalidate(options: Options, tag: str | None, namespace: str | None, pattern: str | None, yes: bool) -> None:
    """Remove the entries of a tag, namespace or pattern (atomically per batch, announced to every
    hybrid L1), after a confirmation unless --yes; prints how many were removed."""
    kind, name = _selection(tag, namespace, pattern)

    async def work(adapter: RedisCacheAdapter) -> int:
        introspector = Introspector(adapter.transport, adapter.layout)
        about = await introspector.count(kind, name) if kind == "pattern" else await introspector.indexed(kind, name)
        if not yes:
            about_text = f"about {about}" if kind != "pattern" else str(about)
            question = f"Remove {about_text} entries ({kind} {name!r}, prefix {options.prefix!r})?"
            if not click.confirm(question, default=False, err=True):
                click.echo("nothing removed", err=True)
                sys.exit(PROBLEMS)
        if kind == "tag":
            job = adapter.delete_by_tags([name])
        elif kind == "namespace":
            job = adapter.delete_by_namespace(name)
        else:
            job = adapter.delete_by_pattern(name)
        if about >= _PROGRESS_FROM and kind != "pattern" and not options.json:
            return await _with_progress(about, lambda: introspector.indexed(kind, name), job)
        return await job

    started = time.perf_counter()
    removed = _run(options, work)
    seconds = time.perf_counter() - started
    if options.json:
        _emit_json({kind: name, "removed": removed, "seconds": round(seconds, 3)})
    else:
        click.echo(f"removed {removed} entries ({kind} {name!r}) in {seconds:.2f} s")


# -- maintain --------------------------------------------------------------------------------------------


@cli.command()
@common
def maintain(options: Options) -> None:
    """One pass of cleanup and reconciliation: unindex expired entries, and the index members of
    entries Redis evicted. Prints what it removed."""

    async def work(adapter: RedisCacheAdapter) -> dict[str, int]:
        expired = await adapter.cleanup_expired()
        return {"expired_unindexed": expired, "vanished_unindexed": adapter.reconciled}

    result = _run(options, work)
    if options.json:
        _emit_json(result)
    else:
        click.echo(
            f"unindexed {result['expired_unindexed']} expired entries and "
            f"{result['vanished_unindexed']} evicted (vanished) ones"
        )


# -- fsck ------------------------------------------------------------------------------------------------


@cli.command()
@common
@click.option("--repair", is_flag=True, help="Fix what can be fixed, then check again.")
@click.option(
    "--batch", type=click.IntRange(1, 10_000), default=500, show_default=True, help="Entries read per round trip."
)
def fsck(options: Options, repair: bool, batch: int) -> None:
    """Check every invariant of the layout (entries, ledger, indexes, stats bytes, generations) in
    bounded batches. Exit 1 when a violation remains."""

    async def work(adapter: RedisCacheAdapter) -> Any:
        return await Introspector(adapter.transport, adapter.layout, batch=batch).fsck(repair=repair)

    report = _run(options, work)
    if options.json:
        _emit_json({**asdict(report), "healthy": report.healthy})
    else:
        console = _console()
        summary = (
            f"{report.shards} shard(s), {report.entries} live entries, {report.expired_pending} expired not trimmed"
        )
        if repair:
            summary += f"; repaired {report.repaired}"
        if report.healthy:
            console.print(f"[green]clean[/]: {summary}")
        else:
            table = Table(title=f"{len(report.violations)} violation(s): {summary}")
            for column in ("shard", "kind", "full_key", "detail", "repair"):
                table.add_column(column, overflow="fold")
            for violation in report.violations:
                table.add_row(
                    str(violation.shard),
                    violation.kind,
                    violation.full_key or "",
                    violation.detail,
                    "--repair" if violation.repairable else "no",
                )
            console.print(table)
    sys.exit(OK if report.healthy else PROBLEMS)
