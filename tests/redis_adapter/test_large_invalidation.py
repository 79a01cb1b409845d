"""A tag with 50k members is invalidated exactly, in batches, with no long command on the server."""

from __future__ import annotations

from typing import Any

import redis.asyncio
from support.factories import MakeAdapter
from support.redis_servers import RedisServer

from rediscache import CacheKey

MEMBERS = 50_000


async def test_a_50k_member_tag_is_invalidated_exactly_with_no_command_over_50_ms(
    make_adapter: MakeAdapter, private_server: RedisServer
) -> None:
    cache = await make_adapter(private_server.url)
    for start in range(0, MEMBERS, 2_000):
        await cache.set_many(
            [(CacheKey(key=f"item:{i}", tags=["big", f"own:{i}"]), {"i": i}) for i in range(start, start + 2_000)]
        )
    await cache.set(CacheKey(key="other", tags=["small"]), 0)
    admin = redis.asyncio.Redis.from_url(private_server.url)
    try:
        # Log every command over 1 ms (commands run inside scripts take microseconds and would
        # crowd the scripts out of the log at 0); count top-level script calls in commandstats.
        await admin.config_set("slowlog-max-len", 10_000)
        await admin.config_set("slowlog-log-slower-than", 1_000)
        await admin.slowlog_reset()
        await admin.config_resetstat()

        removed = await cache.delete_by_tags(["big"])

        log: list[dict[str, Any]] = await admin.slowlog_get(10_000)
        calls = (await admin.info("commandstats"))["cmdstat_evalsha"]["calls"]
    finally:
        await admin.config_set("slowlog-log-slower-than", 10_000)
        await admin.aclose()

    assert removed == MEMBERS
    # Batches of 500 at most, and after the first, of one time slice each: more calls, each short.
    assert calls >= MEMBERS // 500
    slow = [(entry["duration"], entry["command"][:40]) for entry in log if entry["duration"] >= 50_000]
    assert slow == []
    assert (await cache.get_stats()).total_entries == 1
    assert await cache.delete_by_tags([f"own:{i}" for i in range(100)]) == 0  # their other tags went too
