"""Value codecs: how a cached value becomes the bytes stored in Redis, and back.

Two codecs share one framing. :class:`MsgpackCodec` (the default) gives an exact round trip for a fixed set of
types and refuses everything else; :class:`SignedPickleCodec` is opt-in, takes any picklable value, and signs
every payload so that nothing unsigned is ever unpickled.

Wire format (stable: entries outlive deploys, so change it only by adding header bytes)
=========================================================================================

Every payload starts with one header byte naming the format version, the codec and the compression::

    0x01  msgpack body
    0x02  zlib(msgpack body)
    0x03  HMAC-SHA256 tag (32 bytes) + pickle body (protocol 5)
    0x04  HMAC-SHA256 tag (32 bytes) + zlib(pickle body)

Any other first byte (an empty payload included) is :class:`~rediscache._exceptions.UndecodablePayload`:
during a rolling deploy an older reader treats a newer format as a miss. 0x00 is never written. A codec reads
only its own header bytes: a msgpack entry read through the pickle codec (or the reverse) is a miss.

Compression (both codecs): off when ``compression_threshold`` is ``None``. Otherwise a body longer than the
threshold is zlib-compressed, and the compressed form is kept only if it is smaller.

Signed pickle: the tag is ``HMAC-SHA256(secret, len(k).to_bytes(4, "big") + k + header + body)`` where
``k`` is the entry's ``full_key`` in UTF-8 (``surrogatepass``) and ``body`` is what follows the tag
(compressed or not). The key is length-prefixed so that (key, payload) pairs cannot be re-split, and the
header is covered so that the compression flag cannot be flipped. The first secret signs; every secret is
tried when verifying (rotation), each with :func:`hmac.compare_digest`. Verification happens before
decompression and unpickling.

msgpack body
------------

Plain msgpack (``use_bin_type=True``) for the exact types ``None``, ``bool``, ``int`` (64-bit range),
``float``, ``str``, ``bytes``, ``list`` and ``dict`` (map keys may be any supported hashable). Everything else
of the supported set is a msgpack ext type whose data is::

    code  type                 ext data
    1     int beyond 64 bits   two's-complement big-endian, minimal length (int.to_bytes(..., signed=True))
    2     tuple                msgpack array of the items
    3     set                  msgpack array of the items
    4     frozenset            msgpack array of the items
    5     datetime             struct ">HBBBBBIB" (year, month, day, hour, minute, second, microsecond, fold)
                               + tz suffix
    6     date                 struct ">HBB" (year, month, day)
    7     time                 struct ">BBBIB" (hour, minute, second, microsecond, fold) + tz suffix
    8     timedelta            struct ">iII" (days, seconds, microseconds)
    9     Decimal              ASCII ``str(value)`` (keeps NaN/sNaN, infinities, sign and exponent)
    10    UUID                 the 16 bytes of ``value.bytes``
    11    pydantic model       msgpack array ``[name, model.model_dump()]``; read with ``model_validate``
    12    pydantic model, JSON msgpack array ``[name, model.model_dump_json(round_trip=True)]``; read with
                               ``model_validate_json``. Used only when ``model_dump()`` holds a value this
                               codec cannot encode (an ``Enum`` field, a ``Path``): the round trip is then as
                               faithful as the model's annotations make pydantic's own JSON round trip.

    tz suffix (datetime and time)
        empty                                   naive
        0x01 + struct ">q" offset in µs         datetime.timezone(offset)        (timezone.utc when 0)
        0x02 + struct ">q" offset in µs + name  datetime.timezone(offset, name)  (name in UTF-8)
        0x03 + key                              zoneinfo.ZoneInfo(key)           (key in UTF-8)

Model names come from :meth:`MsgpackCodec.register_model`. Ext codes 0 and 13-127 are unused; -1 (msgpack's
timestamp) is never written.

What the msgpack codec refuses (:class:`~rediscache._exceptions.SerializationError`, raised before anything
is written): every other type, including subclasses of the supported types (an ``IntEnum``, a ``str``
subclass, an ``OrderedDict`` or ``defaultdict``; msgpack would read them back as the base type), ``bytearray``
and ``memoryview`` (read back as ``bytes`` otherwise), ``datetime`` and ``time`` whose tzinfo is neither
``datetime.timezone`` nor a keyed ``zoneinfo.ZoneInfo`` (pytz, dateutil), ``str`` holding lone surrogates,
unregistered pydantic models, and values nested deeper than msgpack allows (about 500 levels).

Not supported and not checked: msgpack's own ``ExtType`` and ``Timestamp`` objects, which the C packer writes
as they are (like plain msgpack would). Nobody builds them by accident; one whose code is not in the table
above reads back as a miss.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
import struct
import threading
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any, NoReturn
from uuid import UUID
from zoneinfo import ZoneInfo

import msgpack  # type: ignore[import-untyped]  # msgpack ships no type information
from pydantic import BaseModel

from rediscache._exceptions import SerializationError, UndecodablePayload

__all__ = [
    "Codec",
    "MsgpackCodec",
    "SignedPickleCodec",
    "make_codec",
]

# Typed views of the untyped msgpack API; everything below goes through these.
_ExtType: Callable[[int, bytes], object] = msgpack.ExtType
_unpackb: Callable[..., Any] = msgpack.unpackb
_new_packer: Callable[..., Any] = msgpack.Packer

_H_MSGPACK = 0x01
_H_MSGPACK_ZLIB = 0x02
_H_PICKLE = 0x03
_H_PICKLE_ZLIB = 0x04
_B_MSGPACK = bytes([_H_MSGPACK])
_B_MSGPACK_ZLIB = bytes([_H_MSGPACK_ZLIB])

_X_BIGINT = 1
_X_TUPLE = 2
_X_SET = 3
_X_FROZENSET = 4
_X_DATETIME = 5
_X_DATE = 6
_X_TIME = 7
_X_TIMEDELTA = 8
_X_DECIMAL = 9
_X_UUID = 10
_X_MODEL = 11
_X_MODEL_JSON = 12

_TZ_FIXED = 0x01
_TZ_FIXED_NAMED = 0x02
_TZ_ZONEINFO = 0x03

_DATETIME = struct.Struct(">HBBBBBIB")
_DATE = struct.Struct(">HBB")
_TIME = struct.Struct(">BBBIB")
_TIMEDELTA = struct.Struct(">iII")
_OFFSET = struct.Struct(">q")
_UTC_SUFFIX = bytes([_TZ_FIXED]) + _OFFSET.pack(0)

_PICKLE_PROTOCOL = 5  # fixed, not HIGHEST_PROTOCOL: a newer Python must not write what older readers can't load
_TAG_LEN = hashlib.sha256().digest_size

# Types msgpack writes natively and reads back as exactly the same type (strict_types keeps subclasses out).
_NATIVE: frozenset[type] = frozenset({str, int, float, bool, type(None), bytes})
# Written by the C packer as msgpack bin *before* any hook can see them (strict_types does not stop them), so
# they would silently read back as bytes. See _check_leaks.
_BYTES_LIKE: frozenset[type] = frozenset({bytearray, memoryview})
_CONTAINERS: frozenset[type] = frozenset({dict, list, tuple, set, frozenset})
# UnicodeEncodeError is a ValueError and SerializationError a TypeError; RecursionError needs naming.
_ENCODE_ERRORS = (ValueError, TypeError, OverflowError, RecursionError)


class _Unsupported(TypeError):
    """Raised from inside the packer's hooks; carries the offending object so the error can name its path."""

    def __init__(self, obj: object, hint: str = "") -> None:
        super().__init__(obj)
        self.obj = obj
        self.hint = hint


