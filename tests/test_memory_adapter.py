"""What is specific to ``MemoryCacheAdapter``: limits, eviction, compression, by-reference storage,
the background cleanup task, and index consistency under concurrency.

The general adapter contract is checked by the shared conformance suite (``tests/conformance``).
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio

from rediscache._models import CacheEntry, CacheKey
from rediscache.adapters.memory import MemoryCacheAdapter

SHORT_TTL = timedelta(milliseconds=20)
TICK = 0.05  # comfortably longer than SHORT_TTL

Factory = Callable[..., MemoryCacheAdapter]


@pytest_asyncio.fixture
async def make() -> AsyncIterator[Factory]:
    """Builds adapters and closes them all after the test (so no cleanup task outlives it)."""
    made: list[MemoryCacheAdapter] = []

    def factory(**options: Any) -> MemoryCacheAdapter:
        adapter = MemoryCacheAdapter(**options)
        made.append(adapter)
        return adapter

    yield factory
    for adapter in made:
        await adapter.close()
        adapter._check_invariants()


def stored_entry(cache: MemoryCacheAdapter, full_key: str) -> CacheEntry:
    """The entry as the adapter's store holds it (compressed values as their payload)."""
    slot = cache._store.slot(full_key)
    assert slot is not None, f"{full_key!r} is not stored"
    return slot.value.entry


def k(name: str, **kwargs: Any) -> CacheKey:
    return CacheKey(key=name, **kwargs)


async def present(cache: MemoryCacheAdapter, *names: str) -> list[str]:
    """Which of ``names`` are live (``exists`` neither counts nor changes the eviction order)."""
    return [name for name in names if await cache.exists(k(name))]


async def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


# ---------------------------------------------------------------- construction


