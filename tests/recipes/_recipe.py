"""The one python block of a recipe page that the docs test does not run (it is marked
``<!-- not run: ... -->``), taken from the page itself so that the tests here run what the page
shows, with only its addresses, file paths and key prefix swapped for the test's own."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

from rediscache import CacheKey, HybridCacheAdapter

DOCS = Path(__file__).resolve().parents[2] / "docs"
_MARKED_BLOCK = re.compile(r"<!-- not run: [^>]*? -->\s*\n```python\n(?P<code>.*?)```", re.DOTALL)


def marked_block(page: str) -> str:
    """The code of the single block of ``docs/<page>`` marked as not run by the docs test."""
    blocks = _MARKED_BLOCK.findall((DOCS / page).read_text())
    assert len(blocks) == 1, f"docs/{page}: expected one block marked `<!-- not run: ... -->`, found {len(blocks)}"
    code: str = blocks[0]
    return code


def substituted(code: str, replacements: dict[str, str]) -> str:
    """``code`` with each key replaced by its value; a key the code does not contain fails the
    test, so a recipe that changes its text cannot leave the test running something else."""
    for old, new in replacements.items():
        assert old in code, f"the recipe no longer contains {old!r}:\n{code}"
        code = code.replace(old, new)
    return code


def run_block(code: str) -> dict[str, Any]:
    """Run the block's statements (it builds objects, it awaits nothing) and return its globals."""
    namespace: dict[str, Any] = {"__name__": "recipe"}
    exec(compile(code, "<recipe>", "exec"), namespace)
    return namespace


async def read_until_in_l1(hybrid: HybridCacheAdapter, key: CacheKey, value: Any, timeout: float = 5.0) -> None:
    """Read ``key`` through ``hybrid`` until its L1 keeps the entry: a read that met an invalidation
    of its key (the writer's own ``set`` publishes one) does not promote. Without this a test of
    invalidations could pass on reads that all went to Redis."""
    deadline = time.monotonic() + timeout
    while (await hybrid.get_l1_stats()).total_entries == 0:
        assert time.monotonic() < deadline, f"the hybrid did not keep {key.full_key} in its L1 within {timeout} s"
        entry = await hybrid.get(key)
        assert entry is not None and entry.value == value
        await asyncio.sleep(0.01)
