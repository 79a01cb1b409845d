"""@cached: results of async functions and methods cached per call, self/cls left out of the key, per-call
invalidation, key_func, and a signature mypy keeps."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from rediscache import CacheAdapter, CacheKey, MemoryCacheAdapter
from rediscache.kit import CacheService, cached


@pytest.fixture
def service(adapter: CacheAdapter) -> CacheService:
    return CacheService(adapter)


async def test_a_function_runs_once_per_distinct_call(service: CacheService) -> None:
    calls: list[tuple[int, int]] = []

    @cached(service)
    async def add(a: int, b: int = 0) -> int:
        calls.append((a, b))
        return a + b

    assert [await add(1, 2), await add(1, b=2), await add(a=1, b=2), await add(2)] == [3, 3, 3, 2]

    assert calls == [(1, 2), (2, 0)]


async def test_the_key_names_the_function_and_a_digest_of_its_arguments(service: CacheService) -> None:
    @cached(service, namespace="math", tags=["sums"])
    async def add(a: int, b: int) -> int:
        return a + b

    await add(1, 2)

    assert add.cache_key(1, 2) == CacheKey.from_function_call(add.__wrapped__, (1, 2), {}, "math", ["sums"])
    assert await service.exists(add.cache_key(1, 2))


async def test_invalidate_drops_exactly_one_calls_entry(service: CacheService) -> None:
    calls = 0

    @cached(service)
    async def square(x: int) -> int:
        nonlocal calls
        calls += 1
        return x * x

    await square(2)
    await square(3)

    assert await square.invalidate(2) is True
    await square(2)
    await square(3)
    assert calls == 3


async def test_ttl_namespace_and_tags_apply_to_the_entries(service: CacheService) -> None:
    @cached(service, ttl=timedelta(minutes=1), namespace="reports", tags=["report"])
    async def report(n: int) -> str:
        return f"report {n}"

    await report(1)
    await report(2)

    entry = await service.get_entry(report.cache_key(1))
    assert entry is not None and entry.expires_at is not None and entry.key.namespace == "reports"
    assert await service.invalidate_tags(["report"]) == 2


async def test_the_services_default_namespace_applies(adapter: CacheAdapter) -> None:
    service = CacheService(adapter, default_namespace="app")

    @cached(service)
    async def f() -> int:
        return 1

    assert f.cache_key().namespace == "app"


async def test_a_cached_none_result_is_not_recomputed(service: CacheService) -> None:
    calls = 0

    @cached(service)
    async def nothing() -> None:
        nonlocal calls
        calls += 1

    await nothing()
    await nothing()

    assert calls == 1


async def test_concurrent_calls_share_one_execution(service: CacheService) -> None:
    calls = 0

    @cached(service)
    async def slow(x: int) -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return x

    assert await asyncio.gather(*(slow(7) for _ in range(20))) == [7] * 20
    assert calls == 1


class Repository:
    def __init__(self, name: str) -> None:
        self.name = name
        self.loads = 0

    @cached(CacheService(MemoryCacheAdapter()))
    async def load(self, item_id: int) -> str:
        self.loads += 1
        return f"item {item_id}"


async def test_self_is_left_out_of_a_methods_key() -> None:
    first, second = Repository("a"), Repository("b")  # no stable encoding: they could not be in a key

    assert await first.load(1) == "item 1"
    assert await second.load(1) == "item 1"

    assert (first.loads, second.loads) == (1, 0)
    assert first.load.cache_key(1) == second.load.cache_key(1)
    assert first.load.cache_key(1).key.startswith(f"{__name__}.Repository.load:")


async def test_a_method_called_through_its_class_shares_the_entries() -> None:
    repo = Repository("a")
    await repo.load(5)

    assert await Repository.load(repo, 5) == "item 5"
    assert repo.loads == 1


async def test_invalidate_on_a_bound_method_leaves_self_out_too() -> None:
    repo = Repository("a")
    await repo.load(9)

    assert await Repository("b").load.invalidate(9) is True
    await repo.load(9)
    assert repo.loads == 2


class Catalog:
    service = CacheService(MemoryCacheAdapter())
    loads = 0

    @cached(service)
    @classmethod
    async def above(cls, n: int) -> int:
        cls.loads += 1
        return n

    @classmethod
    @cached(service)
    async def below(cls, n: int) -> int:
        cls.loads += 1
        return -n


@pytest.mark.parametrize("method", ["above", "below"])
async def test_cls_is_left_out_of_a_class_methods_key_in_either_decorator_order(method: str) -> None:
    class Sub(Catalog):
        loads = 0

    assert await getattr(Sub, method)(3) == await getattr(Sub(), method)(3)
    assert await getattr(Catalog, method)(3) == await getattr(Sub, method)(3)

    assert Sub.loads == 1 and Catalog.loads == 0


async def test_key_func_gives_the_key_and_sees_the_arguments_self_included(service: CacheService) -> None:
    seen: list[tuple[Any, ...]] = []

    def user_key(users: Users, uid: int) -> str:
        seen.append((users, uid))
        return f"{users.tenant}:{uid}"

    class Users:
        tenant = "acme"

        @cached(service, namespace="users", tags=["user"], key_func=user_key)
        async def get(self, uid: int) -> str:
            return f"user {uid}"

    users = Users()
    await users.get(7)

    assert seen == [(users, 7)]
    entry = await service.get_entry("acme:7", namespace="users")
    assert entry is not None and entry.value == "user 7" and entry.key.tags == ["user"]


async def test_key_func_may_return_a_whole_cache_key(service: CacheService) -> None:
    @cached(service, namespace="ignored", key_func=lambda x: CacheKey(key=f"x={x}", namespace="own"))
    async def f(x: int) -> int:
        return x

    await f(1)

    assert await service.get("x=1", namespace="own") == 1


async def test_key_func_makes_arguments_without_a_stable_encoding_cacheable(service: CacheService) -> None:
    class Query:
        def __init__(self, text: str) -> None:
            self.text = text

    @cached(service, key_func=lambda q: q.text)
    async def run(q: Query) -> str:
        return q.text.upper()

    @cached(service)
    async def run_without_key_func(q: Query) -> str:
        return q.text

    assert await run(Query("abc")) == "ABC"
    with pytest.raises(TypeError, match="pass key_func"):
        await run_without_key_func(Query("abc"))


def test_only_async_functions_can_be_decorated() -> None:
    def sync(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="async"):
        cached(CacheService(MemoryCacheAdapter()))(sync)  # type: ignore[arg-type]


def test_the_decorated_function_keeps_its_name_and_docs() -> None:
    @cached(CacheService(MemoryCacheAdapter()))
    async def documented() -> int:
        """Docs."""
        return 1

    assert (documented.__name__, documented.__doc__) == ("documented", "Docs.")


def test_settings_are_checked_when_decorating() -> None:
    service = CacheService(MemoryCacheAdapter())
    with pytest.raises(ValueError):
        cached(service, ttl=timedelta(0))
    with pytest.raises(ValueError):
        cached(service, tags="one")
    with pytest.raises(TypeError):
        cached(MemoryCacheAdapter())  # type: ignore[arg-type]


TYPED_USE = """
from rediscache import MemoryCacheAdapter
from rediscache.kit import CacheService, cached

