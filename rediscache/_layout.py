"""Where a cache's data lives in Redis: key names, shards and the layout version.

Every key starts with the prefix itself (so an ACL pattern ``~<prefix>*`` covers them all) and
carries the hash tag ``{<prefix>:<shard>}``: an entry and the indexes of its shard share one slot,
so one script changes them together, on a single server or on a cluster. The layout version is
part of every name, so a later release that changes the layout reads old data as absent, never as
garbage. ``lua/_lib.lua`` documents what each key holds.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

__all__ = ["LAYOUT_VERSION", "Layout", "Shard"]

LAYOUT_VERSION = "1"


def member_prefix(name: str) -> bytes:
    """The index member prefix of a tag or namespace: ``<byte length>:<name>`` (see ``_lib.lua``)."""
    raw = name.encode()
    return b"%d:%s" % (len(raw), raw)


@dataclass(frozen=True)
class Shard:
    number: int
    hash_tag: bytes
    entry_prefix: bytes
    ledger: bytes
    keys: bytes
    expiry: bytes
    created: bytes
    tags: bytes
    namespaces: bytes
    stats: bytes
    # The seven index keys in the order every index-maintaining script expects them.
    index_keys: tuple[bytes, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "index_keys",
            (self.ledger, self.keys, self.expiry, self.created, self.tags, self.namespaces, self.stats),
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
        if not isinstance(shards, int) or isinstance(shards, bool) or not 1 <= shards <= 16384:
            raise ValueError("shards must be an int from 1 to 16384")
        self.prefix = prefix
        self.shard_count = shards
        self.shards = tuple(self._shard(n) for n in range(shards))
        # Pub/sub channel on which the scripts announce changed keys (for L1 copies in processes).
        self.channel = b"%s:%s:inv" % (prefix.encode(), LAYOUT_VERSION.encode())

    def _shard(self, number: int) -> Shard:
        p = self.prefix.encode()
        tag = b"{%s:%d}" % (p, number)
        base = b"%s:%s:%s:" % (p, tag, LAYOUT_VERSION.encode())
        return Shard(
            number=number,
            hash_tag=tag,
            entry_prefix=base + b"e:",
            ledger=base + b"m",
            keys=base + b"k",
            expiry=base + b"x",
            created=base + b"c",
            tags=base + b"t",
            namespaces=base + b"n",
            stats=base + b"s",
        )

    def shard_of(self, full_key: bytes) -> Shard:
        # crc32 is stable across processes and releases (unlike hash()), and fast.
        if self.shard_count == 1:
            return self.shards[0]
        return self.shards[zlib.crc32(full_key) % self.shard_count]
