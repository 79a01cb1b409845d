"""Many concurrent calls on one adapter raise nothing and leave a consistent picture."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from rediscache._models import CacheKey
from rediscache._port import CacheAdapter

N = 200


def parity(i: int) -> str:
    return "even" if i % 2 == 0 else "odd"


async def test_concurrent_sets_of_distinct_keys_are_all_stored(adapter: CacheAdapter) -> None:
    await asyncio.gather(*(adapter.set(CacheKey(key=f"k{i}", tags=["t"]), i) for i in range(N)))

    entries = await adapter.get_many([CacheKey(key=f"k{i}") for i in range(N)])

    assert [entry.value if entry else None for entry in entries] == list(range(N))
    assert (await adapter.get_stats()).total_entries == N


async def test_after_concurrent_sets_a_tag_deletion_removes_every_tagged_key(adapter: CacheAdapter) -> None:
    await asyncio.gather(*(adapter.set(CacheKey(key=f"k{i}", tags=["t"]), i) for i in range(N)))

    assert await adapter.delete_by_tags(["t"]) == N
    assert [await adapter.exists(CacheKey(key=f"k{i}")) for i in range(N)] == [False] * N
    assert (await adapter.get_stats()).total_entries == 0


async def test_concurrent_set_get_and_delete_by_tags_leave_a_consistent_picture(
    adapter: CacheAdapter,
) -> None:
    async def writer(i: int) -> None:
        await adapter.set(CacheKey(key=f"k{i}", tags=[parity(i), "all"]), i)

    async def reader(i: int) -> tuple[int, Any]:
        entry = await adapter.get(CacheKey(key=f"k{i}"))
        return i, None if entry is None else entry.value

    async def invalidator() -> int:
        return await adapter.delete_by_tags(["even"])

    calls: list[Any] = [writer(i) for i in range(N)]
    calls += [reader(i) for i in range(0, N, 3)]
    calls += [invalidator() for _ in range(10)]
    random.Random(1234).shuffle(calls)

    results = await asyncio.gather(*calls)

    # A reader sees the entry whole or not at all: never another key's value.
    for result in results:
        if isinstance(result, tuple):
            i, value = result
            assert value in (None, i)
    removed_concurrently = sum(result for result in results if isinstance(result, int))
    removed_after = await adapter.delete_by_tags(["even"])
    assert removed_concurrently + removed_after == N // 2
    assert [i for i in range(N) if await adapter.exists(CacheKey(key=f"k{i}"))] == list(range(1, N, 2))
    assert (await adapter.get_stats()).total_entries == N // 2
    assert await adapter.delete_by_tags(["all"]) == N // 2


async def test_concurrent_gets_count_every_hit(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="hot"), "v")

    await asyncio.gather(*(adapter.get(CacheKey(key="hot")) for _ in range(N)))

    assert (await adapter.get_stats()).total_hits == N


async def test_concurrent_gets_each_see_their_own_hit_count(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="hot"), "v")

    entries = await asyncio.gather(*(adapter.get(CacheKey(key="hot")) for _ in range(N)))

    assert sorted(entry.hit_count for entry in entries if entry is not None) == list(range(1, N + 1))


async def test_concurrent_overwrites_of_one_key_leave_one_whole_entry(adapter: CacheAdapter) -> None:
    await asyncio.gather(*(adapter.set(CacheKey(key="k", tags=[f"t{i}"]), i) for i in range(N)))

    entry = await adapter.get(CacheKey(key="k"))
    assert entry is not None
    winner = entry.value
    # The entry's tag is the one written with its value, and no other write left a membership behind.
    assert entry.key.tags == [f"t{winner}"]
    assert await adapter.delete_by_tags([f"t{i}" for i in range(N) if i != winner]) == 0
    assert await adapter.delete_by_tags([f"t{winner}"]) == 1
    assert (await adapter.get_stats()).total_entries == 0


async def test_concurrent_deletes_of_one_key_report_one_removal(adapter: CacheAdapter) -> None:
    await adapter.set(CacheKey(key="k"), "v")

    results = await asyncio.gather(*(adapter.delete(CacheKey(key="k")) for _ in range(N)))

    assert results.count(True) == 1
    assert results.count(False) == N - 1


async def test_concurrent_tag_deletions_count_each_entry_once(adapter: CacheAdapter) -> None:
    await adapter.set_many((CacheKey(key=f"k{i}", tags=["t"]), i) for i in range(N))

    results = await asyncio.gather(*(adapter.delete_by_tags(["t"]) for _ in range(20)))

    assert sum(results) == N
    assert (await adapter.get_stats()).total_entries == 0
