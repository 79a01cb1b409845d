"""Where a cache's data lives in Redis, and how what is stored there is encoded.

Key names: every key starts with the prefix itself (so an ACL pattern ``~<prefix>*`` covers them
all) and carries the hash tag of its shard, ``{<prefix>:<shard>:<suffix>}``: an entry and the
indexes of its shard share one slot, so one script changes them together, on a single server or
on a cluster. The suffix is found by a search (:func:`shard_tags`) that puts the shards' slots at
even intervals over the 16384 slots, so a cluster whose masters own equal slot ranges gets an even
share of every cache. The layout version is part of every name, so a release that changes the
layout reads old data as absent, never as garbage.

Stored formats, each encoded or decoded here only (``docs/redis-layout.md`` has the table that
the Lua scripts' headers point to):

- the entry string: a 38-byte header (created us, expiry us or 0, generation: signed 8 bytes; hit
  count: unsigned 4; last access ms: signed 8; meta length: unsigned 2; all big-endian), the meta
  (msgpack ``[namespace or false, [tags]]``, absent for an entry with neither), then the codec's
  payload. A read is one ``MGET`` of the entry and the shard's generation: it carries everything a
  read returns;
- the ledger row: msgpack ``[payload size, namespace or false, [tags]]``;
- the invalidation message: msgpack ``[origin, [full_key, ...]]``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

import msgpack  # type: ignore[import-untyped]  # msgpack ships no type information
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

__all__ = [
    "ENTRY_HEADER_SIZE",
    "SENTINEL",
    "StoredEntry",
    "decode_entry",
    "LAYOUT_VERSION",
    "MAX_SHARDS",
    "EntryHeader",
    "Layout",
    "Shard",
    "decode_entry_header",
    "decode_invalidation",
    "decode_meta",
    "decode_ledger_row",
    "encode_invalidation",
    "member_prefix",
    "shard_tags",
    "unpack_header",
]

# 2: shard hash tags carry a suffix that spaces their slots evenly.
# 3: entries carry their generation, namespace and tags; reads are plain MGETs.
# 4: one zset (full_key -> expiry) lists the entries and their expiry; no created-time index.
LAYOUT_VERSION = "4"
#: More shards than this gain nothing (a cluster has at most a few hundred masters) and make the
#: hash-tag search slow.
MAX_SHARDS = 1024

#: The member (field) every bookkeeping key holds, so that it exists until Redis evicts it; no
#: full_key, tag or namespace member is ever this (UTF-8 never holds the byte 0xff).
SENTINEL = b"\xff\xff"

_HEADER = struct.Struct(">qqqIqH")
ENTRY_HEADER_SIZE = _HEADER.size


class EntryHeader(NamedTuple):
    created_us: int  # also names this version of the entry (access accounting applies to it only)
    expiry_us: int  # 0: no expiry
    generation: int
    hits: int  # flushed by the processes that read it
    last_access_ms: int
    meta_size: int


class StoredEntry(NamedTuple):
    header: EntryHeader
    namespace: str | None
    tags: list[str]
    payload: bytes


def decode_entry_header(entry: bytes) -> EntryHeader:
    """The header of an entry string."""
    return EntryHeader._make(_HEADER.unpack_from(entry))


#: ``unpack_header(entry)``: the header's fields as a plain tuple (the read path's fast form of
#: :func:`decode_entry_header`); raises ``struct.error`` for a string shorter than the header.
unpack_header = _HEADER.unpack_from


def decode_meta(entry: bytes, size: int) -> tuple[str | None, list[str]]:
    """The namespace and tags in an entry's meta of ``size`` bytes; ``ValueError`` if unreadable."""
    try:
        namespace, tags = msgpack.unpackb(entry[ENTRY_HEADER_SIZE : ENTRY_HEADER_SIZE + size])
    except Exception as exc:
        raise ValueError(f"unreadable entry meta: {exc}") from None
    return namespace or None, tags


def decode_entry(entry: bytes) -> StoredEntry:
    """An entry string whole: header, namespace, tags and payload. Raises ``ValueError`` for bytes
    that are not an entry of this layout."""
    if len(entry) < ENTRY_HEADER_SIZE:
        raise ValueError(f"an entry string of {len(entry)} bytes is shorter than its header")
    header = EntryHeader._make(_HEADER.unpack_from(entry))
    if not header.meta_size:
        return StoredEntry(header, None, [], entry[ENTRY_HEADER_SIZE:])
    namespace, tags = decode_meta(entry, header.meta_size)
    return StoredEntry(header, namespace, tags, entry[ENTRY_HEADER_SIZE + header.meta_size :])


def decode_ledger_row(row: bytes) -> tuple[int, str | None, list[str]]:
    """``(payload size, namespace or None, tags)`` of a ledger row."""
    size, namespace, tags = msgpack.unpackb(row)
    return size, namespace or None, tags


