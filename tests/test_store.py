"""``EntryStore``: the in-process store the memory adapter and the hybrid's L1 share."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from rediscache._models import CacheKey
from rediscache._store import EntryStore

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def key(name: str, namespace: str | None = None, tags: list[str] | None = None) -> CacheKey:
    return CacheKey(key=name, namespace=namespace, tags=tags or [])


def names(store: EntryStore[str]) -> list[str]:
    return [slot.full_key for slot in store.slots()]


def test_put_replaces_the_entry_and_its_index_memberships() -> None:
    store: EntryStore[str] = EntryStore()
    store.put(key("a", tags=["t"]), "old", 3, None, NOW)
    store.put(key("a", tags=["u"]), "new", 5, None, NOW)

    assert [s.full_key for s in store.remove_tags(["t"])] == []
    assert store.memory_bytes == 5
    store.check_invariants()
    assert [s.value for s in store.remove_tags(["u"])] == ["new"]
    assert len(store) == 0


def test_remove_namespace_takes_exactly_that_namespace() -> None:
    store: EntryStore[int] = EntryStore()
    store.put(key("a", "ns"), 1, 1, None, NOW)
    store.put(key("b", "ns:sub"), 2, 1, None, NOW)
    store.put(key("ns:c"), 3, 1, None, NOW)

    assert [s.full_key for s in store.remove_namespace("ns")] == ["ns:a"]
    assert sorted(names(store)) == ["ns:c", "ns:sub:b"]


def test_remove_tags_counts_an_entry_with_two_matching_tags_once() -> None:
    store: EntryStore[int] = EntryStore()
    store.put(key("a", tags=["x", "y"]), 1, 1, None, NOW)
    store.put(key("b", tags=["y"]), 2, 1, None, NOW)
    store.put(key("c", tags=["z"]), 3, 1, None, NOW)

    removed = store.remove_tags(["x", "y"])

    assert sorted(s.full_key for s in removed) == ["a", "b"]
    assert [s.full_key for s in store.slots()] == ["c"]
    store.check_invariants()


def test_remove_matching_matches_the_utf8_bytes_of_the_full_key() -> None:
    store: EntryStore[int] = EntryStore()
    store.put(key("ü1"), 1, 1, None, NOW)
    store.put(key("u1"), 2, 1, None, NOW)

    assert [s.full_key for s in store.remove_matching("?1")] == ["u1"]
    assert [s.full_key for s in store.remove_matching("??1")] == ["ü1"]


def test_lru_evicts_the_least_recently_used_entry() -> None:
    store: EntryStore[int] = EntryStore(max_size=2)
    store.put(key("a"), 1, 1, None, NOW)
    store.put(key("b"), 2, 1, None, NOW)
    slot_a = store.slot("a")
    assert slot_a is not None
    store.use(slot_a)

    store.put(key("c"), 3, 1, None, NOW)

    assert sorted(names(store)) == ["a", "c"] and store.evictions == 1
    store.check_invariants()


def test_lfu_evicts_the_least_often_used_entry() -> None:
    store: EntryStore[int] = EntryStore(max_size=2, policy="lfu")
    store.put(key("a"), 1, 1, None, NOW)
    store.put(key("b"), 2, 1, None, NOW)
    for name in ("a", "a", "b"):
        slot = store.slot(name)
        assert slot is not None
        store.use(slot)

    store.put(key("c"), 3, 1, None, NOW)

    assert sorted(names(store)) == ["a", "c"]
    store.check_invariants()


def test_memory_limit_evicts_until_the_new_entry_fits() -> None:
    store: EntryStore[int] = EntryStore(max_memory_bytes=10)
    for i in range(5):
        store.put(key(f"k{i}"), i, 3, None, NOW)

    assert store.memory_bytes <= 10 and names(store) == ["k2", "k3", "k4"]
    assert not store.fits(11) and store.fits(10)


def test_expired_entries_go_before_live_ones_are_evicted() -> None:
    store: EntryStore[int] = EntryStore(max_size=2)
    store.put(key("live"), 1, 1, None, NOW)
    store.put(key("short"), 2, 1, NOW + timedelta(seconds=1), NOW)

    store.put(key("new"), 3, 1, None, NOW + timedelta(seconds=2))

    assert sorted(names(store)) == ["live", "new"]
    assert (store.evictions, store.expired_dropped) == (0, 1)


def test_purge_expired_drops_only_what_expired_and_counts_it() -> None:
    store: EntryStore[int] = EntryStore()
    for i in range(10):
        store.put(key(f"k{i}"), i, 1, NOW + timedelta(seconds=i), NOW)
    later = NOW + timedelta(seconds=4.5)

    assert store.count_expired(later) == 5
    assert store.purge_expired(later, limit=2) == 2
    assert store.purge_expired(later) == 3
    assert store.count_expired(later) == 0 and len(store) == 5 and store.expired_dropped == 5
    store.check_invariants()


def test_stale_expiry_items_are_compacted_away() -> None:
    store: EntryStore[int] = EntryStore()
    for i in range(3000):
        store.put(key(f"k{i}"), i, 1, NOW + timedelta(hours=1), NOW)
    store.remove_all([f"k{i}" for i in range(3000)])

    assert store.expiry_items < 3000
    store.check_invariants()


def test_oldest_and_newest_live_skip_expired_entries() -> None:
    store: EntryStore[int] = EntryStore()
    store.put(key("expired-first"), 0, 1, NOW + timedelta(seconds=1), NOW)
    store.put(key("a"), 1, 1, None, NOW)
    store.put(key("b"), 2, 1, None, NOW)
    store.put(key("expired-last"), 3, 1, NOW + timedelta(seconds=1), NOW)
    later = NOW + timedelta(seconds=2)

    oldest, newest = store.oldest_live(later), store.newest_live(later)

    assert oldest is not None and oldest.full_key == "a"
    assert newest is not None and newest.full_key == "b"


@pytest.mark.parametrize(("first", "second"), [("lru", "lfu"), ("lfu", "lru")])
def test_switching_policy_keeps_every_entry_in_step(first: str, second: str) -> None:
    store: EntryStore[int] = EntryStore(max_size=3, policy="lru" if first == "lru" else "lfu")
    for name in "abc":
        store.put(key(name), 0, 1, None, NOW)
    slot_b = store.slot("b")
    assert slot_b is not None
    store.use(slot_b)

    store.set_policy("lfu" if second == "lfu" else "lru")
    store.check_invariants()
    store.put(key("d"), 0, 1, None, NOW)

    assert "b" in store and "d" in store and len(store) == 3


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="eviction_policy"):
        EntryStore(policy="fifo")  # type: ignore[arg-type]
