"""@cached options: ttl as seconds or a function of the result, namespace and tags from the arguments,
key templates, condition, options=, Enum arguments, and a key_func that mypy checks against the function."""

from __future__ import annotations

import asyncio
import enum
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from rediscache import CacheAdapter, CacheKey, EntryOptions
from rediscache.kit import CacheService, cached


@pytest.fixture
def service(adapter: CacheAdapter) -> CacheService:
    return CacheService(adapter)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


async def lifetime(service: CacheService, key: CacheKey) -> float:
    entry = await service.get_entry(key)
    assert entry is not None and entry.expires_at is not None
    return (entry.expires_at - entry.created_at).total_seconds()


async def test_ttl_as_seconds(service: CacheService) -> None:
    @cached(service, ttl=60)
    async def load(x: int) -> int:
        return x

    await load(1)

    assert await lifetime(service, load.cache_key(1)) == pytest.approx(60, abs=0.01)


async def test_ttl_as_a_function_of_the_result(service: CacheService) -> None:
    @cached(service, ttl=lambda result: timedelta(seconds=result["max_age"]))
    async def load(x: int) -> dict[str, int]:
        return {"max_age": x}

    await load(30)
    await load(90)

    assert await lifetime(service, load.cache_key(30)) == pytest.approx(30, abs=0.01)
    assert await lifetime(service, load.cache_key(90)) == pytest.approx(90, abs=0.01)


async def test_tags_and_namespace_from_the_arguments(service: CacheService) -> None:
    calls: list[int] = []

    @cached(
        service, namespace=lambda tenant, user_id: f"tenant:{tenant}", tags=lambda tenant, user_id: [f"u:{user_id}"]
    )
    async def load(tenant: str, user_id: int) -> int:
        calls.append(user_id)
        return user_id

    await load("acme", 1)
    await load("acme", 2)
    key = load.cache_key("acme", 1)

    assert (key.namespace, key.tags) == ("tenant:acme", ["u:1"])
    assert await service.invalidate_tags(["u:1"]) == 1
    await load("acme", 1)
    await load("acme", 2)
    assert calls == [1, 2, 1]


async def test_a_key_template_is_formatted_with_the_bound_arguments(service: CacheService) -> None:
    @cached(service, key="user:{user_id}:{lang}", namespace="users")
    async def load(user_id: int, lang: str = "en") -> str:
        return f"{user_id}-{lang}"

    await load(42)

    assert load.cache_key(42) == CacheKey(key="user:42:en", namespace="users")
    assert await service.get("user:42:en", namespace="users") == "42-en"


def test_a_key_template_naming_no_parameter_fails_at_decoration(service: CacheService) -> None:
    with pytest.raises(ValueError, match="user"):

        @cached(service, key="user:{user}")
        async def load(user_id: int) -> int:
            return user_id


async def test_condition_false_returns_but_does_not_store(service: CacheService) -> None:
    calls: list[int] = []

    @cached(service, condition=lambda result: result is not None and result > 0)
    async def load(x: int) -> int | None:
        calls.append(x)
        return x

    for _ in range(2):
        assert await load(-1) == -1
        assert await load(1) == 1

    assert calls == [-1, 1, -1]


async def test_options_apply_to_the_decorated_function(service: CacheService) -> None:
    calls: list[int] = []

    @cached(service, options=EntryOptions(cache_none=False))
    async def load(x: int) -> None:
        calls.append(x)

    await load(1)
    await load(1)

    assert calls == [1, 1]


async def test_fail_safe_through_the_decorator(service: CacheService) -> None:
    down = False

    @cached(service, ttl=timedelta(milliseconds=100), options=EntryOptions(fail_safe=True))
    async def load(x: int) -> int:
        if down:
            raise ConnectionError("database is down")
        return x

    assert await load(7) == 7
    await asyncio.sleep(0.2)
    down = True

    assert await load(7) == 7


async def test_an_enum_argument_makes_a_stable_key(service: CacheService) -> None:
    calls: list[Color] = []

    @cached(service)
    async def load(c: Color) -> str:
        calls.append(c)
        return c.value

    assert [await load(Color.RED), await load(Color.RED), await load(Color.BLUE)] == ["red", "red", "blue"]
    assert calls == [Color.RED, Color.BLUE]


async def test_a_key_func_gets_the_arguments(service: CacheService) -> None:
    @cached(service, key_func=lambda tenant, user_id: f"{tenant}/{user_id}", namespace="users")
    async def load(tenant: str, user_id: int) -> int:
        return user_id

    await load("acme", 3)

    assert await service.get("acme/3", namespace="users") == 3


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"ttl": "60"}, TypeError),
        ({"ttl": 0}, ValueError),
        ({"tags": "a"}, ValueError),
        ({"key": "k", "key_func": lambda: "k"}, ValueError),
        ({"condition": True}, TypeError),
        ({"options": {"fail_safe": True}}, TypeError),
    ],
)
def test_bad_decorator_settings_fail_at_decoration(
    service: CacheService, arguments: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        cached(service, **arguments)


TYPED_KEY_FUNC = """
from rediscache import CacheKey, MemoryCacheAdapter
from rediscache.kit import CacheService, cached

service = CacheService(MemoryCacheAdapter())


def by_user(user_id: int) -> str:
    return f"user:{user_id}"


def two_arguments(user_id: int, extra: str) -> str:
    return "x"


def by_name(name: str) -> str:
    return name


@cached(service, key_func=by_user)
async def fits(user_id: int) -> str:
    return "ok"


@cached(service, key_func=two_arguments)  # E1
async def wrong_arity(user_id: int) -> str:
    return "ok"


@cached(service, key_func=by_name)  # E2
async def wrong_type(user_id: int) -> str:
    return "ok"


@cached(service, ttl=lambda result: 5, key="user:{user_id}")
async def templated(user_id: int) -> str:
    return "ok"


async def main() -> None:
    await fits(1)
    await fits("one")  # E3
    await templated(2)
    await templated(2, 3)  # E4
"""


def test_mypy_rejects_a_key_func_that_does_not_fit_and_a_wrongly_typed_call(tmp_path: Path) -> None:
    # mypy is in the `dev` extra (which `make test` installs), not in `test`: without it this test skips.
    mypy_api = pytest.importorskip("mypy.api", reason="mypy is not installed (it is in the `dev` extra)")
    source = tmp_path / "typed_key_func.py"
    source.write_text(TYPED_KEY_FUNC)

    stdout, _, _ = mypy_api.run(["--strict", "--no-error-summary", "--cache-dir", str(tmp_path / "cache"), str(source)])

    lines = [line for line in stdout.splitlines() if ": error:" in line]
    source_lines = source.read_text().splitlines()
    flagged = {source_lines[int(line.split(":")[1]) - 1].split("# ")[-1] for line in lines}
    assert flagged == {"E1", "E2", "E3", "E4"}, stdout
