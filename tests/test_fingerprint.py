"""Call digests: one key per call whatever its spelling, distinct keys for distinct calls, stable across processes."""

from __future__ import annotations

import enum
import math
import os
import re
import subprocess
import sys
import threading
import warnings
from collections import OrderedDict
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel

import rediscache
from rediscache._fingerprint import call_digest
from rediscache._models import CacheKey

HEX16 = re.compile(r"[0-9a-f]{16}")


def pair(a: Any, b: Any = 2) -> None:
    pass


def one(x: Any) -> None:
    pass


def flexible(a: Any, *args: Any, b: Any = "default", **kwargs: Any) -> None:
    pass


def digest_of(func: Any, *args: Any, **kwargs: Any) -> str:
    return call_digest(func, args, kwargs)


def d(value: Any) -> str:
    return digest_of(one, value)


class Item(BaseModel):
    name: str
    tags: set[str] = set()


class OtherItem(BaseModel):
    name: str
    tags: set[str] = set()


class Mode(enum.IntEnum):
    FAST = 1


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Shade(enum.Enum):
    RED = "red"


class Connection:
    pass


# -- binding ------------------------------------------------------------------------------------------


def test_digest_is_16_lowercase_hex() -> None:
    assert HEX16.fullmatch(digest_of(pair, 1, 2))


def test_one_call_spelled_three_ways_gives_one_digest() -> None:
    spellings = {digest_of(pair, 1, 2), digest_of(pair, 1, b=2), digest_of(pair, a=1, b=2), digest_of(pair, 1)}
    assert len(spellings) == 1


def test_defaults_are_applied() -> None:
    assert digest_of(flexible, 1) == digest_of(flexible, 1, b="default") == digest_of(flexible, a=1)
    assert digest_of(flexible, 1) != digest_of(flexible, 1, b="other")


def test_var_positional_and_var_keyword() -> None:
    assert digest_of(flexible, 1, 2, 3) != digest_of(flexible, 1, 3, 2)
    assert digest_of(flexible, 1, 2, 3) != digest_of(flexible, 1, (2, 3))
    assert digest_of(flexible, 1, x=1, y=2) == digest_of(flexible, 1, y=2, x=1)
    assert digest_of(flexible, 1, x=1) != digest_of(flexible, 1, x=2)
    assert digest_of(flexible, 1, x=1) != digest_of(flexible, 1, y=1)
    # A keyword that lands in **kwargs is not the same call as a positional that lands in *args.
    assert digest_of(flexible, 1, 2) != digest_of(flexible, 1, x=2)


def test_wrong_arguments_raise_the_bind_type_error() -> None:
    with pytest.raises(TypeError, match="missing a required argument"):
        digest_of(pair)
    with pytest.raises(TypeError):
        digest_of(pair, 1, 2, 3)
    with pytest.raises(TypeError):
        digest_of(pair, 1, c=3)


def test_bound_methods_leave_self_out() -> None:
    class Service:
        def __init__(self, name: str) -> None:
            self.name = name

        def fetch(self, user_id: int, full: bool = False) -> None:
            pass

    a, b = Service("a"), Service("b")
    assert digest_of(a.fetch, 1) == digest_of(b.fetch, user_id=1, full=False)
    assert digest_of(a.fetch, 1) != digest_of(a.fetch, 2)


# -- values -------------------------------------------------------------------------------------------


def test_different_values_give_different_digests() -> None:
    assert digest_of(pair, 1, 2) != digest_of(pair, 2, 1)
    assert digest_of(pair, 1, 2) != digest_of(pair, 1, 3)
    assert d("a") != d("b")


def test_int_float_bool_and_friends_differ() -> None:
    values = [1, 1.0, True, "1", b"1", Decimal(1), [1], (1,), {1}, frozenset({1}), {1: None}, None, 0, False, 0.0]
    digests = [d(v) for v in values]
    assert len(set(digests)) == len(values)


def test_container_boundaries_are_unambiguous() -> None:
    assert d(["ab", "c"]) != d(["a", "bc"])
    assert d([[1], 2]) != d([1, [2]])
    assert d({"a": "bc"}) != d({"ab": "c"})
    assert d(("a", ("b",))) != d((("a",), "b"))
    assert digest_of(pair, "ab", "c") != digest_of(pair, "a", "bc")


def test_dict_and_set_order_do_not_matter() -> None:
    keys = [f"key{i}" for i in range(50)]
    forward = {k: i for i, k in enumerate(keys)}
    backward = {k: forward[k] for k in reversed(keys)}
    assert list(forward) != list(backward)
    assert d(forward) == d(backward)
    assert d(set(keys)) == d(set(reversed(keys)))
    assert d(frozenset(keys)) == d(frozenset(reversed(keys)))
    assert d({1: {"b", "a"}, (1, 2): [{"y": 1, "x": 2}]}) == d({(1, 2): [{"x": 2, "y": 1}], 1: {"a", "b"}})


def test_equal_values_give_equal_digests() -> None:
    assert d(float("nan")) == d(-math.nan)
    assert d(10**100) == d(int("1" + "0" * 100))
    assert d(datetime(2020, 1, 1, tzinfo=ZoneInfo("Europe/Paris"))) == d(
        datetime(2020, 1, 1, tzinfo=ZoneInfo("Europe/Paris"))
    )
    assert d(Item(name="a", tags={"x", "y"})) == d(Item(name="a", tags={"y", "x"}))


