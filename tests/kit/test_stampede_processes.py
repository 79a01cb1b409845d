"""The stampede test across OS processes: 4 processes x 50 concurrent calls on a cold key run the factory once."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from support.redis_servers import RedisServer

WORKER = Path(__file__).with_name("_stampede_worker.py")
PROCESSES = 4
CALLS = 50


async def run_worker(url: str, prefix: str) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        url,
        prefix,
        str(PROCESSES),
        str(CALLS),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode()
    result: dict[str, Any] = json.loads(stdout)
    return result


async def test_four_processes_of_fifty_calls_on_a_cold_key_run_the_factory_once(
    redis_server: RedisServer, redis_client: Any, key_prefix: str
) -> None:
    outputs = await asyncio.gather(*(run_worker(redis_server.url, key_prefix) for _ in range(PROCESSES)))

    assert int(await redis_client.get(f"{key_prefix}:factory-calls")) == 1
    for output in outputs:
        assert output["results"] == [{"value": "computed"}] * CALLS
    assert sum(output["health"]["factory_calls"] for output in outputs) == 1
