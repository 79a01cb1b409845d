"""The throughput workloads: one function per workload per library, and the groups they form.

Each ``<library>_<workload>(clients)`` returns the coroutine function ``op(i)`` that performs the
i-th call, building its key the way an application would (an f-string for the peers, a
``CacheKey`` for rediscache: its construction is part of rediscache's cost). Reads check what they
got (a hit must hit, a miss must miss), so a broken subject fails instead of looking fast.

All writes carry the same TTL (one hour) in every library. The key space of the single-op
workloads is ``KEYS`` keys per library, written before the reads by ``prepare`` (not timed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import msgpack  # type: ignore[import-untyped]
from redis.asyncio import Redis, RedisCluster

from bench.libraries import (
    CS_PREFIX,
    RAW_PREFIX,
    ClusterClients,
    StandaloneClients,
    hybrid_adapter_class,
)
from bench.runner import Group, Op, Subject
from bench.settings import Settings
from rediscache import CacheKey, RedisCacheAdapter

__all__ = ["PAYLOAD", "cluster_groups", "l1_groups", "standalone_groups"]

KEYS = 1000
BATCH = 100
TTL = timedelta(hours=1)
TTL_S = 3600
TTL_MS = 3_600_000

#: The value of every single-op workload: a small dict, 102 bytes in msgpack.
PAYLOAD: dict[str, Any] = {
    "id": 12345,
    "sku": "SKU-0012345",
    "name": "Blue widget, large",
    "price": "19.90",
    "stock": 17,
    "active": True,
    "tags": ["a", "b", "c"],
    "rating": 4.5,
}
PACKED: bytes = msgpack.packb(PAYLOAD)

RAW = "raw redis-py"
RC = "rediscache"
#: The two raw redis-py subjects of the single-server rows (notes of their subjects): the baseline on
#: rediscache's own pool type, and redis-py's default pool (what ``RedisCluster`` has per node).
BLOCKING = "blocking pool"
DEFAULT = "default pool"
CASHEWS = "cashews"
AIOCACHE = "aiocache"
HYBRID = "rediscache hybrid"

# Cashews tags are registered against key templates (its README's low-level API); the keys of the
# tagged-set workload carry the category so the template can name it.
CASHEWS_TAGGED_TEMPLATE = CS_PREFIX + "tagged:{cat}:{i}"


class Miss(AssertionError):
    """A read that should have hit returned nothing (or the reverse)."""


def _expect_hit(value: object) -> None:
    if value is None:
        raise Miss("expected a hit, got a miss")


def _expect_miss(value: object) -> None:
    if value is not None:
        raise Miss(f"expected a miss, got {value!r}")


# --------------------------------------------------------------------------------------------------
# get hit
# --------------------------------------------------------------------------------------------------


def raw_get_hit(raw: Redis | RedisCluster) -> Op:
    async def op(i: int) -> None:
        data = await raw.get(f"{RAW_PREFIX}item:{i % KEYS}")
        _expect_hit(data)
        msgpack.unpackb(data)

    return op


def rc_get_hit(rc: RedisCacheAdapter) -> Op:
    async def op(i: int) -> None:
        _expect_hit(await rc.get(CacheKey(key=f"item:{i % KEYS}")))

    return op


def cashews_get_hit(c: StandaloneClients) -> Op:
    cache = c.cashews

    async def op(i: int) -> None:
        _expect_hit(await cache.get(f"{CS_PREFIX}item:{i % KEYS}"))

    return op


def aiocache_get_hit(c: StandaloneClients) -> Op:
    cache = c.aiocache

    async def op(i: int) -> None:
        _expect_hit(await cache.get(f"item:{i % KEYS}"))

    return op


# --------------------------------------------------------------------------------------------------
# get miss
# --------------------------------------------------------------------------------------------------


def raw_get_miss(raw: Redis | RedisCluster) -> Op:
    async def op(i: int) -> None:
        data = await raw.get(f"{RAW_PREFIX}missing:{i}")
        _expect_miss(data)

    return op


def rc_get_miss(rc: RedisCacheAdapter) -> Op:
    async def op(i: int) -> None:
        _expect_miss(await rc.get(CacheKey(key=f"missing:{i}")))

    return op


def cashews_get_miss(c: StandaloneClients) -> Op:
    cache = c.cashews

    async def op(i: int) -> None:
        _expect_miss(await cache.get(f"{CS_PREFIX}missing:{i}"))

    return op


def aiocache_get_miss(c: StandaloneClients) -> Op:
    cache = c.aiocache

    async def op(i: int) -> None:
        _expect_miss(await cache.get(f"missing:{i}"))

    return op


# --------------------------------------------------------------------------------------------------
# set without tags
# --------------------------------------------------------------------------------------------------


def raw_set(raw: Redis | RedisCluster) -> Op:
    async def op(i: int) -> None:
        await raw.set(f"{RAW_PREFIX}item:{i % KEYS}", msgpack.packb(PAYLOAD), px=TTL_MS)

    return op


def rc_set(rc: RedisCacheAdapter) -> Op:
    async def op(i: int) -> None:
        await rc.set(CacheKey(key=f"item:{i % KEYS}"), PAYLOAD, ttl=TTL)

    return op


def cashews_set(c: StandaloneClients) -> Op:
    cache = c.cashews

    async def op(i: int) -> None:
        await cache.set(f"{CS_PREFIX}item:{i % KEYS}", PAYLOAD, expire=TTL_S)

    return op


def aiocache_set(c: StandaloneClients) -> Op:
    cache = c.aiocache

    async def op(i: int) -> None:
        await cache.set(f"item:{i % KEYS}", PAYLOAD, ttl=TTL_S)

    return op


# --------------------------------------------------------------------------------------------------
# set with a namespace and two tags (cashews: tags only, it has no namespaces; aiocache: no tags)
# --------------------------------------------------------------------------------------------------


def rc_set_tagged(rc: RedisCacheAdapter) -> Op:
    async def op(i: int) -> None:
        key = CacheKey(key=f"item:{i % KEYS}", namespace=f"tenant:{i % 10}", tags=[f"cat:{i % 100}", "all"])
        await rc.set(key, PAYLOAD, ttl=TTL)

    return op


def cashews_set_one_tag(c: StandaloneClients) -> Op:
    cache = c.cashews

    async def op(i: int) -> None:
        await cache.set(f"{CS_PREFIX}tagged:{i % 100}:{i % KEYS}", PAYLOAD, expire=TTL_S, tags=["cs-all"])

    return op


def cashews_set_two_tags(c: StandaloneClients) -> Op:
    cache = c.cashews

    async def op(i: int) -> None:
        key = f"{CS_PREFIX}tagged:{i % 100}:{i % KEYS}"
        await cache.set(key, PAYLOAD, expire=TTL_S, tags=[f"cs-cat:{i % 100}", "cs-all"])

    return op


# --------------------------------------------------------------------------------------------------
# 90/10 read/write mix (writes without tags)
# --------------------------------------------------------------------------------------------------


def _mix(read: Op, write: Op) -> Op:
    async def op(i: int) -> None:
        if i % 10 == 9:
            await write(i)
        else:
            await read(i)

    return op


# --------------------------------------------------------------------------------------------------
# get_many / set_many of 100 keys, and 100 single calls in a row
# --------------------------------------------------------------------------------------------------


def _batch(i: int) -> range:
    start = i * BATCH
    return range(start, start + BATCH)


def raw_get_many(raw: Redis | RedisCluster) -> Op:
    async def op(i: int) -> None:
        values = await raw.mget([f"{RAW_PREFIX}item:{n % KEYS}" for n in _batch(i)])
        for data in values:
            _expect_hit(data)
            msgpack.unpackb(data)

    return op


def raw_cluster_get_many(raw: RedisCluster) -> Op:
    async def op(i: int) -> None:
        values = await raw.mget_nonatomic([f"{RAW_PREFIX}item:{n % KEYS}" for n in _batch(i)])
        for data in values:
            _expect_hit(data)
            msgpack.unpackb(data)

    return op


def rc_get_many(rc: RedisCacheAdapter) -> Op:
    async def op(i: int) -> None:
        for entry in await rc.get_many([CacheKey(key=f"item:{n % KEYS}") for n in _batch(i)]):
            _expect_hit(entry)

    return op


def cashews_get_many(c: StandaloneClients) -> Op:
    cache = c.cashews

    async def op(i: int) -> None:
        for value in await cache.get_many(*[f"{CS_PREFIX}item:{n % KEYS}" for n in _batch(i)]):
            _expect_hit(value)

    return op


def aiocache_get_many(c: StandaloneClients) -> Op:
    cache = c.aiocache

    async def op(i: int) -> None:
        for value in await cache.multi_get([f"item:{n % KEYS}" for n in _batch(i)]):
            _expect_hit(value)

    return op


def raw_set_many(raw: Redis) -> Op:
    async def op(i: int) -> None:
        async with raw.pipeline(transaction=False) as pipe:
            for n in _batch(i):
                pipe.set(f"{RAW_PREFIX}item:{n % KEYS}", msgpack.packb(PAYLOAD), px=TTL_MS)
            await pipe.execute()

    return op


def rc_set_many(rc: RedisCacheAdapter) -> Op:
    async def op(i: int) -> None:
        await rc.set_many([(CacheKey(key=f"item:{n % KEYS}"), PAYLOAD) for n in _batch(i)], ttl=TTL)

    return op


def cashews_set_many(c: StandaloneClients) -> Op:
    cache = c.cashews

    async def op(i: int) -> None:
        await cache.set_many({f"{CS_PREFIX}item:{n % KEYS}": PAYLOAD for n in _batch(i)}, expire=TTL_S)

    return op


def aiocache_set_many(c: StandaloneClients) -> Op:
    cache = c.aiocache

    async def op(i: int) -> None:
        await cache.multi_set([(f"item:{n % KEYS}", PAYLOAD) for n in _batch(i)], ttl=TTL_S)

    return op


GET_MANY_ROW = f"get_many({BATCH})"


def batch_pair(library: str, batch: Op, single: Op, *, what: str, note: str = "") -> list[Subject]:
    """A library's batch call of 100 keys, and 100 of its single calls in a row (same keys)."""
    return [
        Subject(library, batch, row=f"{what}_many({BATCH})", note=note, units_per_call=BATCH),
        Subject(library, sequential(single), row=f"100 x {what}", units_per_call=BATCH),
    ]