def test_distinct_temporal_values_differ() -> None:
    values = [
        datetime(2020, 1, 1),
        datetime(2020, 1, 1, fold=1),
        datetime(2020, 1, 1, tzinfo=timezone.utc),
        datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=1))),
        datetime(2020, 1, 1, tzinfo=ZoneInfo("Europe/Paris")),
        datetime(2020, 1, 1, 0, 0, 0, 1),
        date(2020, 1, 1),
        time(0, 0),
        time(0, 0, tzinfo=timezone.utc),
        timedelta(0),
        timedelta(days=1),
        timedelta(seconds=86_400 - 1),
    ]
    assert len({d(v) for v in values}) == len(values)


def test_other_supported_types() -> None:
    values = [
        UUID(int=1),
        UUID(int=2),
        Decimal("1.0"),
        Decimal("1.00"),
        Decimal("NaN"),
        Decimal("-0"),
        b"",
        "",
        2**64,
        -(2**64),
        -0.0,
        math.inf,
        Item(name="a"),
        Item(name="b"),
        OtherItem(name="a"),  # same fields, another class: another call
    ]
    assert len({d(v) for v in values}) == len(values)


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (Connection(), "Connection"),
        (object(), "object"),
        (lambda: 1, "function"),
        (OrderedDict(a=1), "OrderedDict"),
        (bytearray(b"x"), "bytearray"),
        (threading.Lock(), "lock"),
    ],
)
def test_unsupported_argument_raises_type_error_naming_it(value: Any, type_name: str) -> None:
    def query(sql: str, conn: Any) -> None:
        pass

    with pytest.raises(TypeError) as info:
        digest_of(query, "select 1", conn=value)
    message = str(info.value)
    assert "'conn'" in message
    assert type_name in message
    assert "key_func" in message


def test_nested_unsupported_value_names_argument_type_and_path() -> None:
    with pytest.raises(TypeError, match=r"argument 'x' holds a value of type 'Connection' \(at \['db'\]\[1\]\)"):
        d({"db": [1, Connection()]})
    with pytest.raises(TypeError, match=r"'x'.*'Connection'"):
        d({Connection()})
    with pytest.raises(TypeError, match=r"'x'.*'Connection'"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic warns that name is not a str: that is the point
        d(Item.model_construct(name=Connection()))


def test_self_referential_argument_is_a_type_error() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(TypeError, match="'x'"):
        d(cyclic)


def test_pinned_digest() -> None:
    # The encoding is a stored format: changing it silently re-keys every cached call. Update on purpose only.
    value = {"ids": {3, 1, 2}, "when": datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc), "n": (1, 1.5, None)}
    assert d(value) == "92af9048d272c338"


# -- across processes ---------------------------------------------------------------------------------

_CHILD = """
import sys
from rediscache._fingerprint import call_digest

def lookup(words, mapping, *, flags=frozenset({"x", "yy", "zzz"})):
    pass

words = set("alpha beta gamma delta epsilon zeta eta theta".split())
mapping = {w: [w.upper(), {w[:2], w[-2:]}] for w in sorted(words, reverse=True)}
print(call_digest(lookup, (words,), {"mapping": mapping}))
"""


def test_digest_is_stable_across_processes_and_hash_seeds() -> None:
    root = str(Path(rediscache.__file__).resolve().parents[1])
    digests = set()
    for seed in ("1", "2", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": root}
        result = subprocess.run(
            [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True, timeout=60
        )
        digests.add(result.stdout.strip())

    namespace: dict[str, Any] = {}
    exec(_CHILD.replace("print(", "RESULT = ("), namespace)
    digests.add(namespace["RESULT"])
    assert len(digests) == 1
    assert HEX16.fullmatch(digests.pop())


# -- CacheKey.from_function_call ----------------------------------------------------------------------


def test_from_function_call_key_format() -> None:
    key = CacheKey.from_function_call(pair, (1,), {"b": 2})
    assert re.fullmatch(rf"{re.escape(__name__)}\.pair:[0-9a-f]{{16}}", key.key)
    assert key.key == f"{pair.__module__}.{pair.__qualname__}:{digest_of(pair, 1, 2)}"
    assert key.full_key == key.key
    assert key.namespace is None
    assert key.tags == []


def test_from_function_call_namespace_and_tags() -> None:
    key = CacheKey.from_function_call(pair, (1, 2), {}, namespace="ns", tags=["t1", "t2"])
    digest = digest_of(pair, 1, 2)
    assert key.namespace == "ns"
    assert key.tags == ["t1", "t2"]
    assert key.full_key == f"ns:{__name__}.pair:{digest}"
    assert CacheKey.from_function_call(pair, (), {"a": 1, "b": 2}, namespace="ns").full_key == key.full_key


def test_from_function_call_uses_the_qualname_of_nested_functions() -> None:
    def inner(v: int) -> None:
        pass

    key = CacheKey.from_function_call(inner, (1,), {})
    assert key.key.startswith(f"{__name__}.{inner.__qualname__}:")
    assert "<locals>" in key.key


def test_from_function_call_with_unsupported_argument_raises_type_error() -> None:
    with pytest.raises(TypeError, match="'x'"):
        CacheKey.from_function_call(one, (Connection(),), {})


# -- enums ------------------------------------------------------------------------------------------


def test_enum_member_has_a_stable_digest() -> None:
    assert d(Color.RED) == d(Color("red"))
    assert HEX16.fullmatch(d(Color.RED))


def test_enum_members_of_one_class_differ() -> None:
    assert d(Color.RED) != d(Color.BLUE)


def test_enum_member_differs_from_its_value_and_from_another_class_with_that_value() -> None:
    assert d(Color.RED) != d("red")
    assert d(Color.RED) != d(Shade.RED)


def test_int_enum_member_differs_from_the_plain_int() -> None:
    assert d(Mode.FAST) != d(1)


def test_enum_inside_containers_is_encoded() -> None:
    assert d({"c": [Color.RED]}) == d({"c": [Color.RED]})
    assert d({"c": [Color.RED]}) != d({"c": [Color.BLUE]})
