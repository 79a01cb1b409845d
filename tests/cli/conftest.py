"""The ``rediscache`` command run as a subprocess (``python -m rediscache``) against the fixtures'
servers, the way an operator runs it."""

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


@pytest.fixture
def cli() -> RunCli:
    """``await cli("ls", "--tag", "t", url=..., prefix=...)``: the command's exit code and output."""

    async def call(*args: str, url: str, prefix: str, extra: tuple[str, ...] = (), stdin: str = "") -> Result:
        return await run_cli(*args, "--url", url, "--prefix", prefix, *extra, stdin=stdin)

    return call