def sequential(single: Op) -> Op:
    """100 single calls in a row: what the batch call replaces."""

    async def op(i: int) -> None:
        for n in _batch(i):
            await single(n)

    return op


# --------------------------------------------------------------------------------------------------
# Populating the key space (prepare steps, not timed)
# --------------------------------------------------------------------------------------------------


async def populate_raw(raw: Redis | RedisCluster) -> None:
    pipe = raw.pipeline()
    for n in range(KEYS):
        pipe.set(f"{RAW_PREFIX}item:{n}", PACKED, px=TTL_MS)
    await pipe.execute()


async def populate_rc(rc: RedisCacheAdapter) -> None:
    await rc.set_many([(CacheKey(key=f"item:{n}"), PAYLOAD) for n in range(KEYS)], ttl=TTL)


async def populate_standalone(c: StandaloneClients) -> None:
    await populate_raw(c.raw)
    await populate_rc(c.rc)
    await c.cashews.set_many({f"{CS_PREFIX}item:{n}": PAYLOAD for n in range(KEYS)}, expire=TTL_S)
    await c.aiocache.multi_set([(f"item:{n}", PAYLOAD) for n in range(KEYS)], ttl=TTL_S)


async def populate_cluster(c: ClusterClients) -> None:
    await populate_raw(c.raw)
    await populate_rc(c.rc)


