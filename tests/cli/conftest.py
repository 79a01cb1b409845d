"""The ``rediscache`` command run against the fixtures' servers.

``cli`` runs the command's click group in this process, in a thread of its own (the command runs its
own event loop with ``asyncio.run``, which cannot start inside the test's): the same code, arguments,
exit status and output as ``python -m rediscache`` without an interpreter start-up per call.
``tests/cli/test_entry_point.py`` runs the installed script and ``python -m rediscache`` as
subprocesses, the way an operator does.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pytest

RunCli = Callable[..., Coroutine[Any, Any, "Result"]]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def run_cli(*args: str, stdin: str = "", timeout: float = 60) -> Result:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rediscache",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


def _invoke(args: tuple[str, ...], stdin: str) -> Result:
    from click.testing import CliRunner

    from rediscache.cli.app import cli

    done = CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)
    return Result(done.exit_code, done.stdout, done.stderr)


async def invoke_cli(*args: str, stdin: str = "") -> Result:
    """The command run in this process (see the module docstring)."""
    return await asyncio.to_thread(_invoke, args, stdin)


@pytest.fixture
def cli() -> RunCli:
    """``await cli("ls", "--tag", "t", url=..., prefix=...)``: the command's exit code and output."""

    async def call(*args: str, url: str, prefix: str, extra: tuple[str, ...] = (), stdin: str = "") -> Result:
        return await invoke_cli(*args, "--url", url, "--prefix", prefix, *extra, stdin=stdin)

    return call