def encode_invalidation(origin: bytes, full_keys: list[bytes]) -> bytes:
    """The message the scripts publish (``announce`` in ``lua/_lib.lua``); for tests and tools."""
    return bytes(msgpack.packb([origin, full_keys], use_bin_type=True))


def decode_invalidation(message: bytes) -> tuple[bytes, list[bytes]]:
    """``(origin, full_keys)`` of an invalidation message; raises ``ValueError`` if it is not one."""
    try:
        origin, full_keys = msgpack.unpackb(message, raw=True)
    except Exception as exc:
        raise ValueError(f"not an invalidation message: {exc}") from None
    if not isinstance(origin, bytes) or not isinstance(full_keys, list):
        raise ValueError("not an invalidation message")
    return origin, full_keys


def member_prefix(name: str) -> bytes:
    """The index member prefix of a tag or namespace: ``<byte length>:<name>`` (see ``_lib.lua``)."""
    raw = name.encode()
    return b"%d:%s" % (len(raw), raw)


@lru_cache(maxsize=256)
def shard_tags(prefix: bytes, shards: int) -> tuple[tuple[bytes, int], ...]:
    """The hash tag and slot of each shard: ``{<prefix>:<n>:<suffix>}``, with the first suffix
    (0, 1, 2, ...) that puts shard ``n`` within a narrow window around slot ``(n + 1/2) * 16384 /
    shards``. Deterministic, so every process and release (of this layout version) finds the same
    tags; cached, since a search costs about 16 * shards CRC16s per shard."""
    width = max(1, REDIS_CLUSTER_HASH_SLOTS // (16 * shards))
    found = []
    for number in range(shards):
        center = (2 * number + 1) * REDIS_CLUSTER_HASH_SLOTS // (2 * shards)
        low = max(0, center - width // 2)
        high = min(REDIS_CLUSTER_HASH_SLOTS - 1, low + width - 1)
        suffix = 0
        while True:
            tag = b"{%s:%d:%d}" % (prefix, number, suffix)
            slot = key_slot(tag)
            if low <= slot <= high:
                found.append((tag, slot))
                break
            suffix += 1
    return tuple(found)


@dataclass(frozen=True)
class Shard:
    number: int
    hash_tag: bytes
    slot: int  # the hash slot of every key of the shard: what routes its calls on a cluster
    entry_prefix: bytes
    ledger: bytes
    keys: bytes  # zset: full_key -> expiry ms (+inf: none)
    tags: bytes
    namespaces: bytes
    stats: bytes
    generation: bytes
    channel: bytes  # its sharded pub/sub channel (in its slot), for the invalidation messages
    # The six bookkeeping keys in the order every index-maintaining script expects them.
    index_keys: tuple[bytes, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "index_keys",
            (self.ledger, self.keys, self.tags, self.namespaces, self.stats, self.generation),
        )

    def entry_key(self, full_key: bytes) -> bytes:
        return self.entry_prefix + full_key

    def lock_key(self, name: bytes) -> bytes:
        # Beside the entries of the shard, under the same prefix (and so the same ACL pattern).
        return self.entry_prefix[:-2] + b"l:" + name


class Layout:
    """Names the keys of one cache (one prefix) split over ``shards`` hash slots."""

    def __init__(self, prefix: str, shards: int) -> None:
        if not isinstance(prefix, str) or not prefix:
            raise ValueError("key_prefix must be a non-empty str")
        if "{" in prefix or "}" in prefix:
            raise ValueError("key_prefix must not contain '{' or '}': they would change the hash slot")
        if not isinstance(shards, int) or isinstance(shards, bool) or not 1 <= shards <= MAX_SHARDS:
            raise ValueError(f"shards must be an int from 1 to {MAX_SHARDS}")
        self.prefix = prefix
        self.shard_count = shards
        raw = prefix.encode()
        self.shards = tuple(self._shard(raw, n, tag, slot) for n, (tag, slot) in enumerate(shard_tags(raw, shards)))
        # The classic pub/sub channel on which the scripts announce changed keys on servers without
        # sharded pub/sub (each shard's own channel otherwise).
        self.channel = b"%s:%s:inv" % (raw, LAYOUT_VERSION.encode())

    @staticmethod
    def _shard(prefix: bytes, number: int, tag: bytes, slot: int) -> Shard:
        base = b"%s:%s:%s:" % (prefix, tag, LAYOUT_VERSION.encode())
        return Shard(
            number=number,
            hash_tag=tag,
            slot=slot,
            entry_prefix=base + b"e:",
            ledger=base + b"m",
            keys=base + b"k",
            tags=base + b"t",
            namespaces=base + b"n",
            stats=base + b"s",
            generation=base + b"g",
            channel=base + b"i",
        )

    def shard_of(self, full_key: bytes) -> Shard:
        # crc32 is stable across processes and releases (unlike hash()), and fast.
        if self.shard_count == 1:
            return self.shards[0]
        return self.shards[zlib.crc32(full_key) % self.shard_count]