def register_cashews_tags(c: StandaloneClients) -> None:
    c.cashews.register_tag("cs-all", CASHEWS_TAGGED_TEMPLATE)
    c.cashews.register_tag("cs-cat:{cat}", CASHEWS_TAGGED_TEMPLATE)


# --------------------------------------------------------------------------------------------------
# Groups
# --------------------------------------------------------------------------------------------------


def standalone_groups(c: StandaloneClients, s: Settings) -> list[Group]:
    register_cashews_tags(c)

    async def prepare() -> None:
        await populate_standalone(c)

    groups: list[Group] = []
    for conc in s.concurrency:
        groups += [
            Group(
                id=f"standalone/get_hit/c{conc}",
                topology="standalone",
                workload="get hit",
                concurrency=conc,
                units=s.units,
                prepare=prepare,
                description="read an existing 102-byte entry and decode it",
                subjects=[
                    Subject(RAW, raw_get_hit(c.raw), note=BLOCKING),
                    Subject(RAW, raw_get_hit(c.raw_default), note=DEFAULT),
                    Subject(RC, rc_get_hit(c.rc)),
                    Subject(CASHEWS, cashews_get_hit(c)),
                    Subject(AIOCACHE, aiocache_get_hit(c)),
                ],
            ),
            Group(
                id=f"standalone/get_miss/c{conc}",
                topology="standalone",
                workload="get miss",
                concurrency=conc,
                units=s.units,
                description="read a key that does not exist",
                subjects=[
                    Subject(RAW, raw_get_miss(c.raw), note=BLOCKING),
                    Subject(RAW, raw_get_miss(c.raw_default), note=DEFAULT),
                    Subject(RC, rc_get_miss(c.rc)),
                    Subject(CASHEWS, cashews_get_miss(c)),
                    Subject(AIOCACHE, aiocache_get_miss(c)),
                ],
            ),
            Group(
                id=f"standalone/set/c{conc}",
                topology="standalone",
                workload="set",
                concurrency=conc,
                units=s.units,
                description="overwrite an entry (no namespace, no tags), TTL 1 h",
                subjects=[
                    Subject(RAW, raw_set(c.raw), note=BLOCKING),
                    Subject(RAW, raw_set(c.raw_default), note=DEFAULT),
                    Subject(RC, rc_set(c.rc)),
                    Subject(CASHEWS, cashews_set(c)),
                    Subject(AIOCACHE, aiocache_set(c)),
                ],
            ),
            Group(
                id=f"standalone/set_tagged/c{conc}",
                topology="standalone",
                workload="set ns + 2 tags",
                concurrency=conc,
                units=s.units,
                description="overwrite an entry with a namespace and two tags (cashews: tags, it has no "
                "namespaces; aiocache has no tags), TTL 1 h",
                subjects=[
                    Subject(RAW, raw_set(c.raw), note=BLOCKING),
                    Subject(RAW, raw_set(c.raw_default), note=DEFAULT),
                    Subject(RC, rc_set_tagged(c.rc)),
                    Subject(CASHEWS, cashews_set_one_tag(c), note="1 tag"),
                    Subject(CASHEWS, cashews_set_two_tags(c), note="2 tags"),
                ],
            ),
            Group(
                id=f"standalone/mix_90_10/c{conc}",
                topology="standalone",
                workload="90/10 get/set",
                concurrency=conc,
                units=s.units,
                prepare=prepare,
                description="9 get hits for 1 set (no tags)",
                subjects=[
                    Subject(RAW, _mix(raw_get_hit(c.raw), raw_set(c.raw)), note=BLOCKING),
                    Subject(RC, _mix(rc_get_hit(c.rc), rc_set(c.rc))),
                    Subject(CASHEWS, _mix(cashews_get_hit(c), cashews_set(c))),
                    Subject(AIOCACHE, _mix(aiocache_get_hit(c), aiocache_set(c))),
                ],
            ),
        ]
    for conc in s.concurrency:
        groups += [
            Group(
                id=f"standalone/get_many/c{conc}",
                topology="standalone",
                workload="get_many(100)",
                concurrency=conc,
                units=s.batch_units,
                unit="keys/s",
                prepare=prepare,
                description="100 hits in one call (raw: MGET) against 100 single gets in a row",
                subjects=[
                    *batch_pair(RAW, raw_get_many(c.raw), raw_get_hit(c.raw), what="get", note=f"MGET, {BLOCKING}"),
                    Subject(
                        RAW,
                        raw_get_many(c.raw_default),
                        row=GET_MANY_ROW,
                        note=f"MGET, {DEFAULT}",
                        units_per_call=BATCH,
                    ),
                    *batch_pair(RC, rc_get_many(c.rc), rc_get_hit(c.rc), what="get"),
                    *batch_pair(CASHEWS, cashews_get_many(c), cashews_get_hit(c), what="get"),
                    *batch_pair(AIOCACHE, aiocache_get_many(c), aiocache_get_hit(c), what="get", note="multi_get"),
                ],
            ),
            Group(
                id=f"standalone/set_many/c{conc}",
                topology="standalone",
                workload="set_many(100)",
                concurrency=conc,
                units=s.batch_units,
                unit="keys/s",
                description="100 writes (no tags, TTL 1 h) in one call (raw: a pipeline of SET PX) "
                "against 100 single sets in a row",
                subjects=[
                    *batch_pair(RAW, raw_set_many(c.raw), raw_set(c.raw), what="set", note=f"pipeline, {BLOCKING}"),
                    *batch_pair(RC, rc_set_many(c.rc), rc_set(c.rc), what="set"),
                    *batch_pair(CASHEWS, cashews_set_many(c), cashews_set(c), what="set"),
                    *batch_pair(AIOCACHE, aiocache_set_many(c), aiocache_set(c), what="set", note="multi_set"),
                ],
            ),
        ]
    return groups


