"""Every ```python block of README.md and docs/kit.md runs as a program against real Redis and prints
what the docs say.

A block is a complete program. Its Redis URL (``redis://localhost:6379/0``) is replaced by the test
server's (the fail-open example's ``redis://127.0.0.1:1/0`` is left alone: nothing listens there),
and its ``key_prefix="myapp"`` by one under this test's prefix (one per block, so the blocks can run
at the same time). When a ```text block follows, the program's output must be exactly that.
"""

from __future__ import annotations

import asyncio
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.redis_servers import RedisServer

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "kit.md"]
DOC_URL = "redis://localhost:6379/0"
DOC_PREFIX = 'key_prefix="myapp"'
DEAD_URL = "redis://127.0.0.1:1/0"  # the fail-open example's server that is down on purpose
BLOCK = re.compile(r"```python\n(?P<code>.*?)```(?:\s*```text\n(?P<output>.*?)```)?", re.DOTALL)


@dataclass
class Example:
    doc: str
    line: int
    code: str
    output: str | None


def examples() -> list[Example]:
    found = []
    for doc in DOCS:
        text = doc.read_text()
        found += [
            Example(doc.name, text.count("\n", 0, match.start()) + 1, match["code"], match["output"])
            for match in BLOCK.finditer(text)
        ]
    return found


async def run(example: Example, url: str, prefix: str) -> tuple[int, str, str]:
    code = example.code.replace(DOC_URL, url).replace(DOC_PREFIX, f'key_prefix="{prefix}"')
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def test_the_docs_have_runnable_examples_with_their_output() -> None:
    found = examples()

    assert len(found) >= 10
    assert all(example.output is not None for example in found)
    # Any other URL would send the examples to a server the test does not own.
    urls = {url for example in found for url in re.findall(r"redis://[^\"' ]+", example.code)}
    assert urls == {DOC_URL, DEAD_URL}


async def test_every_example_runs_and_prints_what_the_docs_say(
    redis_server: RedisServer, redis_client: Any, key_prefix: str
) -> None:
    found = examples()

    results = await asyncio.gather(
        *(run(example, redis_server.url, f"{key_prefix}doc{n}") for n, example in enumerate(found))
    )

    for example, (returncode, stdout, stderr) in zip(found, results, strict=True):
        where = f"{example.doc}, the block at line {example.line}"
        assert returncode == 0, f"{where} failed:\n{stderr}"
        if example.output is not None:
            assert stdout == example.output, f"{where} printed:\n{stdout}"
