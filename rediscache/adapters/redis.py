"""``RedisCacheAdapter``: the port implemented natively on Redis, one atomic Lua script per operation.

Data layout (details in ``lua/_lib.lua``): a cache is split into shards, each one hash slot named
``{<prefix>:<shard>}``. A shard holds its entries (one hash each, with Redis's own TTL), a ledger
of what each entry is indexed under, a key index, an expiry registry, a created-time index, the tag
and namespace indexes, and its stats. Because all of them share the slot, one script changes an
entry and every index together; because a cache has several shards on a cluster, its entries and
indexes spread over every master, and invalidations run one script per shard, all at once.

Round trips: ``get``, ``set``, ``delete`` are one; ``delete_by_tags``/``delete_by_namespace`` are
one per shard per batch (``batch_size`` entries); ``get_many``/``set_many``/``delete_many`` are one
per node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, TypeVar

from redis.asyncio import Redis, RedisCluster

from rediscache import metrics
from rediscache._exceptions import CacheConnectionError, CacheError, CacheReplicationError, UndecodablePayload
from rediscache._models import CacheEntry, CacheKey, CacheStats, make_entry, validate_ttl
from rediscache._port import CacheAdapter
from rediscache.redis.accounting import Accounting
from rediscache.redis.cluster import ClusterTransport
from rediscache.redis.feed import InvalidationFeed
from rediscache.redis.layout import (
    ENTRY_HEADER_SIZE,
    SENTINEL,
    Layout,
    Shard,
    decode_entry,
    decode_meta,
    member_prefix,
    unpack_header,
)
from rediscache.redis.options import ConnectionOptions
from rediscache.redis.scripts import script
from rediscache.redis.standalone import StandaloneTransport
from rediscache.redis.transport import ScriptCall, Transport, redact
from rediscache.serialization import Codec, make_codec

__all__ = ["ACL_COMMANDS", "STATS_SAMPLE", "RedisCacheAdapter"]

# The first call of an invalidation that holds at most one batch is bounded by that batch (500 take
# ~5 ms, within CONTRACT.md's "about 10 ms"), so it is one round trip; the time cap is there for a
# server the host slows down (a batch can then take far longer in wall time, and stopping early is
# kinder to the other clients than finishing it in one call). One that holds more is sliced from its
# first call on (the script counts the ranges first: see lua/invalidate.lua).
_FIRST_SLICE_US = 25_000
#: Entries per shard whose created time ``get_stats`` reads for ``oldest_entry``/``newest_entry``.
STATS_SAMPLE = 64

logger = logging.getLogger("rediscache")

_T = TypeVar("_T")
_SET = script("set")
_DELETE = script("delete")
_INVALIDATE = script("invalidate")
_CLEANUP = script("cleanup")
_STATS = script("stats")
_UNLOCK = script("unlock")
_SET_MANY = script("set_many")
_FLUSH = script("flush")
_ALL_SCRIPTS = (_SET, _SET_MANY, _DELETE, _INVALIDATE, _CLEANUP, _STATS, _FLUSH, _UNLOCK)

#: Every command the adapter sends or its scripts run: what a Redis ACL user needs, with the key
#: pattern ``~<prefix>*`` and the channel pattern ``&<prefix>*`` (``CONFIG GET`` and ``INFO`` are
#: optional: without them the eviction-policy check is skipped, ``wait_for_replicas="auto"`` sees no
#: replica on a single server, and classic pub/sub is used; ``CLUSTER SLOTS`` is needed on a cluster,
#: ``CLUSTER NODES`` is optional there: without it, replicas that have not reported an offset are not waited for).
ACL_COMMANDS = (
    "evalsha", "script|load", "mget", "zscan", "set", "subscribe", "ssubscribe", "ping", "wait",  # client
    "cluster|slots", "cluster|nodes", "info",
    "del", "exists", "get", "getrange", "hdel", "hget", "hincrby", "hmget", "hset", "setrange", "time",  # scripts
    "touch", "zadd", "zcard", "zcount", "zrandmember", "zrange", "zrangebylex", "zlexcount", "zrangebyscore", "zrem",
    "publish", "spublish",
)  # fmt: skip


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _us(value: int) -> datetime:
    # Exact (a float division would round some microseconds off), and 4x faster than
    # fromtimestamp() + replace().
    return _EPOCH + _MICROSECOND * value


# Timestamps of entries read lately, as datetimes: entries are read many times over, and building a
# datetime is a fifth of a small entry's read. Bounded: cleared when full.
_DATETIMES: dict[int, datetime] = {}
# One entry's row of a flush (lua/flush.lua): created us, hits, last access ms.
_FLUSH_ROW = struct.Struct(">qIq")
_MAX_U32 = 0xFFFFFFFF
_ENTRY_FIELDS = frozenset(CacheEntry.model_fields)
_DATETIMES_MAX = 8192


def _cached_us(value: int) -> datetime:
    if len(_DATETIMES) >= _DATETIMES_MAX:
        _DATETIMES.clear()
    at = _DATETIMES[value] = _EPOCH + _MICROSECOND * value
    return at


def _now() -> tuple[int, datetime]:
    """This process's clock, in ms and as the ``last_accessed`` of what a read returns."""
    now_us = time.time_ns() // 1000
    return now_us // 1000, _EPOCH + _MICROSECOND * now_us


