"""Values a serializing backend cannot encode: ``SerializationError`` naming the type, nothing written.

Generated only for backends registered with ``serializes=True`` (an in-process adapter stores any
object as it is). With no such backend registered, these tests are deselected, not skipped.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from rediscache._exceptions import CacheError, SerializationError
from rediscache._models import CacheKey
from rediscache._port import CacheAdapter


class Unencodable:
    """A class no codec knows."""


class UnregisteredModel(BaseModel):
    name: str = "x"


UNSUPPORTED = [
    pytest.param(Unencodable(), "Unencodable", id="plain_object"),
    pytest.param({"nested": [1, Unencodable()]}, "Unencodable", id="nested_object"),
    pytest.param(UnregisteredModel(), "UnregisteredModel", id="unregistered_model"),
    pytest.param(lambda: None, "function", id="function"),
]


@pytest.mark.parametrize(("value", "type_name"), UNSUPPORTED)
async def test_unsupported_value_raises_serialization_error(
    serializing_adapter: CacheAdapter, value: Any, type_name: str
) -> None:
    with pytest.raises(SerializationError):
        await serializing_adapter.set(CacheKey(key="k"), value)


@pytest.mark.parametrize(("value", "type_name"), UNSUPPORTED)
async def test_serialization_error_names_the_type(
    serializing_adapter: CacheAdapter, value: Any, type_name: str
) -> None:
    with pytest.raises(SerializationError) as info:
        await serializing_adapter.set(CacheKey(key="k"), value)

    assert type_name in str(info.value)


async def test_serialization_error_is_a_type_error_and_a_cache_error(
    serializing_adapter: CacheAdapter,
) -> None:
    with pytest.raises(TypeError) as info:
        await serializing_adapter.set(CacheKey(key="k"), Unencodable())

    assert isinstance(info.value, CacheError)


@pytest.mark.parametrize(("value", "type_name"), UNSUPPORTED)
async def test_unsupported_value_writes_nothing(serializing_adapter: CacheAdapter, value: Any, type_name: str) -> None:
    with pytest.raises(SerializationError):
        await serializing_adapter.set(CacheKey(key="k", namespace="ns", tags=["t"]), value)

    assert await serializing_adapter.exists(CacheKey(key="k", namespace="ns")) is False
    assert (await serializing_adapter.get_stats()).total_entries == 0
    assert await serializing_adapter.delete_by_tags(["t"]) == 0


async def test_unsupported_value_leaves_the_existing_entry_untouched(
    serializing_adapter: CacheAdapter,
) -> None:
    await serializing_adapter.set(CacheKey(key="k", tags=["old"]), "old")

    with pytest.raises(SerializationError):
        await serializing_adapter.set(CacheKey(key="k", tags=["new"]), Unencodable())

    entry = await serializing_adapter.get(CacheKey(key="k"))
    assert entry is not None
    assert entry.value == "old"
    assert await serializing_adapter.delete_by_tags(["new"]) == 0
    assert await serializing_adapter.delete_by_tags(["old"]) == 1


async def test_cache_keeps_working_after_a_serialization_error(serializing_adapter: CacheAdapter) -> None:
    with pytest.raises(SerializationError):
        await serializing_adapter.set(CacheKey(key="bad"), Unencodable())

    await serializing_adapter.set(CacheKey(key="good"), {"ok": True})

    entry = await serializing_adapter.get(CacheKey(key="good"))
    assert entry is not None
    assert entry.value == {"ok": True}
