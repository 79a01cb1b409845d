"""The console script `rediscache` and `python -m rediscache` are the same command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "rediscache"


@pytest.mark.skipif(not SCRIPT.exists(), reason="the package is not installed with its console script")
def test_the_console_script_lists_the_subcommands() -> None:
    done = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0
    for name in ("doctor", "stats", "inspect", "ls", "invalidate", "maintain", "fsck"):
        assert name in done.stdout


def test_every_subcommand_takes_the_common_options() -> None:
    for name in ("doctor", "stats", "inspect", "ls", "invalidate", "maintain", "fsck"):
        done = subprocess.run(
            [sys.executable, "-m", "rediscache", name, "--help"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        for option in ("--url", "--prefix", "--cluster", "--json"):
            assert option in done.stdout, (name, option)