class Codec(ABC):
    """Turns values into stored payloads and back.

    ``full_key`` is the entry's key: a signing codec binds the payload to it, others ignore it.
    """

    @abstractmethod
    def encode(self, value: Any, full_key: str) -> bytes:
        """The payload for ``value``. Raises :class:`SerializationError` naming the type it cannot encode."""

    @abstractmethod
    def decode(self, data: bytes, full_key: str) -> Any:
        """The value of a payload. Raises :class:`UndecodablePayload`, and nothing else, for untrusted or
        unreadable data."""


def _check_compression(threshold: int | None, level: int) -> None:
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0):
        raise ValueError(f"compression_threshold must be None or an int >= 0, got {threshold!r}")
    if isinstance(level, bool) or not isinstance(level, int) or not -1 <= level <= 9:
        raise ValueError(f"compression_level must be an int from -1 to 9, got {level!r}")


def _undecodable(message: str, exc: BaseException | None = None) -> NoReturn:
    detail = f": {type(exc).__name__}: {exc}" if exc is not None else ""
    raise UndecodablePayload(f"{message}{detail}") from exc


def _type_name(obj: object) -> str:
    return type(obj).__qualname__


# ----------------------------------------------------------------------------------------------------
# time zones


def _tz_suffix(tz: object, owner: object) -> bytes:
    if tz is None:
        return b""
    if tz is timezone.utc:
        return _UTC_SUFFIX
    if type(tz) is timezone:
        # __getinitargs__ tells an explicit name from the default "UTC+01:00": both round-trip as built.
        args = tz.__getinitargs__()  # type: ignore[attr-defined]
        offset: timedelta = args[0]
        micros = (offset.days * 86_400 + offset.seconds) * 1_000_000 + offset.microseconds
        if len(args) == 1:
            return bytes([_TZ_FIXED]) + _OFFSET.pack(micros)
        name: str = args[1]
        return bytes([_TZ_FIXED_NAMED]) + _OFFSET.pack(micros) + name.encode("utf-8", "surrogatepass")
    if type(tz) is ZoneInfo:
        if tz.key is None:
            raise _Unsupported(owner, "; its ZoneInfo was built from a file and has no key to store")
        return bytes([_TZ_ZONEINFO]) + tz.key.encode("utf-8")
    raise _Unsupported(
        owner,
        f"; its tzinfo of type {_type_name(tz)!r} is not supported (use datetime.timezone or zoneinfo.ZoneInfo)",
    )


