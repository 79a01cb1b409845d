"""Keys: validation and any character end to end. Values: exact round trip of the codec's types."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from rediscache._models import CacheKey
from rediscache._port import CacheAdapter

from ._support import add, assert_same_value, glob_escape

# ---------------------------------------------------------------------------------------------
# Key validation (construction time, no adapter involved)


@pytest.mark.parametrize("bad", ["", 1, None, b"key", ["k"]], ids=["empty", "int", "none", "bytes", "list"])
def test_key_must_be_a_non_empty_str(bad: Any) -> None:
    with pytest.raises(ValueError):
        CacheKey(key=bad)


@pytest.mark.parametrize("bad", ["", 1, b"ns", ["ns"]], ids=["empty", "int", "bytes", "list"])
def test_namespace_must_be_none_or_a_non_empty_str(bad: Any) -> None:
    with pytest.raises(ValueError):
        CacheKey(key="k", namespace=bad)


@pytest.mark.parametrize("bad", [[""], [1], [None], [b"t"], ["ok", ""]], ids=["empty", "int", "none", "bytes", "mixed"])
def test_tags_must_be_non_empty_strs(bad: Any) -> None:
    with pytest.raises(ValueError):
        CacheKey(key="k", tags=bad)


def test_tags_given_as_one_string_are_rejected() -> None:
    with pytest.raises(ValueError):
        CacheKey(key="k", tags="tag")  # type: ignore[arg-type]


def test_full_key_without_namespace_is_the_key() -> None:
    assert CacheKey(key="user:123").full_key == "user:123"


def test_full_key_with_namespace_is_namespace_colon_key() -> None:
    assert CacheKey(key="profile", namespace="user:123", tags=["user", "profile"]).full_key == "user:123:profile"


# ---------------------------------------------------------------------------------------------
# Any character, end to end

ODD = [
    pytest.param("a:b", id="colon"),
    pytest.param("{curly}", id="braces"),
    pytest.param("}{", id="reversed_braces"),
    pytest.param("{", id="open_brace"),
    pytest.param("a*b?c[d]", id="glob_chars"),
    pytest.param("*", id="star"),
    pytest.param("back\\slash", id="backslash"),
    pytest.param("with space", id="space"),
    pytest.param(" ", id="only_space"),
    pytest.param("new\nline", id="newline"),
    pytest.param("tab\tcr\r", id="tab_cr"),
    pytest.param("nul\x00byte", id="nul"),
    pytest.param("emoji 😀", id="emoji"),
    pytest.param("ünïcödé 中文", id="unicode"),
    pytest.param("quote'\"", id="quotes"),
    pytest.param("%s %d", id="format"),
    pytest.param("x" * 2000, id="long"),
]


@pytest.mark.parametrize("odd", ODD)
async def test_any_character_in_key_works_for_set_get_delete(adapter: CacheAdapter, odd: str) -> None:
    key = CacheKey(key=odd)
    await adapter.set(key, odd)

    entry = await adapter.get(key)

    assert entry is not None
    assert entry.value == odd
    assert entry.key.full_key == odd
    assert await adapter.delete(key) is True
    assert await adapter.exists(key) is False


@pytest.mark.parametrize("odd", ODD)
async def test_any_character_in_namespace_works_for_get_and_delete_by_namespace(
    adapter: CacheAdapter, odd: str
) -> None:
    key = CacheKey(key="k", namespace=odd)
    await add(adapter, key, CacheKey(key="k", namespace="plain"))

    entry = await adapter.get(key)
    assert entry is not None
    assert entry.key.namespace == odd
    assert await adapter.delete_by_namespace(odd) == 1
    assert await adapter.exists(key) is False
    assert await adapter.exists(CacheKey(key="k", namespace="plain"))


@pytest.mark.parametrize("odd", ODD)
async def test_any_character_in_tag_works_for_delete_by_tags(adapter: CacheAdapter, odd: str) -> None:
    await add(adapter, CacheKey(key="tagged", tags=[odd]), CacheKey(key="other", tags=["plain"]))

    entry = await adapter.get(CacheKey(key="tagged"))
    assert entry is not None
    assert entry.key.tags == [odd]
    assert await adapter.delete_by_tags([odd]) == 1
    assert await adapter.exists(CacheKey(key="tagged")) is False
    assert await adapter.exists(CacheKey(key="other"))


@pytest.mark.parametrize("odd", ODD)
async def test_any_character_in_key_namespace_and_tag_together(adapter: CacheAdapter, odd: str) -> None:
    key = CacheKey(key=odd, namespace=odd, tags=[odd])
    await adapter.set(key, "v")

    assert await adapter.delete_by_pattern(glob_escape(f"{odd}:{odd}")) == 1
    await adapter.set(key, "v")
    assert await adapter.delete_by_tags([odd]) == 1
    await adapter.set(key, "v")
    assert await adapter.delete_by_namespace(odd) == 1
    assert (await adapter.get_stats()).total_entries == 0


async def test_keys_differing_only_in_odd_characters_are_distinct_entries(adapter: CacheAdapter) -> None:
    names = ["a", "{a}", "{a", "a}", "a ", " a", "a\n", "a\\", "a*", "a?", "[a]", "ä", "a\x00"]
    for index, name in enumerate(names):
        await adapter.set(CacheKey(key=name), index)

    values = []
    for name in names:
        entry = await adapter.get(CacheKey(key=name))
        assert entry is not None, name
        values.append(entry.value)

    assert values == list(range(len(names)))
    assert (await adapter.get_stats()).total_entries == len(names)


async def test_namespaces_differing_only_in_braces_are_distinct(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="x", namespace="{a}"), CacheKey(key="x", namespace="a"))

    assert await adapter.delete_by_namespace("{a}") == 1
    assert await adapter.exists(CacheKey(key="x", namespace="a"))


async def test_tags_differing_only_in_braces_are_distinct(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="x", tags=["{t}"]), CacheKey(key="y", tags=["t"]))

    assert await adapter.delete_by_tags(["{t}"]) == 1
    assert await adapter.exists(CacheKey(key="y"))


# ---------------------------------------------------------------------------------------------
# Values: anything the default codec round-trips comes back with the same type and value


VALUES = [
    pytest.param(None, id="none"),
    pytest.param(True, id="true"),
    pytest.param(False, id="false"),
    pytest.param(0, id="zero"),
    pytest.param(-17, id="negative_int"),
    pytest.param(2**100, id="big_int"),
    pytest.param(-(2**70), id="big_negative_int"),
    pytest.param(3.25, id="float"),
    pytest.param(float("inf"), id="infinity"),
    pytest.param("", id="empty_str"),
    pytest.param("héllo 😀", id="str"),
    pytest.param(b"", id="empty_bytes"),
    pytest.param(b"\x00\xff\x80binary", id="bytes"),
    pytest.param([], id="empty_list"),
    pytest.param([1, "two", 3.0, None], id="list"),
    pytest.param((), id="empty_tuple"),
    pytest.param((1, "two", (3, 4)), id="nested_tuple"),
    pytest.param([(1, 2), [3, (4,)]], id="tuples_in_list"),
    pytest.param({}, id="empty_dict"),
    pytest.param({"name": "Alice", "roles": ["admin"], "meta": {"age": 30}}, id="dict"),
    pytest.param({1: "one", (2, 3): "pair", "s": b"x"}, id="dict_non_str_keys"),
    pytest.param({1, 2, 3}, id="set"),
    pytest.param(frozenset({"a", "b"}), id="frozenset"),
    pytest.param(datetime(2024, 1, 15, 12, 30, 45, 123456, tzinfo=timezone.utc), id="aware_datetime"),
    pytest.param(
        datetime(2024, 1, 15, 12, 30, 45, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        id="offset_datetime",
    ),
    pytest.param(datetime(2024, 1, 15, 12, 30, 45, 999999), id="naive_datetime"),
    pytest.param(date(2024, 2, 29), id="date"),
    pytest.param(time(23, 59, 59, 500000), id="time"),
    pytest.param(timedelta(days=2, seconds=3, microseconds=4), id="timedelta"),
    pytest.param(Decimal("1.10"), id="decimal"),
    pytest.param(Decimal("-123456789012345678901234567890.000001"), id="long_decimal"),
    pytest.param(uuid.UUID("12345678-1234-5678-1234-567812345678"), id="uuid"),
    pytest.param(
        {
            "when": datetime(2024, 1, 15, tzinfo=timezone.utc),
            "ids": (uuid.UUID(int=1), uuid.UUID(int=2)),
            "price": Decimal("9.99"),
            "days": {date(2024, 1, 1), date(2024, 1, 2)},
        },
        id="mixed_nested",
    ),
]


@pytest.mark.parametrize("value", VALUES)
async def test_value_comes_back_with_the_same_type_and_value(adapter: CacheAdapter, value: Any) -> None:
    await adapter.set(CacheKey(key="k"), value)

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None
    assert_same_value(value, entry.value)


@pytest.mark.parametrize("value", VALUES)
async def test_value_comes_back_the_same_on_every_read(adapter: CacheAdapter, value: Any) -> None:
    await adapter.set(CacheKey(key="k"), value)
    await adapter.get(CacheKey(key="k"))

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None
    assert_same_value(value, entry.value)


async def test_large_value_round_trips(adapter: CacheAdapter) -> None:
    value = bytes(range(256)) * 4096  # 1 MiB
    await adapter.set(CacheKey(key="k"), value)

    entry = await adapter.get(CacheKey(key="k"))

    assert entry is not None
    assert entry.value == value


async def test_falsy_values_are_hits(adapter: CacheAdapter) -> None:
    falsy: list[Any] = [None, False, 0, 0.0, "", b"", [], (), {}, set()]
    for index, value in enumerate(falsy):
        await adapter.set(CacheKey(key=f"k{index}"), value)

    for index, value in enumerate(falsy):
        entry = await adapter.get(CacheKey(key=f"k{index}"))
        assert entry is not None, value
        assert_same_value(value, entry.value)
    assert (await adapter.get_stats()).total_hits == len(falsy)
