"""The ``rediscache`` command for operators (extra ``rediscache[cli]``): ``doctor``, ``stats``,
``inspect``, ``ls``, ``invalidate``, ``maintain``, ``fsck``. See ``docs/operations.md``.

Exit status: 0 healthy / done, 1 problems found (or the server could not be reached), 2 usage error.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    """The console script's entry point."""
    try:
        from rediscache.cli.app import cli
    except ImportError as exc:  # click or rich missing: the extra is not installed
        print(f"rediscache: the command needs the 'cli' extra: pip install 'rediscache[cli]' ({exc})", file=sys.stderr)
        sys.exit(2)
    cli()