@lru_cache(maxsize=256)
def _fixed_tz(micros: int, name: str | None) -> timezone:
    offset = timedelta(microseconds=micros)
    return timezone(offset) if name is None else timezone(offset, name)


def _tz_from_suffix(suffix: bytes) -> timezone | ZoneInfo | None:
    if not suffix:
        return None
    tag = suffix[0]
    if tag == _TZ_FIXED and len(suffix) == 9:
        return _fixed_tz(_OFFSET.unpack_from(suffix, 1)[0], None)
    if tag == _TZ_FIXED_NAMED and len(suffix) >= 9:
        return _fixed_tz(_OFFSET.unpack_from(suffix, 1)[0], suffix[9:].decode("utf-8", "surrogatepass"))
    if tag == _TZ_ZONEINFO:
        return ZoneInfo(suffix[1:].decode("utf-8"))
    raise ValueError(f"unknown tz tag {tag:#04x} (length {len(suffix)})")


# ----------------------------------------------------------------------------------------------------
# msgpack


class _PackerSlot(threading.local):
    """One reusable top-level packer per thread: a Packer's buffer is not safe to share or re-enter."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.packer = factory()


class MsgpackCodec(Codec):
    """The default codec: msgpack with ext types, exact round trips, no code execution on read.

    See the module docstring for the supported types and the wire format. Models are encoded only once their
    class is registered with :meth:`register_model`, which also names the class in stored data (so renaming or
    moving a class needs an explicit ``name=`` to keep reading old entries).
    """

    def __init__(self, *, compression_threshold: int | None = None, compression_level: int = 6) -> None:
        _check_compression(compression_threshold, compression_level)
        self._threshold = compression_threshold
        self._level = compression_level
        self._model_names: dict[type[BaseModel], str] = {}
        self._models: dict[str, type[BaseModel]] = {}
        self._encoders: dict[type, Callable[[Any], object]] = {
            int: self._encode_bigint,
            tuple: self._encode_tuple,
            set: self._encode_set,
            frozenset: self._encode_frozenset,
            datetime: self._encode_datetime,
            date: self._encode_date,
            time: self._encode_time,
            timedelta: self._encode_timedelta,
            Decimal: self._encode_decimal,
            UUID: self._encode_uuid,
        }
        self._decoders: dict[int, Callable[[bytes], object]] = {
            _X_BIGINT: self._decode_bigint,
            _X_TUPLE: self._decode_tuple,
            _X_SET: self._decode_set,
            _X_FROZENSET: self._decode_frozenset,
            _X_DATETIME: self._decode_datetime,
            _X_DATE: self._decode_date,
            _X_TIME: self._decode_time,
            _X_TIMEDELTA: self._decode_timedelta,
            _X_DECIMAL: self._decode_decimal,
            _X_UUID: self._decode_uuid,
            _X_MODEL: self._decode_model,
            _X_MODEL_JSON: self._decode_model_json,
        }
        self._slot = _PackerSlot(self._top_packer)
        self._ext_hook = self._decode_ext

    def __repr__(self) -> str:
        return (
            f"MsgpackCodec(compression_threshold={self._threshold!r}, compression_level={self._level!r}, "
            f"models={sorted(self._models)!r})"
        )

    # -- registry ----------------------------------------------------------------------------------

    def register_model(self, model: type[BaseModel], name: str | None = None) -> None:
        """Allow instances of ``model`` (exactly this class, not its subclasses) in cached values.

        ``name`` (default ``f"{model.__module__}.{model.__qualname__}"``) is what stored data records.
        Registering one class again under another name adds an alias that is read but never written (renames).
        """
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"register_model expects a pydantic BaseModel subclass, got {model!r}")
        if name is None:
            name = f"{model.__module__}.{model.__qualname__}"
        if not isinstance(name, str) or not name:
            raise ValueError(f"model name must be a non-empty str, got {name!r}")
        known = self._models.get(name)
        if known is not None and known is not model:
            raise ValueError(f"model name {name!r} is already registered for {known.__module__}.{known.__qualname__}")
        self._models[name] = model
        self._model_names.setdefault(model, name)

    # -- public ------------------------------------------------------------------------------------

    # encode/decode inline what dumps/loads do: they run on every cache read and write, and a method call and
    # a second try block are a measurable share of a small value's cost.

    def encode(self, value: Any, full_key: str) -> bytes:
        try:
            body: bytes = self._slot.packer.pack(value)
            # Every msgpack bin starts with byte 0xc4, 0xc5 or 0xc6: without one (three memchr calls) the
            # value holds no bytes-like object at all, and the walk for bytearray/memoryview is skipped.
            if (0xC4 in body or 0xC5 in body or 0xC6 in body) and type(value) is not bytes:
                _check_leaks(value)
        except _ENCODE_ERRORS as exc:
            raise self._encode_error(value, exc) from None
        threshold = self._threshold
        if threshold is not None and len(body) > threshold:
            compressed = zlib.compress(body, self._level)
            if len(compressed) < len(body):
                return _B_MSGPACK_ZLIB + compressed
        return _B_MSGPACK + body

    def decode(self, data: bytes, full_key: str) -> Any:
        try:
            header = data[0]
            if header == _H_MSGPACK:
                body = data[1:]
            elif header == _H_MSGPACK_ZLIB:
                body = zlib.decompress(data[1:])
            else:
                raise UndecodablePayload(f"unknown payload header {header!r} for the msgpack codec")
            return _unpackb(body, ext_hook=self._ext_hook, strict_map_key=False)
        except UndecodablePayload:
            raise
        except Exception as exc:
            _undecodable("corrupt msgpack payload", exc)

    def dumps(self, value: Any) -> bytes:
        """The msgpack body of ``value`` (no header, no compression). Raises :class:`SerializationError`."""
        try:
            body: bytes = self._slot.packer.pack(value)
            if (0xC4 in body or 0xC5 in body or 0xC6 in body) and type(value) is not bytes:
                _check_leaks(value)
        except _ENCODE_ERRORS as exc:
            raise self._encode_error(value, exc) from None
        return body

    def loads(self, data: bytes) -> Any:
        """The value of a msgpack body (no header). Raises :class:`UndecodablePayload`, nothing else."""
        try:
            return _unpackb(data, ext_hook=self._ext_hook, strict_map_key=False)
        except UndecodablePayload:
            raise
        except Exception as exc:
            _undecodable("corrupt msgpack payload", exc)

    def _encode_error(self, value: object, exc: Exception) -> Exception:
        if isinstance(exc, _Unsupported):
            return self._unsupported_error(value, exc)
        if isinstance(exc, SerializationError):
            return exc
        if isinstance(exc, UnicodeEncodeError):
            return SerializationError(f"cannot serialize a str that is not valid UTF-8 text: {exc}")
        if isinstance(exc, RecursionError):
            return SerializationError("cannot serialize value: nested too deeply or self-referential")
        # msgpack's own refusals: its nesting limit ("recursion limit exceeded"), an object over 4 GiB.
        return SerializationError(f"cannot serialize value of type {_type_name(value)!r}: {exc}")

    # -- encoding ----------------------------------------------------------------------------------

    def _top_packer(self) -> Any:
        # 4 KiB to start (msgpack's default is 256 KiB): the buffer grows as needed and is kept between calls.
        return _new_packer(default=self._default, strict_types=True, use_bin_type=True, datetime=False, buf_size=4096)

    def _pack_nested(self, value: object) -> bytes:
        # Hooks run while the thread's top-level packer is mid-write, so nested data needs a packer of its
        # own; a small initial buffer keeps this cheaper than msgpack.packb's 256 KiB one.
        packer = _new_packer(default=self._default, strict_types=True, use_bin_type=True, datetime=False, buf_size=256)
        body: bytes = packer.pack(value)
        return body

    def _default(self, obj: object) -> object:
        encoder = self._encoders.get(type(obj))
        if encoder is not None:
            return encoder(obj)
        if isinstance(obj, BaseModel):
            return self._encode_model(obj)
        raise _Unsupported(obj, _hint_for(obj))

    def _encode_bigint(self, value: int) -> object:
        return _ExtType(_X_BIGINT, value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True))

    def _encode_tuple(self, value: tuple[Any, ...]) -> object:
        return _ExtType(_X_TUPLE, self._pack_nested(list(value)))

    def _encode_set(self, value: set[Any]) -> object:
        return _ExtType(_X_SET, self._pack_nested(list(value)))

    def _encode_frozenset(self, value: frozenset[Any]) -> object:
        return _ExtType(_X_FROZENSET, self._pack_nested(list(value)))

    def _encode_datetime(self, value: datetime) -> object:
        head = _DATETIME.pack(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            value.fold,
        )
        return _ExtType(_X_DATETIME, head + _tz_suffix(value.tzinfo, value))

    def _encode_date(self, value: date) -> object:
        return _ExtType(_X_DATE, _DATE.pack(value.year, value.month, value.day))

    def _encode_time(self, value: time) -> object:
        head = _TIME.pack(value.hour, value.minute, value.second, value.microsecond, value.fold)
        return _ExtType(_X_TIME, head + _tz_suffix(value.tzinfo, value))

    def _encode_timedelta(self, value: timedelta) -> object:
        return _ExtType(_X_TIMEDELTA, _TIMEDELTA.pack(value.days, value.seconds, value.microseconds))

    def _encode_decimal(self, value: Decimal) -> object:
        return _ExtType(_X_DECIMAL, str(value).encode("ascii"))

    def _encode_uuid(self, value: UUID) -> object:
        return _ExtType(_X_UUID, value.bytes)

    def _encode_model(self, model: BaseModel) -> object:
        name = self._model_names.get(type(model))
        if name is None:
            cls = type(model)
            raise _Unsupported(
                model,
                f"; pydantic models must be registered first: codec.register_model({cls.__qualname__})",
            )
        # model_dump() may run user code (serializers) that encodes through this codec on this thread: give
        # that a fresh top-level packer, so it cannot write into the buffer this call is still filling.
        self._slot.packer = self._top_packer()
        try:
            dump = model.model_dump()
        except Exception as exc:
            raise _Unsupported(model, f"; model_dump() failed: {type(exc).__name__}: {exc}") from exc
        try:
            body = self._pack_nested([name, dump])
        except _Unsupported as first:
            try:
                text = model.model_dump_json(round_trip=True)
            except Exception:
                raise first from None
            return _ExtType(_X_MODEL_JSON, self._pack_nested([name, text]))
        # The top-level walk does not enter models, so look for bytes-like objects in the dump here. They are
        # refused, not sent to the JSON form, which would turn them into str.
        if 0xC4 in body or 0xC5 in body or 0xC6 in body:
            _check_leaks(dump)
        return _ExtType(_X_MODEL, body)

    def _unsupported_error(self, root: object, exc: _Unsupported) -> SerializationError:
        path = _locate(root, exc.obj, self._model_names)
        where = f" (at {path})" if path else ""
        return SerializationError(f"cannot serialize value of type {_type_name(exc.obj)!r}{where}{exc.hint}")

    # -- decoding ----------------------------------------------------------------------------------

    def _decode_ext(self, code: int, data: bytes) -> object:
        decoder = self._decoders.get(code)
        if decoder is None:
            raise ValueError(f"unknown msgpack ext type {code}")
        return decoder(data)

    def _unpack_array(self, data: bytes) -> list[Any]:
        items = _unpackb(data, ext_hook=self._ext_hook, strict_map_key=False)
        if type(items) is not list:
            raise ValueError(f"ext payload holds {type(items).__name__}, expected an array")
        return items

    def _decode_bigint(self, data: bytes) -> object:
        return int.from_bytes(data, "big", signed=True)

    def _decode_tuple(self, data: bytes) -> object:
        return tuple(self._unpack_array(data))

    def _decode_set(self, data: bytes) -> object:
        return set(self._unpack_array(data))

    def _decode_frozenset(self, data: bytes) -> object:
        return frozenset(self._unpack_array(data))

    def _decode_datetime(self, data: bytes) -> object:
        year, month, day, hour, minute, second, micro, fold = _DATETIME.unpack_from(data)
        tz = _tz_from_suffix(data[_DATETIME.size :])
        return datetime(year, month, day, hour, minute, second, micro, tz, fold=fold)

    def _decode_date(self, data: bytes) -> object:
        return date(*_DATE.unpack(data))

    def _decode_time(self, data: bytes) -> object:
        hour, minute, second, micro, fold = _TIME.unpack_from(data)
        return time(hour, minute, second, micro, _tz_from_suffix(data[_TIME.size :]), fold=fold)

    def _decode_timedelta(self, data: bytes) -> object:
        days, seconds, micros = _TIMEDELTA.unpack(data)
        return timedelta(days=days, seconds=seconds, microseconds=micros)

    def _decode_decimal(self, data: bytes) -> object:
        return Decimal(data.decode("ascii"))

    def _decode_uuid(self, data: bytes) -> object:
        return UUID(bytes=data)

    def _model_class(self, name: object) -> type[BaseModel]:
        model = self._models.get(name) if isinstance(name, str) else None
        if model is None:
            # Typically a rolling deploy, or a reader that forgot register_model: the entry reads as a miss.
            raise ValueError(f"pydantic model {name!r} is not registered with this codec")
        return model

    def _decode_model(self, data: bytes) -> object:
        name, dump = self._unpack_array(data)
        return self._model_class(name).model_validate(dump)

    def _decode_model_json(self, data: bytes) -> object:
        name, text = self._unpack_array(data)
        return self._model_class(name).model_validate_json(text)


def _check_leaks(value: object) -> None:
    """Raise _Unsupported for a bytearray or memoryview anywhere inside ``value`` (models excepted).

    The C packer writes these as bin, before ``default`` could refuse them, so only a walk can find them. It
    costs about 50 ns per element, so callers run it only when the packed output holds a bin marker byte.
    """
    kind = type(value)
    if kind is dict:
        for k, v in value.items():  # type: ignore[attr-defined]
            if type(k) not in _NATIVE:
                _check_leaks(k)
            if type(v) not in _NATIVE:
                _check_leaks(v)
    elif kind is list or kind is tuple or kind is set or kind is frozenset:
        for item in value:  # type: ignore[attr-defined]
            if type(item) not in _NATIVE:
                _check_leaks(item)
    elif kind in _BYTES_LIKE:
        raise _Unsupported(value, "; convert it to bytes")


def _hint_for(obj: object) -> str:
    if isinstance(obj, (bool, int, float, str, bytes, list, dict, tuple, set, frozenset)):
        return "; subclasses of built-in types are refused because they would read back as the base type"
    if isinstance(obj, (date, time, timedelta, Decimal, UUID)):
        return "; subclasses are refused because they would read back as the base type"
    return ""


def _short(key: object) -> str:
    text = repr(key)
    return text if len(text) <= 40 else text[:37] + "..."


def _locate(root: object, target: object, models: dict[type[BaseModel], str]) -> str:
    """A readable path from ``root`` to ``target`` (by identity), e.g. ``[2]['x']``; "" at the root or lost.

    Runs only after a failure, so it can afford to walk the whole value again.
    """
    seen: set[int] = set()

    def walk(node: object, path: list[str]) -> list[str] | None:
        if node is target:
            return path
        kind = type(node)
        if kind not in _CONTAINERS and not (kind in models and isinstance(node, BaseModel)):
            return None
        if id(node) in seen:
            return None
        seen.add(id(node))
        if isinstance(node, BaseModel):
            try:
                fields = node.model_dump()
            except Exception:
                return None
            for name, field in fields.items():
                found = walk(field, [*path, f".{name}"])
                if found is not None:
                    return found
            return None
        if kind is dict:
            for k, v in node.items():  # type: ignore[attr-defined]
                found = walk(k, [*path, f"<key {_short(k)}>"])
                if found is None:
                    found = walk(v, [*path, f"[{_short(k)}]"])
                if found is not None:
                    return found
        elif kind is list or kind is tuple:
            for index, item in enumerate(node):  # type: ignore[arg-type, var-annotated]
                found = walk(item, [*path, f"[{index}]"])
                if found is not None:
                    return found
        else:
            for item in node:  # type: ignore[attr-defined]
                found = walk(item, [*path, "<set member>"])
                if found is not None:
                    return found
        return None

    try:
        found = walk(root, [])
    except RecursionError:
        return ""
    return "".join(found) if found else ""


# ----------------------------------------------------------------------------------------------------
# signed pickle


def _secret_bytes(secret: object) -> bytes:
    if isinstance(secret, str):
        raw = secret.encode("utf-8")
    elif isinstance(secret, bytes):
        raw = secret
    else:
        raise TypeError(f"a secret must be str or bytes, not {type(secret).__name__}")
    if not raw:
        raise ValueError("a secret must not be empty")
    return raw


class SignedPickleCodec(Codec):
    """Pickle, HMAC-SHA256 signed together with the entry's ``full_key``. Opt-in: needs a secret.

    ``secret`` is one secret or a sequence of them: the first signs, all verify, so a new secret can be put
    first while entries signed with the old one are still read. A payload whose tag matches none of them is
    never unpickled. Anyone holding a secret and write access to Redis can still run code in readers: keep
    the secret as guarded as the servers.
    """

    def __init__(
        self,
        secret: str | bytes | Sequence[str | bytes],
        *,
        compression_threshold: int | None = None,
        compression_level: int = 6,
    ) -> None:
        if isinstance(secret, (str, bytes)):
            secrets = [_secret_bytes(secret)]
        elif isinstance(secret, Sequence):
            secrets = [_secret_bytes(s) for s in secret]
        else:
            raise TypeError(f"secret must be str, bytes or a sequence of them, not {type(secret).__name__}")
        if not secrets:
            raise ValueError("SignedPickleCodec needs at least one non-empty secret")
        _check_compression(compression_threshold, compression_level)
        self._threshold = compression_threshold
        self._level = compression_level
        # Keyed HMAC objects are copied per use, so the key schedule is computed once per secret.
        self._macs = tuple(hmac.new(s, digestmod=hashlib.sha256) for s in secrets)

    def __repr__(self) -> str:
        return f"SignedPickleCodec(<{len(self._macs)} secret(s)>, compression_threshold={self._threshold!r})"

    def _tag(self, mac: hmac.HMAC, full_key: str, header: int, body: bytes) -> bytes:
        key = full_key.encode("utf-8", "surrogatepass")
        h = mac.copy()
        h.update(len(key).to_bytes(4, "big") + key + bytes([header]))
        h.update(body)
        return h.digest()

    def encode(self, value: Any, full_key: str) -> bytes:
        try:
            body = pickle.dumps(value, protocol=_PICKLE_PROTOCOL)
        except RecursionError:
            raise SerializationError(
                f"cannot pickle value of type {_type_name(value)!r}: nested too deeply or self-referential"
            ) from None
        except Exception as exc:
            raise SerializationError(
                f"cannot pickle value of type {_type_name(value)!r}: {type(exc).__name__}: {exc}"
            ) from None
        header = _H_PICKLE
        if self._threshold is not None and len(body) > self._threshold:
            compressed = zlib.compress(body, self._level)
            if len(compressed) < len(body):
                header, body = _H_PICKLE_ZLIB, compressed
        return bytes([header]) + self._tag(self._macs[0], full_key, header, body) + body

    def decode(self, data: bytes, full_key: str) -> Any:
        try:
            header = data[0] if data else None
            if header != _H_PICKLE and header != _H_PICKLE_ZLIB:
                raise UndecodablePayload(f"unknown payload header {header!r} for the signed pickle codec")
            if len(data) < 1 + _TAG_LEN:
                raise UndecodablePayload(f"truncated signed payload ({len(data)} bytes)")
            tag = bytes(data[1 : 1 + _TAG_LEN])
            body = bytes(data[1 + _TAG_LEN :])
            # Every secret is tried (no early exit) so timing says nothing about which one matched.
            valid = False
            for mac in self._macs:
                valid |= hmac.compare_digest(tag, self._tag(mac, full_key, header, body))
            if not valid:
                raise UndecodablePayload(f"signature check failed for key {full_key!r}: payload not unpickled")
            if header == _H_PICKLE_ZLIB:
                body = zlib.decompress(body)
            return pickle.loads(body)
        except UndecodablePayload:
            raise
        except Exception as exc:
            _undecodable("signed payload could not be read", exc)


# ----------------------------------------------------------------------------------------------------


def make_codec(
    serializer: str | Codec = "msgpack",
    *,
    secret: str | bytes | Sequence[str | bytes] | None = None,
    compression_threshold: int | None = None,
) -> Codec:
    """The codec an adapter was configured with.

    ``"msgpack"`` (``secret`` is not used), ``"pickle"`` (signed; needs ``secret``), or a ready
    :class:`Codec`, returned as it is (its own settings win over ``secret`` and ``compression_threshold``).
    """
    if isinstance(serializer, Codec):
        return serializer
    if serializer == "msgpack":
        return MsgpackCodec(compression_threshold=compression_threshold)
    if serializer == "pickle":
        if secret is None:
            raise ValueError("serializer='pickle' needs secret=...: pickle payloads are signed, never trusted")
        return SignedPickleCodec(secret, compression_threshold=compression_threshold)
    raise ValueError(f"serializer must be 'msgpack', 'pickle' or a Codec instance, got {serializer!r}")
