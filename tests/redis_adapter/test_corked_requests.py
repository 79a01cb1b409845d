"""Requests sent while others of the same node await answers are corked and go out together at the
next event-loop pass: each caller still gets its own answer, and a cancelled caller's request never
leaves an answer for the next one."""

from __future__ import annotations

import asyncio

from support.factories import MakeAdapter
from support.redis_servers import RedisServer

from rediscache import CacheKey

KEYS = [CacheKey(key=f"k{i}") for i in range(300)]


async def test_many_concurrent_reads_each_get_their_own_value(
    redis_server: RedisServer, make_adapter: MakeAdapter
) -> None:
    adapter = await make_adapter(redis_server.url)
    await adapter.set_many([(key, f"value of {key.key}") for key in KEYS])

    entries = await asyncio.gather(*(adapter.get(key) for key in KEYS * 3))

    assert [entry.value if entry else None for entry in entries] == [f"value of {key.key}" for key in KEYS * 3]


async def test_reads_cancelled_in_flight_leave_no_answer_for_later_callers(
    redis_server: RedisServer, make_adapter: MakeAdapter
) -> None:
    adapter = await make_adapter(redis_server.url)
    await adapter.set_many([(key, f"value of {key.key}") for key in KEYS])
    await asyncio.gather(*(adapter.get(key) for key in KEYS[:40]))  # connections open and idle

    for passes in range(4):  # cancelled before, while and after their requests go out
        tasks = [asyncio.create_task(adapter.get(key)) for key in KEYS[:40]]
        for _ in range(passes):
            await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

        later = await asyncio.gather(*(adapter.get(key) for key in KEYS[40:120]))
        assert [entry.value if entry else None for entry in later] == [f"value of {key.key}" for key in KEYS[40:120]]