def cluster_groups(c: ClusterClients, s: Settings) -> list[Group]:
    """The five core rows on the 3-master cluster: rediscache (``cluster=True``) against raw ``RedisCluster``.

    The same operations as the standalone rows of the same name, at the same concurrencies, so that
    each cluster ratio can be set against the single-server ratio of the same run (``targets.py``).
    Raw redis-py here is ``redis.asyncio.RedisCluster``: ``GET`` + ``unpackb``, ``packb`` + ``SET PX``,
    ``mget_nonatomic`` for the batch.
    """

    async def prepare() -> None:
        await populate_cluster(c)

    groups: list[Group] = []
    for conc in s.concurrency:
        groups += [
            Group(
                id=f"cluster/get_hit/c{conc}",
                topology="cluster",
                workload="get hit",
                concurrency=conc,
                units=s.units,
                prepare=prepare,
                description="read an existing 102-byte entry and decode it",
                subjects=[
                    Subject(RAW, raw_get_hit(c.raw)),
                    Subject(RC, rc_get_hit(c.rc)),
                ],
            ),
            Group(
                id=f"cluster/get_miss/c{conc}",
                topology="cluster",
                workload="get miss",
                concurrency=conc,
                units=s.units,
                description="read a key that does not exist",
                subjects=[
                    Subject(RAW, raw_get_miss(c.raw)),
                    Subject(RC, rc_get_miss(c.rc)),
                ],
            ),
            Group(
                id=f"cluster/set/c{conc}",
                topology="cluster",
                workload="set",
                concurrency=conc,
                units=s.units,
                description="overwrite an entry (no namespace, no tags), TTL 1 h",
                subjects=[
                    Subject(RAW, raw_set(c.raw)),
                    Subject(RC, rc_set(c.rc)),
                ],
            ),
            Group(
                id=f"cluster/set_tagged/c{conc}",
                topology="cluster",
                workload="set ns + 2 tags",
                concurrency=conc,
                units=s.units,
                description="overwrite an entry with a namespace and two tags (raw: plain SET PX), TTL 1 h",
                subjects=[
                    Subject(RAW, raw_set(c.raw)),
                    Subject(RC, rc_set_tagged(c.rc)),
                ],
            ),
        ]
    for conc in s.concurrency:
        groups.append(
            Group(
                id=f"cluster/get_many/c{conc}",
                topology="cluster",
                workload="get_many(100)",
                concurrency=conc,
                units=s.batch_units,
                unit="keys/s",
                prepare=prepare,
                description="100 hits in one call (raw: mget_nonatomic, one MGET per slot)",
                subjects=[
                    Subject(
                        RAW, raw_cluster_get_many(c.raw), row=GET_MANY_ROW, note="mget_nonatomic", units_per_call=BATCH
                    ),
                    Subject(RC, rc_get_many(c.rc), row=GET_MANY_ROW, units_per_call=BATCH),
                ],
            )
        )
    return groups