service = CacheService(MemoryCacheAdapter())

@cached(service)
async def load(user_id: int, verbose: bool = False) -> dict[str, int]:
    return {"id": user_id}

class Repo:
    @cached(service)
    async def get(self, item_id: int) -> str:
        return ""

    @cached(service)
    @classmethod
    async def make(cls, n: int) -> list[int]:
        return [n]

async def main() -> None:
    reveal_type(await load(1, verbose=True))
    reveal_type(await Repo().get(1))
    reveal_type(await Repo.make(2))
    reveal_type(await load.invalidate(1))
    await load("1")  # E1
    await Repo().get(item_id="x")  # E2
    await Repo.make()  # E3
    await Repo().get.invalidate(1, 2)  # E4
"""


# mypy is in the `dev` extra (which `make test` installs), not in `test`: without it this test skips.
# The repository's own mypy cache (`make typecheck` fills it) saves re-checking the package.
MYPY_CACHE = Path(__file__).resolve().parents[2] / ".mypy_cache"


def test_mypy_keeps_the_wrapped_signatures(tmp_path: Path) -> None:
    mypy_api = pytest.importorskip("mypy.api", reason="mypy is not installed (it is in the `dev` extra)")
    source = tmp_path / "typed_use.py"
    source.write_text(TYPED_USE)

    stdout, _, _ = mypy_api.run(["--strict", "--no-error-summary", "--cache-dir", str(MYPY_CACHE), str(source)])

    lines = stdout.splitlines()
    revealed = [line.split("Revealed type is ")[1] for line in lines if "Revealed type" in line]
    assert revealed == ['"dict[str, int]"', '"str"', '"list[int]"', '"bool"'], stdout
    source_lines = source.read_text().splitlines()
    flagged = {source_lines[int(line.split(":")[1]) - 1].split("# ")[-1] for line in lines if ": error:" in line}
    assert flagged == {"E1", "E2", "E3", "E4"}, stdout
