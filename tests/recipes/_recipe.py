"""The one python block of a recipe page that the docs test does not run (it is marked
``<!-- not run: ... -->``), taken from the page itself so that the tests here run what the page
shows, with only its addresses, file paths and key prefix swapped for the test's own."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

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