# --------------------------------------------------------------------------------------------------
# L1 hits: HOOK for the hybrid adapter. These rows exist only once ``rediscache.HybridCacheAdapter``
# is importable; until then this returns no group. Adjust ``_open_hybrid`` to its real constructor.
# --------------------------------------------------------------------------------------------------


def _open_hybrid(cls: type[Any], url: str) -> Any:
    return cls(url, key_prefix="bench-hy")


def l1_groups(c: StandaloneClients, url: str, s: Settings) -> tuple[list[Group], list[Callable[[], Awaitable[None]]]]:
    """Groups for L1 hits, and the closers of what they opened (both empty without the hybrid adapter)."""
    cls = hybrid_adapter_class()
    if cls is None:
        return [], []
    hybrid = _open_hybrid(cls, url)

    async def prepare() -> None:
        await populate_standalone(c)
        await hybrid.set_many([(CacheKey(key=f"item:{n}"), PAYLOAD) for n in range(KEYS)], ttl=TTL)
        for n in range(KEYS):  # fill the L1
            await hybrid.get(CacheKey(key=f"item:{n}"))

    async def close() -> None:
        await hybrid.close()

    groups = [
        Group(
            id=f"standalone/l1_hit/c{conc}",
            topology="standalone",
            workload="get hit (L1)",
            concurrency=conc,
            units=s.units,
            prepare=prepare,
            description="hybrid adapter: a get served by the in-process L1",
            subjects=[
                Subject(RAW, raw_get_hit(c.raw), note=BLOCKING),
                Subject(RC, rc_get_hit(c.rc)),
                Subject(HYBRID, rc_get_hit(hybrid)),
            ],
        )
        for conc in s.concurrency
    ]
    return groups, [close]
