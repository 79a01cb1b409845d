"""Another OS process stops serving a value from its L1 soon after any instance changes it.

The bound here (a few seconds) is generous on purpose so CI stays stable on a busy machine; the
real staleness window is measured in bench/ (p50/p99).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from support.redis_servers import RedisCluster, RedisServer

from rediscache import CacheKey, HybridCacheAdapter, RedisCacheAdapter

READER = Path(__file__).with_name("reader_process.py")
BOUND = 3.0


class Reader:
    """The other process, and what it reports seeing."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def next_report(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), BOUND)
        assert line, "the reader process exited"
        report: dict[str, Any] = json.loads(line)
        return report

    async def sees(self, value: object) -> dict[str, Any]:
        """Wait (bounded) until the reader reports ``value``."""
        while True:
            report = await self.next_report()
            if report.get("value") == value:
                return report


async def _start_reader(url: str, prefix: str, *, cluster: bool) -> AsyncIterator[Reader]:
    args = [sys.executable, str(READER), url, prefix, "k", *(["--cluster"] if cluster else [])]
    process = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
    reader = Reader(process)
    try:
        assert await reader.next_report() == {"ready": True}
        yield reader
    finally:
        process.kill()
        await process.wait()


@pytest_asyncio.fixture
async def standalone_reader(redis_server: RedisServer, redis_client: Any, key_prefix: str) -> AsyncIterator[Reader]:
    async for reader in _start_reader(redis_server.url, key_prefix, cluster=False):
        yield reader


@pytest_asyncio.fixture
async def cluster_reader(redis_cluster: RedisCluster, cluster_client: Any, key_prefix: str) -> AsyncIterator[Reader]:
    async for reader in _start_reader(redis_cluster.url, key_prefix, cluster=True):
        yield reader


async def _changes_reach_the_other_process(writer: Any, reader: Reader) -> None:
    await writer.set(CacheKey(key="k", tags=["t"], namespace=None), "v1")
    first = await reader.sees("v1")
    await asyncio.sleep(0.05)  # the reader keeps reading v1 meanwhile, from its L1

    await writer.set(CacheKey(key="k", tags=["t"]), "v2")
    second = await reader.sees("v2")
    assert second["l1_hits"] > first["l1_hits"], "the reader never served from its L1"

    await writer.delete_by_tags(["t"])
    await reader.sees(None)

    await writer.set(CacheKey(key="k", namespace=None), "v3")
    await reader.sees("v3")
    await writer.delete_by_pattern("?")
    await reader.sees(None)

    await writer.set(CacheKey(key="k"), "v4")
    await reader.sees("v4")
    await writer.clear()
    await reader.sees(None)


async def test_a_plain_adapters_changes_reach_another_processes_l1(
    standalone_reader: Reader, redis_server: RedisServer, key_prefix: str
) -> None:
    async with RedisCacheAdapter(redis_server.url, key_prefix=key_prefix) as writer:
        await _changes_reach_the_other_process(writer, standalone_reader)


async def test_a_hybrid_adapters_changes_reach_another_processes_l1(
    standalone_reader: Reader, redis_server: RedisServer, key_prefix: str
) -> None:
    async with HybridCacheAdapter(redis_server.url, key_prefix=key_prefix) as writer:
        await _changes_reach_the_other_process(writer, standalone_reader)


@pytest.mark.cluster
async def test_changes_reach_another_processes_l1_on_a_cluster(
    cluster_reader: Reader, redis_cluster: RedisCluster, key_prefix: str
) -> None:
    async with RedisCacheAdapter(redis_cluster.url, key_prefix=key_prefix, cluster=True) as writer:
        await _changes_reach_the_other_process(writer, cluster_reader)