def _ttl_ms(ttl: timedelta | None) -> int:
    if ttl is None:
        return 0
    micros = (ttl.days * 86_400 + ttl.seconds) * 1_000_000 + ttl.microseconds
    return -(-micros // 1000)  # round up: a TTL never ends early


def _keep_ms(ttl: timedelta | None, stale_ttl: timedelta | None) -> int:
    """How long past its TTL an entry stays stored for fail-safe reads (checked like a TTL)."""
    if stale_ttl is None or ttl is None:  # an entry that never expires needs no stale window
        return 0
    keep = _ttl_ms(validate_ttl(stale_ttl))
    validate_ttl(ttl + timedelta(milliseconds=keep))  # the physical expiry must be representable too
    return keep


def _require_key(key: object) -> CacheKey:
    if not isinstance(key, CacheKey):
        raise TypeError(f"expected a CacheKey, got {type(key).__name__}")
    return key


def _require_name(what: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty str")
    return value


def _require_tags(tags: object) -> list[str]:
    if isinstance(tags, (str, bytes)) or not isinstance(tags, (list, tuple, set, frozenset)):
        raise ValueError("tags must be a list of non-empty str")
    return [_require_name("tag", tag) for tag in tags]


def _describe(client: Redis | RedisCluster) -> str:
    if isinstance(client, RedisCluster):
        nodes = client.get_nodes() or client.startup_nodes
        return "redis cluster " + ",".join(node.name for node in nodes[:3])
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


class RedisCacheAdapter(CacheAdapter):
    """A cache on Redis or Redis Cluster that keeps entries, indexes and stats in step atomically.

    Args:
        redis_url: ``redis://``, ``rediss://`` or ``unix://`` URL, with password and db if needed.
        key_prefix: every key this cache writes starts with it; no ``{`` or ``}``.
        client: a ready ``redis.asyncio.Redis`` or ``RedisCluster`` (not decoding responses); the
            adapter never closes a client it was given. Of a ``RedisCluster`` only the startup
            nodes, connection settings and ``address_remap`` are used: the adapter speaks to the
            nodes over connections of its own.
        serializer: ``"msgpack"`` (default), ``"pickle"`` (needs ``secret``) or a ``Codec``.
        secret: signing secret(s) for pickle; the first signs, all verify.
        cluster: build a cluster client from ``redis_url``.
        shards: hash slots the cache is spread over (default 1 on one server, 16 on a cluster).
        batch_size: entries removed per script call by invalidations, at most.
        invalidation_slice: seconds of server time one invalidation call spends at most (checked
            every 64 entries), so that a long invalidation leaves room for other clients' commands
            between its calls.
        trim_per_write: expired entries unindexed by each ``set`` (keeps indexes from growing).
        compression_threshold: compress payloads larger than this many bytes (``None``: never).
        read_only_reads: never flush access accounting: hits, misses and hit counts of this
            instance's reads stay in the process and are not shared (reads write nothing anyway).
        flush_interval: seconds between flushes of this instance's access accounting (hits, misses,
            hit counts, last access) to Redis; other instances see them within this long.
        wait_for_replicas: after ``delete``, ``delete_many``, ``delete_by_*`` and ``clear``, wait
            (``WAIT``) until this many replicas of each node touched acknowledged the change.
            ``"auto"`` (default): 1 on nodes that have replicas, none elsewhere; ``0``: never.
        replica_timeout: seconds that ``WAIT`` waits at most.
        on_unreplicated: when fewer replicas acknowledged: ``"warn"`` (default) logs a WARNING and
            counts it in ``unreplicated_invalidations``; ``"raise"`` raises
            ``CacheReplicationError`` (after the change was made on the primary).
        options: a ``ConnectionOptions`` (timeouts, retries, pool size); the flat keywords below
            override its fields.
        socket_timeout: the ``ConnectionOptions`` field of that name.
        connect_timeout: the ``ConnectionOptions`` field of that name.
        operation_timeout: the ``ConnectionOptions`` field of that name.
        retries: the ``ConnectionOptions`` field of that name.
        max_connections: the ``ConnectionOptions`` field of that name.
        pool_timeout: the ``ConnectionOptions`` field of that name.
        health_check_interval: the ``ConnectionOptions`` field of that name.
    """

    def __init__(
        self,
        redis_url: str = "redis://localhost:6379/0",
        *,
        key_prefix: str = "rediscache",
        client: Redis | RedisCluster | None = None,
        serializer: Literal["msgpack", "pickle"] | Codec = "msgpack",
        secret: str | bytes | Sequence[str | bytes] | None = None,
        cluster: bool = False,
        shards: int | None = None,
        batch_size: int = 500,
        invalidation_slice: float = 0.0005,
        trim_per_write: int = 10,
        compression_threshold: int | None = None,
        read_only_reads: bool = False,
        publish_invalidations: bool = True,
        sharded_pubsub: bool | None = None,
        flush_interval: float = 1.0,
        wait_for_replicas: int | Literal["auto"] = "auto",
        replica_timeout: float = 0.1,
        on_unreplicated: Literal["warn", "raise"] = "warn",
        options: ConnectionOptions | None = None,
        socket_timeout: float | None = None,
        connect_timeout: float | None = None,
        operation_timeout: float | None = None,
        retries: int | None = None,
        max_connections: int | None = None,
        pool_timeout: float | None = None,
        health_check_interval: float | None = None,
    ) -> None:
        if batch_size < 1 or trim_per_write < 0:
            raise ValueError("batch_size must be >= 1 and trim_per_write >= 0")
        if not invalidation_slice > 0:
            raise ValueError("invalidation_slice must be positive")
        if wait_for_replicas != "auto" and (not isinstance(wait_for_replicas, int) or wait_for_replicas < 0):
            raise ValueError(f'wait_for_replicas must be "auto" or an int >= 0, got {wait_for_replicas!r}')
        if not flush_interval > 0:
            raise ValueError("flush_interval must be positive")
        if not replica_timeout > 0:
            raise ValueError("replica_timeout must be positive")
        if on_unreplicated not in ("warn", "raise"):
            raise ValueError(f'on_unreplicated must be "warn" or "raise", got {on_unreplicated!r}')
        self._codec = make_codec(serializer, secret=secret, compression_threshold=compression_threshold)
        overrides = {
            name: value
            for name, value in (
                ("socket_timeout", socket_timeout),
                ("connect_timeout", connect_timeout),
                ("operation_timeout", operation_timeout),
                ("retries", retries),
                ("max_connections", max_connections),
                ("pool_timeout", pool_timeout),
                ("health_check_interval", health_check_interval),
            )
            if value is not None
        }
        connection = replace(options or ConnectionOptions(), **overrides)  # type: ignore[arg-type]
        replication = {
            "wait_for_replicas": None if wait_for_replicas == "auto" else wait_for_replicas,
            "replica_timeout": replica_timeout,
        }
        is_cluster = isinstance(client, RedisCluster) or (client is None and cluster)
        self._transport: Transport
        if client is None:
            self._transport = (
                ClusterTransport.from_url(redis_url, connection, **replication)  # type: ignore[arg-type]
                if cluster
                else StandaloneTransport.from_url(redis_url, connection, **replication)  # type: ignore[arg-type]
            )
        elif isinstance(client, RedisCluster):
            self._transport = ClusterTransport.from_client(
                client,
                connection,
                server=_describe(client),
                **replication,  # type: ignore[arg-type]
            )
        elif isinstance(client, Redis):
            self._transport = StandaloneTransport(
                client,
                server=_describe(client),
                owns_client=False,
                options=connection,
                **replication,  # type: ignore[arg-type]
            )
        else:
            raise TypeError(f"client must be a redis.asyncio Redis or RedisCluster, not {type(client).__name__}")
        self._layout = Layout(key_prefix, shards if shards is not None else (16 if is_cluster else 1))
        self._batch = batch_size
        self._slice_us = max(1, round(invalidation_slice * 1_000_000))
        self._trim = str(trim_per_write).encode()
        self._read_only = read_only_reads
        self._accounting = Accounting()
        self._flush_interval = flush_interval
        self._flush_lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        #: Flushes of access accounting that failed and were dropped.
        self.flush_failures = 0
        #: Index members of vanished (evicted) entries that ``cleanup_expired`` unindexed.
        self.reconciled = 0
        self._publish = publish_invalidations
        # Sharded pub/sub (SPUBLISH, Redis 7+) or the classic kind: decided on first use, from the
        # server's version, unless forced.
        self._sharded = sharded_pubsub
        self._raise_unreplicated = on_unreplicated == "raise"
        #: Invalidations of this instance that fewer replicas acknowledged than asked (with "warn").
        self.unreplicated_invalidations = 0
        # Names this instance in its invalidation messages, so a listener can skip its own.
        self.origin = os.urandom(8).hex().encode()
        self._checked = False
        self._checking: asyncio.Future[None] | None = None
        self._closed = False
        # OpenTelemetry (rediscache/metrics.py): nothing at all when the API is absent.
        self._metrics_source = metrics.register_source(key_prefix, self._accounting.totals)
        metrics.instrument(self, key_prefix)

    @property
    def key_prefix(self) -> str:
        return self._layout.prefix

    @property
    def codec(self) -> Codec:
        """The codec in use; register pydantic models with ``adapter.codec.register_model(Model)``."""
        return self._codec

    @property
    def server(self) -> str:
        """The server or cluster this adapter talks to (password redacted)."""
        return redact(self._transport.server)

    # -- first use ---------------------------------------------------------------------------------

    async def _ready(self, op: str) -> None:
        """Checks made once, on first use (named after the operation that triggered them).

        The calls that arrive while they run all wait for the same run and go on together when it
        ends (so a first burst opens its connections at once), or all fail with it: a burst on a
        dead server fails at once, not one caller at a time. The next call after a failure tries
        again. A caller cancelled while waiting does not cancel the checks."""
        if self._checked:
            return
        self._start_flushing()
        checking = self._checking
        if checking is None or checking.done():
            checking = self._checking = asyncio.ensure_future(self._run_checks(op))
            # Seen even if every waiter was cancelled: no "exception was never retrieved".
            checking.add_done_callback(lambda done: done.cancelled() or done.exception())
        await asyncio.shield(checking)

    async def _run_checks(self, op: str) -> None:
        await self._check_eviction_policy(op)
        if self._sharded is None:
            self._sharded = await self._supports_sharded_pubsub(op)
        await self._transport.load_scripts(op, _ALL_SCRIPTS)
        if isinstance(self._transport, StandaloneTransport):
            await self._count_replicas()
        self._checked = True

    async def _supports_sharded_pubsub(self, op: str) -> bool:
        """Whether every primary runs Redis 7+ (or Valkey), which has sharded pub/sub. Every instance
        of a cache decides the same way, from the same servers, so publishers and listeners agree."""
        try:
            answers = await self._transport.primaries_command(op, "INFO", "server")
        except CacheConnectionError:
            raise
        except CacheError as exc:
            logger.info("rediscache: cannot read the version of %s (%s); classic pub/sub", self.server, exc)
            return False
        for answer in answers:
            text = answer.decode() if isinstance(answer, bytes) else str(answer)
            versions = [line.split(":", 1)[1] for line in text.splitlines() if line.startswith("redis_version:")]
            if not versions or int(versions[0].split(".")[0]) < 7:
                return False
        return True

    def _announce(self, shard: Shard) -> bytes:
        """The scripts' channel argument (``announce`` in ``lua/_lib.lua``)."""
        if not self._publish:
            return b""
        return b"S" + shard.channel if self._sharded else b"P" + self._layout.channel

    async def _count_replicas(self) -> None:
        assert isinstance(self._transport, StandaloneTransport)
        try:
            await self._transport.count_replicas()
        except CacheConnectionError:
            raise
        except CacheError as exc:  # INFO may be forbidden: "auto" then waits for no replica
            logger.info("rediscache: cannot read the replicas of %s (%s)", self.server, exc)

    async def _check_eviction_policy(self, op: str) -> None:
        """Say at INFO what the server's eviction policy means for this cache. Every policy is safe
        (``docs/redis-layout.md``, "Eviction"); they differ in what a full server costs."""
        try:
            answers = await self._transport.primaries_command(op, "CONFIG", "GET", "maxmemory-policy")
        except CacheConnectionError:
            raise
        except CacheError as exc:
            # Managed services often forbid CONFIG; the check is advice, not a precondition.
            logger.info("rediscache: cannot read maxmemory-policy on %s (%s)", self.server, exc)
            return
        for answer in answers:
            # A map under RESP3, a flat [name, value] pair under RESP2.
            policy = answer.get(b"maxmemory-policy") if isinstance(answer, dict) else None
            if policy is None and isinstance(answer, list) and len(answer) == 2:
                policy = answer[1]
            if isinstance(policy, bytes) and policy.startswith(b"allkeys-"):
                logger.info(
                    "rediscache: Redis at %s has maxmemory-policy %s: when it evicts part of a shard's "
                    "bookkeeping, that shard's entries read as misses from then on (never stale)",
                    self.server,
                    policy.decode(),
                )

    # -- reads -------------------------------------------------------------------------------------
    #
    # A read is one MGET of the entry string and the shard's generation: a plain read command, which
    # writes nothing and keeps working on a server at maxmemory under noeviction. An entry of
    # another generation than the shard's is one whose bookkeeping Redis evicted: it reads as a miss.

    async def get(self, key: CacheKey) -> CacheEntry | None:
        found = await self.get_with_payload(key)
        return None if found is None else found[0]

    async def get_with_payload(self, key: CacheKey) -> tuple[CacheEntry, bytes] | None:
        """``get``, also returning the stored payload (for an L1 that keeps the encoded form)."""
        fk = _require_key(key).full_key.encode()
        shard = self._layout.shard_of(fk)
        await self._ready("get")
        raw, generation = await self._transport.command(
            "get", shard.slot, b"MGET", shard.entry_key(fk), shard.generation
        )
        try:
            return self._read(key, fk, shard.number, raw, None if generation is None else int(generation), _now())
        except UndecodablePayload as exc:
            await self._discard(key, fk, exc)
            return None

    async def get_many_with_payloads(self, keys: Sequence[CacheKey]) -> list[tuple[CacheEntry, bytes] | None]:
        """``get_many``, also returning the stored payloads."""
        return await self._get_many(keys, with_payloads=True)

    async def get_many(self, keys: Sequence[CacheKey]) -> list[CacheEntry | None]:
        return await self._get_many(keys, with_payloads=False)

    async def _get_many(self, keys: Sequence[CacheKey], *, with_payloads: bool) -> list[Any]:
        for key in keys:
            if type(key) is not CacheKey:
                _require_key(key)
        names = [key.full_key for key in keys]
        full_keys = [name.encode() for name in names]
        if not full_keys:
            return []
        await self._ready("get_many")
        commands: list[tuple[int, tuple[Any, ...]]] = []
        positions: list[tuple[Shard, Sequence[int]]] = []
        chunk: Sequence[int]
        layout = self._layout
        if len(layout.shards) == 1 and len(full_keys) <= self._batch:
            shard = layout.shards[0]  # the common case on a single server: no grouping to do
            prefix = shard.entry_prefix
            commands.append((shard.slot, (b"MGET", *[prefix + fk for fk in full_keys], shard.generation)))
            positions.append((shard, range(len(full_keys))))
        else:
            for shard, chunk in self._by_shard(range(len(full_keys)), lambda i: full_keys[i]):
                entry_key = shard.entry_key
                commands.append((shard.slot, (b"MGET", *[entry_key(full_keys[i]) for i in chunk], shard.generation)))
                positions.append((shard, chunk))
        replies = await self._transport.command_many("get_many", commands)
        found: list[Any] = [None] * len(full_keys)
        unreadable: list[tuple[int, UndecodablePayload]] = []
        now = _now()
        for (shard, chunk), answers in zip(positions, replies, strict=True):
            self._read_batch(
                keys, names, full_keys, shard.number, chunk, answers, now, found, unreadable, with_payloads
            )
        for i, reason in unreadable:
            await self._discard(keys[i], full_keys[i], reason)
        return found

    def _read_batch(
        self,
        keys: Sequence[CacheKey],
        names: list[str],
        full_keys: list[bytes],
        shard: int,
        chunk: Sequence[int],
        answers: list[bytes | None],
        now: tuple[int, datetime],
        found: list[Any],
        unreadable: list[tuple[int, UndecodablePayload]],
        with_payloads: bool,
    ) -> None:
        """What ``_read`` does, for one shard's ``MGET`` reply: the same checks and counts, inlined,
        with one accounting lookup per batch (a ``get_many`` of 100 spends most of its time here)."""
        generation = None if answers[-1] is None else int(answers[-1])
        pending, flushing = self._accounting.shard(shard)
        counts = pending.entries
        in_flight = None if flushing is None else flushing.entries
        decode = self._codec.decode
        now_ms, accessed = now
        now_us = now_ms * 1000
        datetimes = _DATETIMES
        new_object, set_attribute, fields = object.__new__, object.__setattr__, _ENTRY_FIELDS
        hits = misses = 0
        for i, raw in zip(chunk, answers, strict=False):
            if raw is None or generation is None:
                misses += 1
                continue
            if len(raw) < ENTRY_HEADER_SIZE:
                misses += 1
                unreadable.append((i, UndecodablePayload("an entry string shorter than its header")))
                continue
            created, expiry, entry_generation, stored_hits, _, meta_size = unpack_header(raw)
            if entry_generation != generation:
                misses += 1  # its bookkeeping was evicted: see docs/redis-layout.md
                continue
            if expiry and expiry <= now_us:
                misses += 1  # logically expired: kept stored for fail-safe reads only
                continue
            key = keys[i]
            if meta_size:
                try:
                    namespace, tags = decode_meta(raw, meta_size)
                except ValueError as exc:
                    misses += 1
                    unreadable.append((i, UndecodablePayload(str(exc))))
                    continue
                stored_key = self._stored_key(key, namespace, tags)
            elif key.namespace is None and not key.tags:
                stored_key = key
            else:
                stored_key = self._stored_key(key, None, [])
            payload = raw[ENTRY_HEADER_SIZE + meta_size :]
            try:
                value = decode(payload, names[i])
            except UndecodablePayload as unread:
                misses += 1
                unreadable.append((i, unread))
                continue
            fk = full_keys[i]
            counted = counts.get(fk)
            if counted is None or counted[0] != created:
                counted = counts[fk] = [created, 0, now_ms]
            counted[1] += 1
            counted[2] = now_ms
            unflushed = counted[1]
            if in_flight:
                flushed = in_flight.get(fk)
                if flushed is not None and flushed[0] == created:
                    unflushed += flushed[1]
            created_at = datetimes.get(created)
            if created_at is None:
                created_at = _cached_us(created)
            expires_at = None
            if expiry:
                expires_at = datetimes.get(expiry)
                if expires_at is None:
                    expires_at = _cached_us(expiry)
            # make_entry, inlined: one call less per key
            entry = new_object(CacheEntry)
            set_attribute(
                entry,
                "__dict__",
                {
                    "key": stored_key,
                    "value": value,
                    "created_at": created_at,
                    "expires_at": expires_at,
                    "hit_count": stored_hits + unflushed,
                    "last_accessed": accessed,
                },
            )
            set_attribute(entry, "__pydantic_fields_set__", set(fields))
            set_attribute(entry, "__pydantic_extra__", None)
            set_attribute(entry, "__pydantic_private__", None)
            found[i] = (entry, payload) if with_payloads else entry
            hits += 1
        pending.hits += hits
        pending.misses += misses

    async def exists(self, key: CacheKey) -> bool:
        fk = _require_key(key).full_key.encode()
        shard = self._layout.shard_of(fk)
        await self._ready("exists")
        raw, generation = await self._transport.command(
            "exists", shard.slot, b"MGET", shard.entry_key(fk), shard.generation
        )
        if raw is None or generation is None or len(raw) < ENTRY_HEADER_SIZE:
            return False
        _, expiry, entry_generation, _, _, _ = unpack_header(raw)
        if expiry and expiry <= time.time_ns() // 1000:
            return False  # logically expired (kept for fail-safe reads only)
        return bool(entry_generation == int(generation))

    async def get_stale(self, key: CacheKey, max_age: timedelta | None = None) -> CacheEntry | None:
        """The entry, live or kept past its TTL for fail-safe (``set(..., stale_ttl=...)``), or
        ``None``; with ``max_age``, only one stored less than that long ago. Counts neither a hit nor
        a miss (it is no read of the cache's: what fail-safe falls back on). An unreadable entry is
        ``None``."""
        fk = _require_key(key).full_key.encode()
        shard = self._layout.shard_of(fk)
        await self._ready("get_stale")
        raw, generation = await self._transport.command(
            "get_stale", shard.slot, b"MGET", shard.entry_key(fk), shard.generation
        )
        if raw is None or generation is None:
            return None
        try:
            stored = decode_entry(raw)
        except ValueError:
            return None
        header = stored.header
        if header.generation != int(generation):
            return None
        created = _us(header.created_us)
        if max_age is not None and datetime.now(timezone.utc) - created > max_age:
            return None
        try:
            value = self._codec.decode(stored.payload, key.full_key)
        except UndecodablePayload:
            return None
        return make_entry(
            self._stored_key(key, stored.namespace, stored.tags),
            value,
            created,
            _us(header.expiry_us) if header.expiry_us else None,
            header.hits,
            _us(header.last_access_ms * 1000),
        )

    def _read(
        self,
        key: CacheKey,
        fk: bytes,
        shard: int,
        raw: bytes | None,
        generation: int | None,
        now: tuple[int, datetime],
    ) -> tuple[CacheEntry, bytes] | None:
        """The entry a read found, counted as the hit or miss it is (the hot path of every read:
        no coroutine, no validation). Raises ``UndecodablePayload`` for an entry to discard."""
        if raw is None or generation is None:
            self._accounting.miss(shard)
            return None
        try:
            created, expiry, entry_generation, hits, _, meta_size = unpack_header(raw)
        except struct.error:
            self._accounting.miss(shard)
            raise UndecodablePayload("an entry string shorter than its header") from None
        if entry_generation != generation:
            self._accounting.miss(shard)  # its bookkeeping was evicted: see docs/redis-layout.md
            return None
        now_ms, accessed = now
        if expiry and expiry <= now_ms * 1000:
            self._accounting.miss(shard)  # logically expired: kept stored for fail-safe reads only
            return None
        namespace: str | None = None
        tags: list[str] = []
        if meta_size:
            try:
                namespace, tags = decode_meta(raw, meta_size)
            except ValueError as exc:
                self._accounting.miss(shard)
                raise UndecodablePayload(str(exc)) from None
        payload = raw[ENTRY_HEADER_SIZE + meta_size :]
        stored_key = self._stored_key(key, namespace, tags)
        try:
            value = self._codec.decode(payload, key.full_key)
        except UndecodablePayload:
            self._accounting.miss(shard)
            raise
        unflushed = self._accounting.hit(shard, fk, created, now_ms)
        entry = make_entry(
            stored_key,
            value,
            _EPOCH + _MICROSECOND * created,
            _EPOCH + _MICROSECOND * expiry if expiry else None,
            hits + unflushed,
            accessed,
        )
        return entry, payload

    def _by_shard(self, items: Iterable[_T], full_key_of: Callable[[_T], bytes]) -> Iterator[tuple[Shard, list[_T]]]:
        """Items grouped by shard, in chunks of at most one batch: one script call each."""
        groups: dict[int, list[_T]] = defaultdict(list)
        for item in items:
            groups[self._layout.shard_of(full_key_of(item)).number].append(item)
        for number, group in groups.items():
            for start in range(0, len(group), self._batch):
                yield self._layout.shards[number], group[start : start + self._batch]

    def count_hit_elsewhere(self, full_key: str) -> None:
        """Count a hit of this cache served without Redis (a hybrid's L1 copy) in the shared
        ``total_hits``, flushed with this instance's accounting, so that every instance's
        ``get_stats()`` counts every hit of every instance once."""
        layout = self._layout
        number = 0 if layout.shard_count == 1 else layout.shard_of(full_key.encode()).number
        self._accounting.hit_elsewhere(number)

    @property
    def layout(self) -> Layout:
        """Key names and shards (for tools and tests)."""
        return self._layout

    @property
    def transport(self) -> Transport:
        """How commands reach Redis (for tools and tests)."""
        return self._transport

    def invalidation_feed(self, check_interval: float = 1.0) -> InvalidationFeed:
        """The changes other instances make to this cache: ``async with adapter.invalidation_feed()
        as feed``, then ``await feed.next()`` for each batch of changed full_keys (``None``: anything
        may have changed). What an in-process L1 listens to (``docs/hybrid.md``)."""
        return InvalidationFeed(self._transport, self._layout, self.origin, check_interval, sharded=self._uses_sharded)

    async def _uses_sharded(self) -> bool:
        await self._ready("subscribe")
        return bool(self._sharded)

    @staticmethod
    def _stored_key(key: CacheKey, namespace: str | None, tags: list[str]) -> CacheKey:
        """The key as it was set (its namespace and tags), which may differ from the one asked with."""
        if namespace == key.namespace and tags == key.tags:
            return key
        full = key.full_key
        bare = full[len(namespace) + 1 :] if namespace else full
        return CacheKey.model_construct(key=bare, namespace=namespace, tags=tags)

    async def _discard(self, key: CacheKey, fk: bytes, reason: Exception) -> None:
        """An entry we cannot trust or read: remove it (the read counts as the miss it was)."""
        logger.warning("rediscache: discarding unreadable entry %r on %s: %s", key.full_key, self.server, reason)
        shard = self._layout.shard_of(fk)
        await self._transport.run(
            "discard",
            shard.slot,
            (_DELETE, (*shard.index_keys, shard.entry_key(fk)), (self._announce(shard), self.origin, fk)),
            again=True,  # deleting what is already gone changes nothing here: the answer is not used
        )

    # -- access accounting -----------------------------------------------------------------------------

    def _start_flushing(self) -> None:
        if self._flusher is None and not self._read_only and not self._closed:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_every(), name="rediscache-flush")

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval)
            if self._accounting:
                try:
                    await self.flush()
                except Exception:  # a bug must not stop the accounting for good: say it, go on
                    logger.exception("rediscache: access accounting flush failed on %s", self.server)

    async def flush(self) -> None:
        """Write this process's access accounting (hits, misses, hit counts, last access) to Redis
        now: one script call per shard read since the last flush. Runs every ``flush_interval`` on
        its own, and before ``get_stats()``. A flush that fails is dropped (and counted in
        ``flush_failures``): reads never fail because their accounting could not be written."""
        if self._read_only:
            return
        async with self._flush_lock:
            taken = self._accounting.take()
            if not taken:
                return
            calls: list[tuple[int, ScriptCall]] = []
            for number, pending in taken.items():
                shard = self._layout.shards[number]
                entries = list(pending.entries.items())
                counters: list[Any] = [pending.hits, pending.misses]
                for start in range(0, max(len(entries), 1), self._batch):
                    chunk = entries[start : start + self._batch]
                    args: list[Any] = counters
                    pack = _FLUSH_ROW.pack
                    args.extend([pack(created, min(hits, _MAX_U32), last) for _, (created, hits, last) in chunk])
                    keys = (*shard.index_keys, *(shard.entry_key(fk) for fk, _ in chunk))
                    calls.append((shard.slot, (_FLUSH, keys, args)))
                    counters = [0, 0]
            try:
                # Counts add up: never sent twice (a lost flush undercounts, a repeated one would overcount).
                await self._transport.run_many("flush", calls, again=False)
            except CacheError as exc:
                self.flush_failures += 1
                logger.debug("rediscache: access accounting flush dropped on %s: %s", self.server, exc)
            finally:
                self._accounting.done()

    # -- writes ------------------------------------------------------------------------------------

    def _set_call(self, key: CacheKey, value: Any, ttl_ms: int, keep_ms: int = 0) -> tuple[Shard, ScriptCall]:
        full_key = _require_key(key).full_key
        payload = self._codec.encode(value, full_key)
        fk = full_key.encode()
        shard = self._layout.shard_of(fk)
        namespace = key.namespace.encode() if key.namespace is not None else b""
        return shard, (
            _SET,
            (*shard.index_keys, shard.entry_key(fk)),
            (
                fk,
                payload,
                ttl_ms,
                namespace,
                self._trim,
                self._announce(shard),
                self.origin,
                keep_ms,
                *[tag.encode() for tag in key.tags],
            ),
        )

    async def set(
        self, key: CacheKey, value: Any, ttl: timedelta | None = None, *, stale_ttl: timedelta | None = None
    ) -> None:
        """Replace the entry; with ``stale_ttl``, keep it stored that long past its TTL for
        :meth:`get_stale` (logically expired: ``get``, ``exists``, ``get_many`` and the stats' counts
        do not see it; every invalidation removes it)."""
        ttl_ms = _ttl_ms(validate_ttl(ttl))
        keep_ms = _keep_ms(ttl, stale_ttl)
        shard, call = self._set_call(key, value, ttl_ms, keep_ms)  # every check, before anything is sent
        if not self._checked:
            await self._ready("set")
            shard, call = self._set_call(key, value, ttl_ms, keep_ms)  # now that the channel is known
        # Writing the same entry twice leaves what writing it once does: safe to send again.
        await self._transport.run("set", shard.slot, call, again=True)

    async def set_many(self, items: Iterable[tuple[CacheKey, Any]], ttl: timedelta | None = None) -> None:
        ttl_ms = _ttl_ms(validate_ttl(ttl))
        # Encode everything before sending anything: one bad value writes nothing.
        prepared: list[tuple[bytes, tuple[Any, ...]]] = []
        for key, value in items:
            full_key = _require_key(key).full_key
            payload = self._codec.encode(value, full_key)
            namespace = key.namespace.encode() if key.namespace is not None else b""
            fk = full_key.encode()
            prepared.append((fk, (fk, payload, ttl_ms, namespace, len(key.tags), *[t.encode() for t in key.tags])))
        if not prepared:
            return
        await self._ready("set_many")
        calls: list[tuple[int, ScriptCall]] = []
        for shard, chunk in self._by_shard(prepared, lambda item: item[0]):
            args: list[Any] = [self._trim, self._announce(shard), self.origin]
            for _, entry_args in chunk:
                args.extend(entry_args)
            calls.append(
                (shard.slot, (_SET_MANY, (*shard.index_keys, *(shard.entry_key(fk) for fk, _ in chunk)), args))
            )
        await self._transport.run_many("set_many", calls, again=True)

    async def delete(self, key: CacheKey) -> bool:
        fk = _require_key(key).full_key.encode()
        await self._ready("delete")
        shard = self._layout.shard_of(fk)
        call: ScriptCall = (_DELETE, (*shard.index_keys, shard.entry_key(fk)), (self._announce(shard), self.origin, fk))
        # Never sent twice: a second run would answer False for the entry the first one removed.
        try:
            return bool(await self._transport.run("delete", shard.slot, call, again=None, durable=True))
        except CacheReplicationError as error:
            removed = bool(error.result)
            # Nothing removed, nothing a failover could bring back.
            return bool(self._unreplicated("delete", [str(error)], removed)) if removed else False

    async def delete_many(self, keys: Iterable[CacheKey]) -> int:
        full_keys = list(dict.fromkeys(_require_key(key).full_key.encode() for key in keys))
        await self._ready("delete_many")
        try:
            return await self._delete_full_keys("delete_many", full_keys)
        except CacheReplicationError as error:
            return int(self._unreplicated("delete_many", [str(error)], error.result)) if error.result else 0

    async def _delete_full_keys(self, op: str, full_keys: Sequence[bytes]) -> int:
        calls: list[tuple[int, ScriptCall]] = [
            (
                shard.slot,
                (
                    _DELETE,
                    (*shard.index_keys, *map(shard.entry_key, chunk)),
                    (self._announce(shard), self.origin, *chunk),
                ),
            )
            for shard, chunk in self._by_shard(full_keys, lambda fk: fk)
        ]
        try:
            answers = await self._transport.run_many(op, calls, again=False, durable=True)
        except CacheReplicationError as error:
            raise CacheReplicationError(str(error), result=sum(int(live) for live in error.result)) from None
        return sum(int(live) for live in answers)

    # -- replication ---------------------------------------------------------------------------------

    def _unreplicated(self, op: str, shortfalls: list[str], result: Any) -> Any:
        """Tell the caller that an invalidation that removed something is not on enough replicas."""
        message = (
            f"{op} on {self.server} is done on the primary, but not acknowledged by enough replicas: "
            f"{'; '.join(dict.fromkeys(shortfalls))}; a failover now could undo it"
        )
        if self._raise_unreplicated:
            raise CacheReplicationError(message, result=result)
        self.unreplicated_invalidations += 1
        logger.warning("rediscache: %s", message)
        return result

    # -- invalidation ------------------------------------------------------------------------------

    async def _invalidate(self, op: str, index: bytes, prefixes: Sequence[bytes]) -> int:
        """Run the invalidate script on every shard, batch after batch, until the ranges are empty.

        When a shard's ranges hold at most one batch, its first call removes them all (an
        invalidation of up to one batch is one round trip); a longer one is cut into calls of
        ``invalidation_slice`` of server time each, from the first, so that other clients' commands
        get in between."""
        shortfalls: list[str] = []

        async def one_shard(shard: Shard) -> int:
            removed = 0
            head = (shard.entry_prefix, self._batch, index, self._announce(shard), self.origin)
            first = f"{_FIRST_SLICE_US}/{self._slice_us}".encode()
            call: ScriptCall = (_INVALIDATE, shard.index_keys, (*head, first, *prefixes))
            sliced: ScriptCall = (_INVALIDATE, shard.index_keys, (*head, self._slice_us, *prefixes))
            while True:
                try:
                    live, more = await self._transport.run(op, shard.slot, call, again=None, durable=True)
                except CacheReplicationError as error:
                    live, more = error.result
                    if int(live):  # a batch that removed nothing has nothing a failover could bring back
                        shortfalls.append(str(error))
                removed += int(live)
                if not more:
                    return removed
                call = sliced

        await self._ready(op)
        total = sum(await asyncio.gather(*(one_shard(shard) for shard in self._layout.shards)))
        return self._unreplicated(op, shortfalls, total) if shortfalls else total

    async def delete_by_tags(self, tags: list[str]) -> int:
        prefixes = list(dict.fromkeys(member_prefix(tag) for tag in _require_tags(tags)))
        if not prefixes:
            return 0
        return await self._invalidate("delete_by_tags", b"t", prefixes)

    async def delete_by_namespace(self, namespace: str) -> int:
        return await self._invalidate(
            "delete_by_namespace", b"n", [member_prefix(_require_name("namespace", namespace))]
        )

    async def clear(self) -> None:
        await self._invalidate("clear", b"k", [b""])

    async def delete_by_pattern(self, pattern: str) -> int:
        """Walk each shard's key index with ``ZSCAN ... MATCH`` (Redis's own glob, on the bytes of
        ``full_key``) and delete what matches, one batch at a time. The walk reads the whole index:
        the index is ordered by expiry, not by name, so a literal prefix does not narrow it."""
        match = _require_name("pattern", pattern).encode()
        shortfalls: list[str] = []

        async def one_shard(shard: Shard) -> int:
            removed, cursor = 0, b"0"
            seen: set[bytes] = set()  # ZSCAN may return a member twice
            while True:
                cursor, page = await self._transport.command(
                    "delete_by_pattern",
                    shard.slot,
                    b"ZSCAN",
                    shard.keys,
                    cursor,
                    b"MATCH",
                    match,
                    b"COUNT",
                    self._batch,
                )
                hits = [fk for fk in page[::2] if fk != SENTINEL and fk not in seen]
                seen.update(hits)
                if hits:
                    try:
                        removed += await self._delete_full_keys("delete_by_pattern", hits)
                    except CacheReplicationError as error:
                        if error.result:
                            shortfalls.append(str(error))
                        removed += error.result
                if cursor in (b"0", 0):
                    return removed

        await self._ready("delete_by_pattern")
        total = sum(await asyncio.gather(*(one_shard(shard) for shard in self._layout.shards)))
        return self._unreplicated("delete_by_pattern", shortfalls, total) if shortfalls else total

    # -- maintenance -------------------------------------------------------------------------------

    async def cleanup_expired(self) -> int:
        """Unindex the entries whose TTL passed, and reconcile the key index with the entries: one
        walk over every shard's index, in batches, unindexing the members whose entry string is gone
        (evicted under ``maxmemory``). Returns how many expired entries it unindexed; the vanished
        (evicted) ones are added to ``reconciled``."""

        async def one_shard(shard: Shard) -> int:
            expired, cursor = 0, b"0"
            while True:
                call: ScriptCall = (_CLEANUP, shard.index_keys, (self._batch, shard.entry_prefix, cursor))
                count, more, vanished, cursor = await self._transport.run(
                    "cleanup_expired", shard.slot, call, again=None
                )
                expired += int(count)
                self.reconciled += int(vanished)
                if not more and cursor in (b"0", 0):
                    return expired

        await self._ready("cleanup_expired")
        return sum(await asyncio.gather(*(one_shard(shard) for shard in self._layout.shards)))

    async def get_stats(self) -> CacheStats:
        """The shared figures; ``oldest_entry``/``newest_entry`` are exact for shards of up to
        ``STATS_SAMPLE`` entries and the oldest/newest of a random sample of that many beyond."""
        await self._ready("get_stats")
        await self.flush()  # this instance's own reads show at once
        replies = await self._transport.run_each(
            "get_stats",
            [
                (shard.slot, (_STATS, shard.index_keys, (shard.entry_prefix, STATS_SAMPLE)))
                for shard in self._layout.shards
            ],
        )
        entries = hits = misses = size = 0
        oldest: int | None = None
        newest: int | None = None
        for live, shard_hits, shard_misses, shard_bytes, low, high in replies:
            entries += int(live)
            hits += int(shard_hits)
            misses += int(shard_misses)
            size += int(shard_bytes)
            if low is not None:
                oldest = int(low) if oldest is None else min(oldest, int(low))
            if high is not None:
                newest = int(high) if newest is None else max(newest, int(high))
        reads = hits + misses
        return CacheStats(  # type: ignore[call-arg]  # extra fields are allowed on CacheStats
            total_entries=entries,
            total_hits=hits,
            total_misses=misses,
            hit_rate=hits / reads if reads else 0.0,
            memory_usage_bytes=size,
            oldest_entry=None if oldest is None else _us(oldest),
            newest_entry=None if newest is None else _us(newest),
            shards=self._layout.shard_count,
            unreplicated_invalidations=self.unreplicated_invalidations,
            flush_failures=self.flush_failures,
        )

    # -- locks (for stampede protection across instances) --------------------------------------------

    def _lock_key(self, name: str) -> tuple[Shard, bytes]:
        raw = _require_name("lock name", name).encode()
        shard = self._layout.shard_of(raw)
        return shard, shard.lock_key(raw)

    async def try_lock(self, name: str, token: str, ttl: timedelta) -> bool:
        """Take the lock ``name`` for ``ttl`` if nobody holds it (``SET NX PX``); ``token`` proves ownership.

        A holder that dies leaves the lock to expire after ``ttl``.
        """
        shard, key = self._lock_key(name)
        ttl_ms = _ttl_ms(validate_ttl(ttl))
        await self._ready("try_lock")
        reply = await self._transport.command(
            "try_lock", shard.slot, b"SET", key, _require_name("token", token), b"NX", b"PX", ttl_ms, again=None
        )
        return reply is not None and reply is not False

    async def unlock(self, name: str, token: str) -> bool:
        """Release the lock if ``token`` still holds it; ``False`` if it expired or another holder took it."""
        shard, key = self._lock_key(name)
        await self._ready("unlock")
        call: ScriptCall = (_UNLOCK, (key,), (_require_name("token", token),))
        return bool(await self._transport.run("unlock", shard.slot, call, again=None))

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._flusher is not None:
                self._flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._flusher
            with contextlib.suppress(CacheError):
                await self.flush()  # what this instance counted since the last flush
            metrics.retire_source(self._metrics_source)
            await self._transport.close()