@pytest.mark.parametrize(
    "options",
    [
        {"max_size": 0},
        {"max_size": -1},
        {"max_memory_bytes": 0},
        {"eviction_policy": "fifo"},
        {"compression_threshold": -1},
    ],
    ids=["max_size_0", "max_size_negative", "max_memory_0", "unknown_policy", "negative_threshold"],
)
def test_invalid_constructor_argument_raises_value_error(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        MemoryCacheAdapter(**options)


def test_non_integer_limit_raises_type_error() -> None:
    with pytest.raises(TypeError):
        MemoryCacheAdapter(max_size=1.5)  # type: ignore[arg-type]


async def test_set_eviction_policy_rejects_unknown_policy(make: Factory) -> None:
    cache = make()

    with pytest.raises(ValueError):
        cache.set_eviction_policy("random")  # type: ignore[arg-type]

    assert cache.get_eviction_policy() == "lru"


# -------------------------------------------------------------------- LRU / LFU


async def test_lru_evicts_the_least_recently_used_entry(make: Factory) -> None:
    cache = make(max_size=3)
    for name in "abc":
        await cache.set(k(name), name)
    await cache.get(k("a"))  # b is now the least recently used

    await cache.set(k("d"), "d")

    assert await present(cache, "a", "b", "c", "d") == ["a", "c", "d"]


async def test_lru_evicts_in_order_of_last_use(make: Factory) -> None:
    cache = make(max_size=3)
    for name in "abc":
        await cache.set(k(name), name)
    await cache.get(k("b"))
    await cache.get(k("a"))  # order of use now: c, b, a

    await cache.set(k("d"), "d")
    await cache.set(k("e"), "e")

    assert await present(cache, "a", "b", "c", "d", "e") == ["a", "d", "e"]


async def test_rewriting_an_entry_counts_as_use_for_lru(make: Factory) -> None:
    cache = make(max_size=2)
    await cache.set(k("a"), 1)
    await cache.set(k("b"), 2)
    await cache.set(k("a"), 3)

    await cache.set(k("c"), 4)

    assert await present(cache, "a", "b", "c") == ["a", "c"]


async def test_exists_does_not_refresh_lru_position(make: Factory) -> None:
    cache = make(max_size=2)
    await cache.set(k("a"), 1)
    await cache.set(k("b"), 2)
    assert await cache.exists(k("a"))

    await cache.set(k("c"), 3)

    assert await present(cache, "a", "b", "c") == ["b", "c"]


async def test_lfu_evicts_the_least_frequently_read_entry(make: Factory) -> None:
    cache = make(max_size=3, eviction_policy="lfu")
    for name in "abc":
        await cache.set(k(name), name)
    for name, reads in (("a", 3), ("b", 1), ("c", 2)):
        for _ in range(reads):
            await cache.get(k(name))

    await cache.set(k("d"), "d")

    assert await present(cache, "a", "b", "c", "d") == ["a", "c", "d"]


async def test_lfu_breaks_ties_by_least_recently_used(make: Factory) -> None:
    cache = make(max_size=3, eviction_policy="lfu")
    for name in "abc":
        await cache.set(k(name), name)
    # All read once; c was read first, so c is the least recently used of the three.
    for name in "cab":
        await cache.get(k(name))

    await cache.set(k("d"), "d")

    assert await present(cache, "a", "b", "c", "d") == ["a", "b", "d"]


async def test_lfu_evicts_a_never_read_entry_before_read_ones(make: Factory) -> None:
    cache = make(max_size=3, eviction_policy="lfu")
    await cache.set(k("a"), 1)
    await cache.get(k("a"))
    await cache.set(k("b"), 2)
    await cache.get(k("b"))
    await cache.set(k("c"), 3)  # newest, but never read

    await cache.set(k("d"), 4)

    assert await present(cache, "a", "b", "c", "d") == ["a", "b", "d"]


async def test_lfu_rewrite_resets_the_frequency(make: Factory) -> None:
    cache = make(max_size=2, eviction_policy="lfu")
    await cache.set(k("a"), 1)
    for _ in range(5):
        await cache.get(k("a"))
    await cache.set(k("b"), 2)
    await cache.get(k("b"))
    await cache.set(k("a"), "replaced")  # a whole new entry: hit_count 0

    await cache.set(k("c"), 3)

    assert await present(cache, "a", "b", "c") == ["b", "c"]


async def test_switching_from_lru_to_lfu_keeps_frequencies(make: Factory) -> None:
    cache = make(max_size=3)
    for name in "abc":
        await cache.set(k(name), name)
    for _ in range(3):
        await cache.get(k("a"))
    await cache.get(k("c"))
    await cache.get(k("b"))  # LRU victim would be a; LFU victim is b or c (one read each): c is older

    cache.set_eviction_policy("lfu")
    await cache.set(k("d"), "d")

    assert cache.get_eviction_policy() == "lfu"
    assert await present(cache, "a", "b", "c", "d") == ["a", "b", "d"]
    cache._check_invariants()


async def test_switching_from_lfu_to_lru_keeps_recency(make: Factory) -> None:
    cache = make(max_size=3, eviction_policy="lfu")
    for name in "abc":
        await cache.set(k(name), name)
    for _ in range(3):
        await cache.get(k("a"))  # most frequent but then the least recently used
    await cache.get(k("b"))
    await cache.get(k("c"))

    cache.set_eviction_policy("lru")
    await cache.set(k("d"), "d")

    assert cache.get_eviction_policy() == "lru"
    assert await present(cache, "a", "b", "c", "d") == ["b", "c", "d"]
    cache._check_invariants()


async def test_eviction_keeps_working_across_repeated_policy_switches(make: Factory) -> None:
    cache = make(max_size=10)
    rng = random.Random(7)
    for step in range(300):
        if step % 37 == 0:
            cache.set_eviction_policy("lfu" if cache.get_eviction_policy() == "lru" else "lru")
        name = f"k{rng.randrange(40)}"
        if rng.random() < 0.5:
            await cache.set(k(name, tags=[f"t{rng.randrange(3)}"]), step)
        else:
            await cache.get(k(name))
        cache._check_invariants()

    assert (await cache.get_stats()).total_entries == 10


# -------------------------------------------------------------------- limits


async def test_max_memory_bytes_evicts_until_the_new_value_fits(make: Factory) -> None:
    value_size = sys.getsizeof(b"x" * 1000)
    cache = make(max_memory_bytes=3 * value_size + 10)
    for name in "abc":
        await cache.set(k(name), name.encode() * 1000)

    await cache.set(k("d"), b"d" * 2000)  # needs the room of two values

    assert await present(cache, "a", "b", "c", "d") == ["c", "d"]
    stats = await cache.get_stats()
    assert stats.memory_usage_bytes is not None
    assert stats.memory_usage_bytes <= 3 * value_size + 10


async def test_value_larger_than_max_memory_bytes_is_refused_and_nothing_written(make: Factory) -> None:
    cache = make(max_memory_bytes=2000)
    await cache.set(k("a"), b"small")
    await cache.set(k("big"), b"old")

    with pytest.raises(ValueError, match="exceeds max_memory_bytes"):
        await cache.set(k("big"), b"x" * 5000)

    assert await present(cache, "a", "big") == ["a", "big"]
    entry = await cache.get(k("big"))
    assert entry is not None and entry.value == b"old"
    assert (await cache.get_stats()).model_extra == {"evictions": 0, "expired_removed": 0}


async def test_set_many_with_an_oversized_value_writes_nothing(make: Factory) -> None:
    cache = make(max_memory_bytes=2000)

    with pytest.raises(ValueError):
        await cache.set_many([(k("a"), b"ok"), (k("b"), b"x" * 5000)])

    assert await present(cache, "a", "b") == []


async def test_expired_entries_are_dropped_before_live_ones_are_evicted(make: Factory) -> None:
    cache = make(max_size=2)
    await cache.set(k("old_live"), 1)
    await cache.set(k("expiring"), 2, SHORT_TTL)
    await asyncio.sleep(TICK)

    await cache.set(k("new"), 3)

    assert await present(cache, "old_live", "new") == ["old_live", "new"]
    assert (await cache.get_stats()).model_extra == {"evictions": 0, "expired_removed": 1}


async def test_evictions_are_counted_in_stats(make: Factory) -> None:
    cache = make(max_size=2)
    for i in range(5):
        await cache.set(k(f"k{i}"), i)

    stats = await cache.get_stats()

    assert stats.total_entries == 2
    assert stats.model_extra is not None
    assert stats.model_extra["evictions"] == 3


async def test_memory_usage_follows_writes_and_deletes(make: Factory) -> None:
    cache = make()
    await cache.set(k("a"), b"x" * 1000)
    await cache.set(k("b"), b"y" * 500)
    await cache.delete(k("a"))

    stats = await cache.get_stats()

    assert stats.memory_usage_bytes == sys.getsizeof(b"y" * 500)


async def test_memory_estimate_follows_nested_values_and_survives_cycles(make: Factory) -> None:
    cache = make()
    inner = ["x" * 1000]
    cyclic: list[Any] = [inner]
    cyclic.append(cyclic)

    await cache.set(k("a"), cyclic)

    stats = await cache.get_stats()
    assert stats.memory_usage_bytes is not None
    assert stats.memory_usage_bytes >= sys.getsizeof("x" * 1000) + sys.getsizeof(inner)


# --------------------------------------------------------------- by reference


async def test_values_are_stored_by_reference_without_compression(make: Factory) -> None:
    cache = make()
    value = {"items": [1, 2, 3]}
    await cache.set(k("a"), value)

    entry = await cache.get(k("a"))

    assert entry is not None
    assert entry.value is value


async def test_mutating_a_returned_value_mutates_the_cached_one(make: Factory) -> None:
    cache = make()
    await cache.set(k("a"), [1])
    entry = await cache.get(k("a"))
    assert entry is not None

    entry.value.append(2)

    again = await cache.get(k("a"))
    assert again is not None and again.value == [1, 2]


async def test_values_no_codec_can_encode_are_cached(make: Factory) -> None:
    cache = make()
    value = object()
    await cache.set(k("a"), value)

    entry = await cache.get(k("a"))

    assert entry is not None and entry.value is value


# --------------------------------------------------------------- compression


async def test_compression_stores_large_value_as_compressed_bytes(make: Factory) -> None:
    cache = make(enable_compression=True, compression_threshold=100)

    await cache.set(k("a"), "abc" * 1000)

    stored = stored_entry(cache, "a").value
    assert isinstance(stored, bytes)
    assert len(stored) < 3000
    assert (await cache.get_stats()).memory_usage_bytes == len(stored)


async def test_compressed_value_round_trips(make: Factory) -> None:
    cache = make(enable_compression=True, compression_threshold=100)
    value = {"rows": [{"id": i, "name": f"row {i}"} for i in range(200)], "tags": {"a", "b"}}
    await cache.set(k("a"), value)

    entry = await cache.get(k("a"))

    assert entry is not None
    assert entry.value == value
    assert entry.hit_count == 1


async def test_value_under_threshold_is_stored_as_is_with_compression(make: Factory) -> None:
    cache = make(enable_compression=True, compression_threshold=100)
    value = ["small"]
    await cache.set(k("a"), value)

    entry = await cache.get(k("a"))

    assert entry is not None and entry.value is value
    assert cache.get_compression_stats()["compressions"] == 0


async def test_value_msgpack_cannot_encode_is_stored_as_is_with_compression(make: Factory) -> None:
    cache = make(enable_compression=True, compression_threshold=0)
    value = [object() for _ in range(100)]
    await cache.set(k("a"), value)

    entry = await cache.get(k("a"))

    assert entry is not None and entry.value is value


async def test_compression_stats_count_compressions_and_decompressions(make: Factory) -> None:
    cache = make(enable_compression=True, compression_threshold=100)
    await cache.set(k("a"), "a" * 1000)
    await cache.set(k("b"), "b" * 1000)
    await cache.set(k("small"), "s")
    for _ in range(3):
        await cache.get(k("a"))
    await cache.get(k("small"))

    stats = cache.get_compression_stats()

    assert stats["compressions"] == 2
    assert stats["decompressions"] == 3
    assert stats["bytes_before"] > stats["bytes_after"] > 0
    assert stats["ratio"] == stats["bytes_after"] / stats["bytes_before"]


async def test_compression_stats_are_zero_when_compression_is_off(make: Factory) -> None:
    cache = make()
    await cache.set(k("a"), "a" * 5000)
    await cache.get(k("a"))

    stats = cache.get_compression_stats()

    assert (stats["compressions"], stats["decompressions"], stats["enabled"]) == (0, 0, 0)


# ------------------------------------------------------------ cleanup task


async def test_cleanup_task_removes_expired_entries_without_a_manual_call(make: Factory) -> None:
    cache = make()
    await cache.set(k("a"), 1, SHORT_TTL)
    await cache.set(k("b"), 2, SHORT_TTL)
    await cache.set(k("keep"), 3)

    cache.start_cleanup_task(cleanup_interval_seconds=0.02)

    assert await wait_until(lambda: len(cache._store) == 1)
    assert [slot.full_key for slot in cache._store.slots()] == ["keep"]


async def test_stop_cleanup_task_cancels_it(make: Factory) -> None:
    cache = make()
    cache.start_cleanup_task(cleanup_interval_seconds=0.02)
    task = cache._cleanup_task
    assert task is not None

    cache.stop_cleanup_task()
    await cache.set(k("a"), 1, SHORT_TTL)
    await asyncio.sleep(5 * 0.02)

    assert task.cancelled()
    assert "a" in cache._store  # expired but nobody cleaned it up


async def test_start_cleanup_task_is_idempotent(make: Factory) -> None:
    cache = make()
    cache.start_cleanup_task(cleanup_interval_seconds=10)
    first = cache._cleanup_task

    cache.start_cleanup_task(cleanup_interval_seconds=10)

    assert cache._cleanup_task is first


async def test_close_stops_the_cleanup_task(make: Factory) -> None:
    cache = make()
    cache.start_cleanup_task(cleanup_interval_seconds=10)
    task = cache._cleanup_task
    assert task is not None

    await cache.close()

    assert task.done()
    assert cache._cleanup_task is None


def test_start_cleanup_task_without_a_running_loop_raises() -> None:
    cache = MemoryCacheAdapter()

    with pytest.raises(RuntimeError):
        cache.start_cleanup_task()


async def test_start_cleanup_task_rejects_a_non_positive_interval(make: Factory) -> None:
    cache = make()

    with pytest.raises(ValueError):
        cache.start_cleanup_task(cleanup_interval_seconds=0)


# -------------------------------------------------- expiry bookkeeping choices


async def test_cleanup_expired_reports_expired_entries_a_read_dropped(make: Factory) -> None:
    cache = make()
    await cache.set(k("a"), 1, SHORT_TTL)
    await asyncio.sleep(TICK)
    assert await cache.get(k("a")) is None

    assert await cache.cleanup_expired() == 1
    assert await cache.cleanup_expired() == 0


async def test_stats_count_expired_entries_not_yet_dropped_as_absent(make: Factory) -> None:
    cache = make()
    await cache.set(k("a"), 1)
    await cache.set(k("b"), 2)
    await cache.set(k("expiring"), 3, SHORT_TTL)
    await asyncio.sleep(TICK)

    stats = await cache.get_stats()

    assert "expiring" in cache._store  # not dropped yet: get_stats only reads
    assert stats.total_entries == 2
    entry_a = stored_entry(cache, "a")
    entry_b = stored_entry(cache, "b")
    assert (stats.oldest_entry, stats.newest_entry) == (entry_a.created_at, entry_b.created_at)


async def test_oldest_and_newest_follow_deletes_and_rewrites(make: Factory) -> None:
    cache = make()
    for name in "abc":
        await cache.set(k(name), name)
    await cache.delete(k("a"))
    await cache.set(k("b"), "rewritten")  # b is now the newest

    stats = await cache.get_stats()

    assert stats.oldest_entry == stored_entry(cache, "c").created_at
    assert stats.newest_entry == stored_entry(cache, "b").created_at


async def test_stale_expiry_items_are_compacted(make: Factory) -> None:
    cache = make()
    for i in range(3000):
        await cache.set(k(f"k{i}"), i, timedelta(hours=1))
    for i in range(3000):
        await cache.delete(k(f"k{i}"))

    assert cache._store.expiry_items < 3000
    cache._check_invariants()


# ------------------------------------------------------------- concurrency


@pytest.mark.parametrize("policy", ["lru", "lfu"])
async def test_many_concurrent_coroutines_leave_indexes_consistent(make: Factory, policy: str) -> None:
    cache = make(max_size=150, eviction_policy=policy)
    cache.start_cleanup_task(cleanup_interval_seconds=0.005)

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(20):
            name = f"k{rng.randrange(300)}"
            namespace = rng.choice([None, "ns1", "ns2"])
            tags = rng.sample(["t1", "t2", "t3", "t4"], rng.randrange(3))
            op = rng.random()
            if op < 0.5:
                ttl = rng.choice([None, timedelta(milliseconds=rng.randrange(1, 20))])
                await cache.set(CacheKey(key=name, namespace=namespace, tags=tags), seed, ttl)
            elif op < 0.85:
                await cache.get(CacheKey(key=name, namespace=namespace))
            elif op < 0.95:
                await cache.delete_by_tags(tags or ["t1"])
            else:
                await cache.delete_by_namespace(namespace or "ns1")
            await asyncio.sleep(rng.choice([0, 0, 0.001]))

    await asyncio.gather(*(worker(seed) for seed in range(1000)))

    cache._check_invariants()
    stats = await cache.get_stats()
    assert stats.total_entries <= 150
