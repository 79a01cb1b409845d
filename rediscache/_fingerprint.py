"""Stable digests of function calls, for ``CacheKey.from_function_call``.

The digest is the first 16 hex characters of SHA-256 over a canonical encoding of the call's arguments, bound
to the function's signature with defaults applied. The encoding is type-tagged (``1``, ``1.0``, ``True`` and
``Decimal(1)`` differ), length-prefixed (so no two argument lists share an encoding), and order-free where
Python is (dict items, set and frozenset members are sorted by their encodings), so the same call gives the
same digest in every process whatever ``PYTHONHASHSEED``.

Covered, recursively: the msgpack codec's types (``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``,
``list``, ``tuple``, ``dict``, ``set``, ``frozenset``, ``datetime``, ``date``, ``time``, ``timedelta``,
``Decimal``, ``UUID``), pydantic model instances (class and ``model_dump()``) and ``Enum`` members (the
class's qualified name and the member's value, so ``IntEnum``/``StrEnum`` members never collide with plain
values). Otherwise exact types only, as in the codec: a subclass (an ``OrderedDict``) has no encoding,
because two classes could share a value and differ in behaviour. Anything else raises ``TypeError`` naming the argument.

Changing this encoding changes every digest, so every cached call misses once: treat it as a stored format.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import math
import struct
import weakref
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum
from types import MethodType
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import BaseModel

__all__ = ["call_digest"]

_LEN = struct.Struct(">Q").pack
_FLOAT = struct.Struct(">d").pack
_CANONICAL_NAN = _FLOAT(math.nan)
_OFFSET = struct.Struct(">q").pack

_signatures: weakref.WeakKeyDictionary[Any, inspect.Signature] = weakref.WeakKeyDictionary()
# A bound method is a new object on every attribute access, so its signature is cached under the function it
# wraps (the signature of a bound method does not depend on the instance it is bound to).
_method_signatures: weakref.WeakKeyDictionary[Any, inspect.Signature] = weakref.WeakKeyDictionary()


class _NoEncoding(Exception):
    def __init__(self, obj: object, reason: str = "") -> None:
        super().__init__(obj)
        self.obj = obj
        self.reason = reason
        self.path: list[str] = []  # innermost segment first, built while unwinding


def _signature(func: Callable[..., Any]) -> inspect.Signature:
    # inspect.signature costs several µs and runs on every cached call: memoise it per function object.
    if isinstance(func, MethodType):
        cache, owner = _method_signatures, func.__func__
    else:
        cache, owner = _signatures, func
    try:
        return cache[owner]
    except (KeyError, TypeError):
        pass
    sig = inspect.signature(func)
    with contextlib.suppress(TypeError):  # not weak-referenceable (some builtins): just don't cache
        cache[owner] = sig
    return sig


def _blob(tag: bytes, data: bytes) -> bytes:
    return tag + _LEN(len(data)) + data


def _text(value: str) -> bytes:
    # surrogatepass keeps lone surrogates distinct instead of failing: the mapping stays injective.
    return value.encode("utf-8", "surrogatepass")


def _tz(tz: object, owner: object) -> bytes:
    if tz is None:
        return b"n"
    if type(tz) is timezone:
        offset = tz.utcoffset(None)
        micros = (offset.days * 86_400 + offset.seconds) * 1_000_000 + offset.microseconds
        return b"o" + _OFFSET(micros) + _blob(b"s", _text(tz.tzname(None)))
    if type(tz) is ZoneInfo and tz.key is not None:
        return _blob(b"z", _text(tz.key))
    raise _NoEncoding(owner, f" (its tzinfo of type {type(tz).__qualname__!r} has no stable encoding)")


def _sequence(tag: bytes, items: list[Any] | tuple[Any, ...]) -> bytes:
    parts = [tag, _LEN(len(items))]
    for index, item in enumerate(items):
        try:
            parts.append(_encode(item))
        except _NoEncoding as exc:
            exc.path.append(f"[{index}]")
            raise
    return b"".join(parts)


def _unordered(tag: bytes, items: Any, segment: str) -> bytes:
    encoded = []
    for item in items:
        try:
            encoded.append(_encode(item))
        except _NoEncoding as exc:
            exc.path.append(segment)
            raise
    encoded.sort()
    return tag + _LEN(len(encoded)) + b"".join(encoded)


def _mapping(tag: bytes, value: dict[Any, Any]) -> bytes:
    pairs = []
    for k, v in value.items():
        try:
            key = _encode(k)
        except _NoEncoding as exc:
            exc.path.append(f"<key {_short(k)}>")
            raise
        try:
            pairs.append(key + _encode(v))
        except _NoEncoding as exc:
            exc.path.append(f"[{_short(k)}]")
            raise
    # Each encoding is self-delimiting, so sorting the concatenated pairs is well defined and loses nothing.
    pairs.sort()
    return tag + _LEN(len(pairs)) + b"".join(pairs)


def _short(key: object) -> str:
    text = repr(key)
    return text if len(text) <= 40 else text[:37] + "..."


def _encode(value: object) -> bytes:
    kind = type(value)
    if value is None:
        return b"N"
    if kind is bool:
        return b"T" if value else b"F"
    if kind is int:
        number: int = value  # type: ignore[assignment]
        return _blob(b"i", number.to_bytes((number.bit_length() + 8) // 8, "big", signed=True))
    if kind is float:
        real: float = value  # type: ignore[assignment]
        # All NaNs are one value to a caller; their bit patterns (sign, payload) are noise.
        return b"f" + (_CANONICAL_NAN if real != real else _FLOAT(real))
    if kind is str:
        return _blob(b"s", _text(value))  # type: ignore[arg-type]
    if kind is bytes:
        return _blob(b"b", value)  # type: ignore[arg-type]
    if kind is list:
        return _sequence(b"l", value)  # type: ignore[arg-type]
    if kind is tuple:
        return _sequence(b"t", value)  # type: ignore[arg-type]
    if kind is dict:
        return _mapping(b"d", value)  # type: ignore[arg-type]
    if kind is set:
        return _unordered(b"S", value, "<set member>")
    if kind is frozenset:
        return _unordered(b"Z", value, "<set member>")
    if kind is datetime:
        dt: datetime = value  # type: ignore[assignment]
        stamp = (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond, dt.fold)
        return b"D" + struct.pack(">HBBBBBIB", *stamp) + _tz(dt.tzinfo, dt)
    if kind is date:
        day: date = value  # type: ignore[assignment]
        return b"A" + struct.pack(">HBB", day.year, day.month, day.day)
    if kind is time:
        tm: time = value  # type: ignore[assignment]
        fields = (tm.hour, tm.minute, tm.second, tm.microsecond, tm.fold)
        return b"M" + struct.pack(">BBBIB", *fields) + _tz(tm.tzinfo, tm)
    if kind is timedelta:
        delta: timedelta = value  # type: ignore[assignment]
        return b"E" + struct.pack(">qQQ", delta.days, delta.seconds, delta.microseconds)
    if kind is Decimal:
        return _blob(b"C", str(value).encode("ascii"))
    if kind is UUID:
        uuid: UUID = value  # type: ignore[assignment]
        return b"U" + uuid.bytes
    if isinstance(value, Enum):
        # By the class's qualified name and the member's value (not its name: renaming a member keeps
        # its keys); an IntEnum or StrEnum member is an Enum first, never its plain value.
        enum_cls = type(value)
        name = _text(f"{enum_cls.__module__}.{enum_cls.__qualname__}")
        return _blob(b"e", name) + _encode(value.value)
    if isinstance(value, BaseModel):
        cls = type(value)
        try:
            dump = value.model_dump()
        except Exception as exc:
            raise _NoEncoding(value, f" (model_dump() failed: {type(exc).__name__}: {exc})") from exc
        # Fields are sorted like any dict's items, so reordering a model's field declarations keeps its keys.
        return _blob(b"P", _text(f"{cls.__module__}.{cls.__qualname__}")) + _mapping(b"d", dump)
    raise _NoEncoding(value)


def call_digest(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """16 lowercase hex characters naming this call of ``func``: equal for equal calls, in any process.

    ``TypeError`` if the arguments do not bind to the signature, or if one has no stable encoding.
    """
    bound = _signature(func).bind(*args, **kwargs)
    bound.apply_defaults()
    digest = hashlib.sha256()
    for name, value in bound.arguments.items():
        try:
            encoded = _encode(value)
        except _NoEncoding as exc:
            path = "".join(reversed(exc.path))
            kind = type(exc.obj).__qualname__
            if not path and exc.obj is value:
                message = f"argument {name!r} of type {kind!r} has no stable encoding"
            else:
                message = f"argument {name!r} holds a value of type {kind!r} (at {path}) with no stable encoding"
            raise TypeError(f"{message}{exc.reason}; pass key_func") from None
        except RecursionError:
            raise TypeError(f"argument {name!r} is nested too deeply or self-referential; pass key_func") from None
        # bound.arguments follows the signature's order, so names plus values are canonical already; *args
        # arrive as a tuple and **kwargs as a dict, which _encode sorts.
        digest.update(_blob(b"a", _text(name)) + encoded)
    return digest.hexdigest()[:16]
