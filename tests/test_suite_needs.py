"""``pip install '.[test]'`` is enough to collect the suite: no test module imports, at module level,
a package only the ``dev`` extra has (a test that needs one imports it inside, and skips without it)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
DEV_ONLY = {"mypy", "ruff"}


def _module_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_test_module_imports_a_dev_only_package_at_module_level() -> None:
    offenders = {
        str(path.relative_to(TESTS)): sorted(_module_level_imports(path) & DEV_ONLY) for path in TESTS.rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}
