"""The layout: shard hash tags spaced evenly over the slots, every key of a shard in its slot, and the
stored formats decoded by the one module that knows them."""

from __future__ import annotations

import struct

import pytest
from redis.crc import key_slot

from rediscache.redis.layout import (
    ENTRY_HEADER_SIZE,
    LAYOUT_VERSION,
    MAX_SHARDS,
    Layout,
    decode_entry,
    decode_entry_header,
    decode_invalidation,
    decode_ledger_row,
    encode_invalidation,
    shard_tags,
)

# What `redis-cli --cluster create` gives 3 masters: equal slot ranges.
THREE_MASTERS = ((0, 5460), (5461, 10922), (10923, 16383))


def _per_master(slots: list[int], ranges: tuple[tuple[int, int], ...]) -> list[int]:
    return [sum(low <= slot <= high for slot in slots) for low, high in ranges]


@pytest.mark.parametrize("prefix", ["inv", "app", "rediscache", *(f"p{n}" for n in range(300))])
def test_16_shards_spread_over_3_equal_masters_within_6_to_5(prefix: str) -> None:
    counts = _per_master([shard.slot for shard in Layout(prefix, 16).shards], THREE_MASTERS)

    assert max(counts) / min(counts) <= 6 / 5, counts


@pytest.mark.parametrize("shards", [1, 2, 3, 6, 16, 48, 256])
def test_shard_slots_are_distinct_and_in_order(shards: int) -> None:
    slots = [shard.slot for shard in Layout("app", shards).shards]

    assert slots == sorted(slots) and len(set(slots)) == shards


@pytest.mark.parametrize("shards", [1, 16, 100])
def test_every_key_of_a_shard_hashes_to_the_shard_slot(shards: int) -> None:
    for shard in Layout("app", shards).shards:
        keys = (*shard.index_keys, shard.entry_key(b"any:key{with}braces"), shard.lock_key(b"lock"))
        assert {key_slot(key) for key in keys} == {shard.slot}


def test_every_key_starts_with_the_prefix_and_carries_it_in_the_hash_tag() -> None:
    for shard in Layout("app", 16).shards:
        assert shard.hash_tag.startswith(b"{app:") and shard.hash_tag.endswith(b"}")
        assert all(key.startswith(b"app:" + shard.hash_tag) for key in shard.index_keys)


def test_the_tags_of_this_layout_version_never_change() -> None:
    # Another process (or release) on the same layout version must find the same keys: a change
    # here without a LAYOUT_VERSION bump would make every cache read as empty after an upgrade.
    assert LAYOUT_VERSION == "4"
    assert shard_tags(b"app", 16)[:3] == ((b"{app:0:252}", 509), (b"{app:1:51}", 1533), (b"{app:2:166}", 2553))


def test_the_number_of_shards_is_bounded() -> None:
    with pytest.raises(ValueError, match="shards"):
        Layout("app", MAX_SHARDS + 1)
    with pytest.raises(ValueError, match="shards"):
        Layout("app", 0)


def test_an_entry_decodes_to_its_header_namespace_tags_and_payload() -> None:
    import msgpack  # type: ignore[import-untyped]

    meta = msgpack.packb(["ns", ["a", "b"]])
    header = struct.pack(">qqqIqH", 1_700_000_000_123_456, 1_700_000_060_000, 42, 7, 1_700_000_001_000, len(meta))

    stored = decode_entry(header + meta + b"payload")

    assert stored.header == (1_700_000_000_123_456, 1_700_000_060_000, 42, 7, 1_700_000_001_000, len(meta))
    assert (stored.namespace, stored.tags, stored.payload) == ("ns", ["a", "b"], b"payload")
    assert decode_entry_header(header) == stored.header
    assert len(header) == ENTRY_HEADER_SIZE


def test_an_entry_without_namespace_or_tags_has_no_meta() -> None:
    stored = decode_entry(struct.pack(">qqqIqH", 1, 0, 1, 0, 1, 0) + b"\x01payload")

    assert (stored.namespace, stored.tags, stored.payload) == (None, [], b"\x01payload")


def test_bytes_that_are_no_entry_are_refused() -> None:
    with pytest.raises(ValueError):
        decode_entry(b"short")
    with pytest.raises(ValueError):
        decode_entry(struct.pack(">qqqIqH", 1, 0, 1, 0, 1, 3) + b"\xc1\xc1\xc1payload")


def test_a_ledger_row_decodes_its_namespace_as_none_when_absent() -> None:
    import msgpack  # type: ignore[import-untyped]

    assert decode_ledger_row(msgpack.packb([10, False, ["a", "b"]])) == (10, None, ["a", "b"])
    assert decode_ledger_row(msgpack.packb([3, "ns", []])) == (3, "ns", [])


def test_an_invalidation_message_round_trips_and_garbage_is_refused() -> None:
    message = encode_invalidation(b"origin", [b"k1", b"ns:k2"])

    assert decode_invalidation(message) == (b"origin", [b"k1", b"ns:k2"])
    with pytest.raises(ValueError):
        decode_invalidation(b"\xc1 not msgpack")
    with pytest.raises(ValueError):
        decode_invalidation(b"\x01")  # valid msgpack, but not [origin, [keys]]
