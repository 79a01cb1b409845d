"""Every ```python block of README.md and of the documentation pages (docs/, but not the copy of the
port spec in docs/spec/) runs as a program against real Redis and prints what the docs say.

A block is a complete program. The blocks run in two interpreters, each running its share one after
another with fresh globals, so the imports are paid twice rather than once per block. A block reads
its server from ``REDIS_URL`` (and a cluster example from ``REDIS_CLUSTER_URL``), which the test sets
to the test servers'. It makes a fresh key prefix with
``PREFIX = f"myapp-{uuid4().hex[:8]}"``; the test swaps that line for a prefix under this test's own
(one per block, so the blocks can run at the same time, and the fixtures delete their keys). When a
```text block follows, the program's output must be exactly that.

A block that cannot run here (it needs a Sentinel, TLS certificates, Kubernetes) is preceded by an
HTML comment ``<!-- not run: <why> -->``; the test checks that each such block says why.

The only other URL a block may name is the fail-open example's ``redis://127.0.0.1:1/0``, where
nothing listens.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.redis_servers import RedisCluster, RedisServer

ROOT = Path(__file__).resolve().parents[1]
DOCS_DIR = ROOT / "docs"
NOT_RUN_DIRS = [DOCS_DIR / "spec"]  # a copy of the port spec: its blocks illustrate, they are not programs
DOC_URL = "redis://localhost:6379/0"
DOC_URL_FROM_ENV = f'os.environ.get("REDIS_URL", "{DOC_URL}")'
DOC_CLUSTER_URL_FROM_ENV = 'os.environ.get("REDIS_CLUSTER_URL", "redis://localhost:7000/0")'
FRESH_PREFIX = re.compile(r'PREFIX = f"myapp-\{uuid4\(\)\.hex\[:8\]\}"')
DEAD_URL = "redis://127.0.0.1:1/0"  # the fail-open example's server that is down on purpose
BLOCK = re.compile(r"```python\n(?P<code>.*?)```(?:\s*```text\n(?P<output>.*?)```)?", re.DOTALL)
NOT_RUN = re.compile(r"<!-- not run: (?P<why>[^>]*?) -->\s*$")


@dataclass
class Example:
    doc: str
    line: int
    code: str
    output: str | None
    not_run: str | None  # why it is not run, or None


def documents() -> list[Path]:
    pages = [
        page for page in sorted(DOCS_DIR.rglob("*.md")) if not any(folder in page.parents for folder in NOT_RUN_DIRS)
    ]
    return [ROOT / "README.md", *pages]


def examples() -> list[Example]:
    found = []
    for doc in documents():
        text = doc.read_text()
        for match in BLOCK.finditer(text):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            skip = NOT_RUN.search(before)
            found.append(
                Example(
                    str(doc.relative_to(ROOT)),
                    text.count("\n", 0, match.start()) + 1,
                    match["code"],
                    match["output"],
                    skip["why"] if skip else None,
                )
            )
    return found


def runnable() -> list[Example]:
    return [example for example in examples() if example.not_run is None]


RUNNER = Path(__file__).resolve().parent / "support" / "run_examples.py"
WORKERS = 2  # interpreters running examples side by side (each runs its share one after another)


def prepared(example: Example, prefix: str) -> str:
    code = FRESH_PREFIX.sub(f'PREFIX = "{prefix}"', example.code)
    return code.replace(DOC_URL_FROM_ENV, "os.environ['REDIS_URL']")


async def run_all(programs: list[str], env: dict[str, str]) -> list[dict[str, Any]]:
    """Run the programs in one interpreter; one result per program, in order."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(RUNNER),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(json.dumps(programs).encode()), 120)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode()
    results: list[dict[str, Any]] = json.loads(stdout)
    return results


def test_the_docs_have_runnable_examples_with_their_output() -> None:
    found = runnable()

    assert len(found) >= 15
    assert all(example.output is not None for example in found if example.doc == "README.md")


def test_new_examples_read_redis_url_and_make_a_fresh_prefix() -> None:
    for example in runnable():
        where = f"{example.doc}, the block at line {example.line}"
        code = example.code.replace(DOC_URL_FROM_ENV, "").replace(DOC_CLUSTER_URL_FROM_ENV, "")
        # Any other URL would send the examples to a server the test does not own.
        assert set(re.findall(r"rediss?://[^\"' ]+", code)) <= {DEAD_URL}, where
        if "key_prefix" in code:
            assert FRESH_PREFIX.search(code), f"{where}: no fresh PREFIX line"


def test_every_block_that_is_not_run_says_why() -> None:
    skipped = [example for example in examples() if example.not_run is not None]

    assert skipped, "the recipes' Sentinel and TLS blocks are expected to be marked"
    assert all(len(example.not_run.strip()) >= 10 for example in skipped if example.not_run is not None)


async def test_every_example_runs_and_prints_what_the_docs_say(
    redis_server: RedisServer, redis_client: Any, redis_cluster: RedisCluster, cluster_client: Any, key_prefix: str
) -> None:
    found = runnable()
    # redis_client and cluster_client delete this test's keys afterwards, on both.
    env = {"REDIS_URL": redis_server.url, "REDIS_CLUSTER_URL": redis_cluster.url}

    programs = [prepared(example, f"{key_prefix}doc{n}") for n, example in enumerate(found)]
    shares = [list(range(worker, len(found), WORKERS)) for worker in range(WORKERS)]
    outcomes = await asyncio.gather(*(run_all([programs[n] for n in share], env) for share in shares))
    results: dict[int, dict[str, Any]] = {}
    for share, outcome in zip(shares, outcomes, strict=True):
        results.update(zip(share, outcome, strict=True))

    for n, example in enumerate(found):
        where = f"{example.doc}, the block at line {example.line}"
        assert results[n]["ok"], f"{where} failed:\n{results[n]['error']}"
        if example.output is not None:
            assert results[n]["stdout"] == example.output, f"{where} printed:\n{results[n]['stdout']}"
