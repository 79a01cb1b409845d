"""The codecs: exact round trips, framing, compression, refusals, and signed pickle's integrity checks."""

from __future__ import annotations

import contextlib
import enum
import hashlib
import hmac
import math
import pickle
import re
import struct
import threading
import zlib
from collections import OrderedDict, defaultdict
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, field_serializer

from rediscache._exceptions import CacheError, SerializationError, UndecodablePayload
from rediscache.serialization import Codec, MsgpackCodec, SignedPickleCodec, make_codec

KEY = "ns:some:key"


# -- models -------------------------------------------------------------------------------------------


class Point(BaseModel):
    x: int
    y: float


class Shape(BaseModel):
    name: str
    points: list[Point]
    created: datetime
    labels: frozenset[str] = frozenset()
    ratio: Decimal | None = None
    extra: Any = None


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Paint(BaseModel):
    color: Color
    amount: int


class Unregistered(BaseModel):
    x: int = 1


class Level(enum.IntEnum):
    LOW = 1


class Name(str):
    pass


def make_msgpack(**kwargs: Any) -> MsgpackCodec:
    codec = MsgpackCodec(**kwargs)
    for model in (Point, Shape, Paint):
        codec.register_model(model)
    return codec


CODEC = make_msgpack()


# -- exact comparison ---------------------------------------------------------------------------------


def _same_tz(a: tzinfo | None, b: tzinfo | None) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, ZoneInfo):
        return a.key == b.key  # type: ignore[union-attr]
    if isinstance(a, timezone):
        return a.utcoffset(None) == b.utcoffset(None) and a.tzname(None) == b.tzname(None)  # type: ignore[union-attr]
    return a is None


def same(a: Any, b: Any) -> bool:
    """Equal value *and* equal type, recursively; NaN equals NaN bit for bit; fold and tzinfo count."""
    if type(a) is not type(b):
        return False
    kind = type(a)
    if kind is float:
        return struct.pack(">d", a) == struct.pack(">d", b)
    if kind is list or kind is tuple:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if kind is dict:
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb) for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    if kind is set or kind is frozenset:
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    if kind is datetime or kind is time:
        return a.replace(tzinfo=None) == b.replace(tzinfo=None) and a.fold == b.fold and _same_tz(a.tzinfo, b.tzinfo)
    if kind is Decimal:
        return str(a) == str(b)
    if isinstance(a, BaseModel):
        return same(a.model_dump(), b.model_dump())
    return bool(a == b)


def short_id(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # ints past the str-conversion digit limit
        text = f"<{type(value).__name__}>"
    # Memory addresses differ between interpreters: ids must not (parallel workers compare them).
    text = re.sub(r" at 0x[0-9a-f]+", "", text)
    return text if len(text) <= 50 else text[:47] + "..."


def roundtrip(value: Any, codec: Codec = CODEC) -> Any:
    return codec.decode(codec.encode(value, KEY), KEY)


# -- strategies ---------------------------------------------------------------------------------------

_offsets = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
_fixed_tz = st.one_of(
    st.just(timezone.utc),
    st.builds(timezone, _offsets),
    st.builds(timezone, _offsets, st.text(min_size=1, max_size=8)),
)
_any_tz = st.one_of(st.none(), _fixed_tz, st.timezones())
_fold = st.integers(0, 1)
_datetimes = st.builds(lambda d, f: d.replace(fold=f), st.datetimes(timezones=_any_tz), _fold)
_times = st.builds(lambda t, f: t.replace(fold=f), st.times(timezones=st.one_of(st.none(), _fixed_tz)), _fold)
_ints = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1]),
)

# Members of sets and dict keys: hashable, and NaN-free (NaN != NaN would make set comparison meaningless).
_hashable_leaves = st.one_of(
    st.none(),
    st.booleans(),
    _ints,
    st.floats(allow_nan=False),
    st.text(max_size=10),
    st.binary(max_size=10),
    st.dates(),
    st.datetimes(timezones=st.one_of(st.none(), _fixed_tz)),
    st.timedeltas(),
    st.decimals(allow_nan=False),
    st.uuids(),
)
_hashables = st.recursive(
    _hashable_leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=3).map(tuple), st.frozensets(inner, max_size=3)),
    max_leaves=6,
)
_leaves = st.one_of(
    _hashable_leaves,
    st.floats(),  # NaN and infinities
    st.decimals(allow_nan=True, allow_infinity=True),
    _datetimes,
    _times,
)
_points = st.builds(Point, x=_ints, y=st.floats(allow_nan=False))
_shapes = st.builds(
    Shape,
    name=st.text(max_size=5),
    points=st.lists(_points, max_size=3),
    created=st.datetimes(timezones=st.one_of(st.none(), st.just(timezone.utc))),
    labels=st.frozensets(st.text(max_size=3), max_size=3),
    ratio=st.none() | st.decimals(allow_nan=False, allow_infinity=False, places=3),
    extra=st.none() | st.tuples(st.integers(), st.text(max_size=3)),
)
values = st.recursive(
    st.one_of(_leaves, _points, _shapes, st.builds(Paint, color=st.sampled_from(Color), amount=st.integers())),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(_hashables, inner, max_size=4),
        st.sets(_hashables, max_size=4),
        st.frozensets(_hashables, max_size=4),
    ),
    max_leaves=20,
)


# -- round trips --------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_msgpack_round_trip_is_exact(value: Any) -> None:
    assert same(roundtrip(value), value)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_round_trip_is_exact_with_compression(value: Any) -> None:
    assert same(roundtrip(value, make_msgpack(compression_threshold=0)), value)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_dumps_loads_round_trip(value: Any) -> None:
    assert same(CODEC.loads(CODEC.dumps(value)), value)


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        2**63 - 1,
        2**63,
        2**64 - 1,
        2**64,
        -(2**63),
        -(2**63) - 1,
        10**400,
        -(10**5000),  # past int's 4300-digit str limit: fine, it is stored as bytes
        math.nan,
        math.inf,
        -math.inf,
        -0.0,
        "",
        "ünïcødé 🎉",
        b"",
        b"\x00\xff",
        [],
        (),
        (1,),
        {},
        set(),
        frozenset(),
        {(1, 2): "tuple key", 3: "int key", frozenset({1}): "frozenset key", None: 0, b"k": 1, 1.5: 2},
        [(1, [2, (3, {4: {5}})])],
        datetime(2024, 1, 2, 3, 4, 5, 678901),
        datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),
        datetime(2024, 1, 1, tzinfo=timezone.utc),
        datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=-3, microseconds=7), "Odd")),
        datetime.min,
        datetime.max,
        date(1, 1, 1),
        date.max,
        time(23, 59, 59, 999999),
        time(1, 2, tzinfo=timezone(timedelta(hours=1))),
        time(1, 2, fold=1),
        timedelta(days=-999999999),
        timedelta.max,
        timedelta(microseconds=-1),
        Decimal("NaN"),
        Decimal("-NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        Decimal("-0"),
        Decimal("1.000"),
        Decimal("1E+7"),
        Decimal("-123.456e-789"),
        UUID("12345678-1234-5678-1234-567812345678"),
        Point(x=2**70, y=-0.0),
        Shape(name="s", points=[Point(x=1, y=2.5)], created=datetime(2020, 1, 1), labels=frozenset({"a"})),
    ],
    ids=short_id,
)
def test_round_trip_examples(value: Any) -> None:
    decoded = roundtrip(value)
    assert same(decoded, value)


def test_model_holding_an_enum_uses_pydantic_json_and_round_trips() -> None:
    value = {"paint": Paint(color=Color.BLUE, amount=3)}
    payload = CODEC.encode(value, KEY)
    decoded = CODEC.decode(payload, KEY)
    assert decoded == value
    assert type(decoded["paint"].color) is Color


def test_model_names_default_to_module_and_qualname() -> None:
    body = CODEC.dumps(Point(x=1, y=2.0))
    ext = msgpack.unpackb(body)
    assert msgpack.unpackb(ext.data)[0] == f"{Point.__module__}.Point"


def test_register_model_rejects_a_second_class_under_one_name() -> None:
    codec = MsgpackCodec()
    codec.register_model(Point, name="shared")
    codec.register_model(Point, name="shared")  # the same pairing again is fine
    with pytest.raises(ValueError, match="shared"):
        codec.register_model(Shape, name="shared")
    with pytest.raises(TypeError):
        codec.register_model(dict, name="d")  # type: ignore[arg-type]


def test_register_model_alias_reads_old_name_and_writes_the_first() -> None:
    old = MsgpackCodec()
    old.register_model(Point, name="old.Point")
    payload = old.encode(Point(x=1, y=2.0), KEY)

    new = MsgpackCodec()
    new.register_model(Point, name="new.Point")
    new.register_model(Point, name="old.Point")
    assert new.decode(payload, KEY) == Point(x=1, y=2.0)
    assert b"new.Point" in new.encode(Point(x=1, y=2.0), KEY)


def test_model_unknown_to_the_reader_is_undecodable() -> None:
    payload = CODEC.encode(Point(x=1, y=2.0), KEY)
    with pytest.raises(UndecodablePayload):
        MsgpackCodec().decode(payload, KEY)


def test_model_whose_schema_changed_is_undecodable() -> None:
    class Point(BaseModel):  # same name as the stored one, incompatible fields
        x: str
        y: list[int]

    reader = MsgpackCodec()
    reader.register_model(Point, name=f"{__name__}.Point")
    with pytest.raises(UndecodablePayload):
        reader.decode(CODEC.encode(globals()["Point"](x=1, y=2.0), KEY), KEY)


def test_concurrent_threads_share_one_codec_safely() -> None:
    values = [{"i": i, "when": datetime(2020, 1, 1) + timedelta(seconds=i), "t": (i, str(i))} for i in range(200)]
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                for value in values:
                    assert same(roundtrip(value), value)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_encoding_from_inside_model_dump_does_not_corrupt_the_outer_value() -> None:
    codec = MsgpackCodec()

    class Reentrant(BaseModel):
        x: int

        @field_serializer("x")
        def _x(self, x: int) -> int:
            codec.encode({"inner": [x, x, x]}, "other")
            return x

    codec.register_model(Reentrant)
    value = {"a": [1, 2, 3], "m": Reentrant(x=7), "z": "after"}
    assert same(codec.decode(codec.encode(value, KEY), KEY), value)


# -- framing and compression --------------------------------------------------------------------------


def test_header_bytes() -> None:
    assert CODEC.encode({"a": 1}, KEY)[0] == 0x01
    assert CODEC.encode({"a": 1}, KEY)[1:] == msgpack.packb({"a": 1})
    assert make_msgpack(compression_threshold=10).encode("x" * 100, KEY)[0] == 0x02


def test_no_compression_without_a_threshold() -> None:
    payload = CODEC.encode("x" * 100_000, KEY)
    assert payload[0] == 0x01


def test_compression_only_above_the_threshold() -> None:
    body = CODEC.dumps("a" * 200)
    at = make_msgpack(compression_threshold=len(body))
    above = make_msgpack(compression_threshold=len(body) - 1)
    assert at.encode("a" * 200, KEY)[0] == 0x01
    assert above.encode("a" * 200, KEY)[0] == 0x02
    assert above.decode(above.encode("a" * 200, KEY), KEY) == "a" * 200


def test_compression_kept_only_when_smaller() -> None:
    noise = b"".join(hashlib.sha256(bytes([i])).digest() for i in range(64))  # 2 KiB zlib cannot shrink
    codec = make_msgpack(compression_threshold=16)
    payload = codec.encode(noise, KEY)
    assert payload[0] == 0x01
    assert payload[1:] == CODEC.dumps(noise)
    assert codec.decode(payload, KEY) == noise


def test_compressible_10kb_string_is_stored_smaller() -> None:
    value = "the quick brown fox jumps over the lazy dog " * 230  # ~10 KB
    assert len(value) > 10_000
    codec = make_msgpack(compression_threshold=1024)
    payload = codec.encode(value, KEY)
    assert payload[0] == 0x02
    assert len(payload) < len(value) // 10
    assert codec.decode(payload, KEY) == value


@pytest.mark.parametrize(
    "kwargs",
    [{"compression_threshold": -1}, {"compression_threshold": 1.5}, {"compression_level": 10}],
)
def test_bad_compression_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        MsgpackCodec(**kwargs)


# -- undecodable payloads -----------------------------------------------------------------------------


@pytest.mark.parametrize("header", [0x00, 0x03, 0x04, 0x05, 0x7F, 0x80, 0xFF])
def test_unknown_header_byte_is_undecodable(header: int) -> None:
    payload = bytes([header]) + msgpack.packb({"a": 1})
    with pytest.raises(UndecodablePayload):
        CODEC.decode(payload, KEY)


def test_empty_payload_is_undecodable() -> None:
    with pytest.raises(UndecodablePayload):
        CODEC.decode(b"", KEY)


def test_every_truncation_is_undecodable() -> None:
    value = {"k": [1, 2**80, (3, "x"), datetime(2020, 1, 1, tzinfo=timezone.utc), Decimal("1.5")]}
    for codec in (CODEC, make_msgpack(compression_threshold=0)):
        payload = codec.encode(value, KEY)
        for end in range(len(payload)):
            with pytest.raises(UndecodablePayload):
                codec.decode(payload[:end], KEY)


@pytest.mark.parametrize(
    "body",
    [
        b"\xc1",  # never-used msgpack byte
        b"\x92\x01",  # array of 2 with one item
        b"\x01\x02",  # trailing data
        msgpack.packb(msgpack.ExtType(99, b"x")),  # unknown ext code
        msgpack.packb(msgpack.ExtType(5, b"\x00")),  # datetime too short
        msgpack.packb(msgpack.ExtType(5, struct.pack(">HBBBBBIB", 2020, 13, 1, 0, 0, 0, 0, 0))),  # month 13
        msgpack.packb(msgpack.ExtType(5, struct.pack(">HBBBBBIB", 2020, 1, 1, 0, 0, 0, 0, 0) + b"\x09")),  # tz tag
        msgpack.packb(msgpack.ExtType(5, struct.pack(">HBBBBBIB", 2020, 1, 1, 0, 0, 0, 0, 0) + b"\x03No/Such")),
        msgpack.packb(msgpack.ExtType(9, b"not a number")),
        msgpack.packb(msgpack.ExtType(10, b"short")),
        msgpack.packb(msgpack.ExtType(2, msgpack.packb("not an array"))),
        msgpack.packb(msgpack.ExtType(3, msgpack.packb([[1]]))),  # unhashable set member
        msgpack.packb(msgpack.ExtType(11, msgpack.packb(["no.such.Model", {}]))),
        msgpack.packb(msgpack.ExtType(11, msgpack.packb([f"{__name__}.Point", {"x": "nope"}]))),
        msgpack.packb(msgpack.ExtType(12, msgpack.packb([f"{__name__}.Paint", "{not json"]))),
        b"\x81\x91\x01\x02",  # map with an (unhashable) list key
        b"\x91" * 100_000 + b"\x01",  # nested deeper than the unpacker allows
    ],
)
def test_corrupt_bodies_are_undecodable(body: bytes) -> None:
    with pytest.raises(UndecodablePayload):
        CODEC.decode(b"\x01" + body, KEY)


def test_corrupt_zlib_is_undecodable() -> None:
    payload = bytearray(make_msgpack(compression_threshold=0).encode("abc" * 100, KEY))
    payload[5] ^= 0xFF
    with pytest.raises(UndecodablePayload):
        CODEC.decode(bytes(payload), KEY)
    with pytest.raises(UndecodablePayload):
        CODEC.decode(b"\x02" + zlib.compress(b"\xc1"), KEY)


@settings(max_examples=500, deadline=None)
@given(st.binary())
def test_arbitrary_bytes_never_raise_anything_but_undecodable(data: bytes) -> None:
    for payload in (data, b"\x01" + data, b"\x02" + zlib.compress(data), b"\x03" + data):
        for codec in (CODEC, SignedPickleCodec("s")):
            with contextlib.suppress(UndecodablePayload):
                codec.decode(payload, KEY)


def test_undecodable_is_a_cache_error() -> None:
    assert issubclass(UndecodablePayload, CacheError)


# -- refusals -----------------------------------------------------------------------------------------


class Foo:
    pass


class CustomTz(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=1)


@pytest.mark.parametrize(
    ("value", "type_name", "path"),
    [
        (object(), "object", None),
        (lambda: None, "function", None),
        ({object()}, "object", None),
        ([1, 2, {"x": Foo()}], "Foo", "[2]['x']"),
        ({"k": (1, Foo())}, "Foo", "['k'][1]"),
        ({(1, Foo()): 1}, "Foo", None),
        (Level.LOW, "Level", None),
        ([Level.LOW], "Level", "[0]"),
        (Name("x"), "Name", None),
        ({"name": Name("x")}, "Name", "['name']"),
        (OrderedDict(a=1), "OrderedDict", None),
        (defaultdict(list), "defaultdict", None),
        (Unregistered(), "Unregistered", None),
        ({"m": [Unregistered()]}, "Unregistered", "['m'][0]"),
        (bytearray(b"x"), "bytearray", None),
        ({"blob": [memoryview(b"x")]}, "memoryview", "['blob'][0]"),
        ((1, {2: bytearray(b"\xc4")}), "bytearray", "[1][2]"),
        (Shape(name="s", points=[], created=datetime(2020, 1, 1), extra=Foo()), "Foo", ".extra"),
        (Shape(name="s", points=[], created=datetime(2020, 1, 1), extra=bytearray(b"x")), "bytearray", ".extra"),
        (datetime(2020, 1, 1, tzinfo=CustomTz()), "CustomTz", None),
        (complex(1, 2), "complex", None),
        (range(3), "range", None),
        (Color.RED, "Color", None),
        (Exception("x"), "Exception", None),
    ],
    ids=short_id,
)
def test_unsupported_values_raise_serialization_error_naming_the_type(
    value: Any, type_name: str, path: str | None
) -> None:
    with pytest.raises(SerializationError) as info:
        CODEC.encode(value, KEY)
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, CacheError)
    assert type_name in str(info.value)
    if path is not None:
        assert f"(at {path})" in str(info.value)


def test_unregistered_model_error_says_to_register() -> None:
    with pytest.raises(SerializationError, match="register_model"):
        CODEC.encode(Unregistered(), KEY)


def test_registered_model_subclass_is_refused() -> None:
    class SubPoint(Point):
        pass

    with pytest.raises(SerializationError, match="SubPoint"):
        CODEC.encode(SubPoint(x=1, y=1.0), KEY)


def test_lone_surrogate_str_is_refused() -> None:
    with pytest.raises(SerializationError):
        CODEC.encode({"a": "\ud800"}, KEY)


def test_too_deep_and_self_referential_values_are_refused() -> None:
    deep: list[Any] = []
    for _ in range(2_000):
        deep = [deep]
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    for value in (deep, cyclic):
        with pytest.raises(SerializationError):
            CODEC.encode(value, KEY)


def test_codec_still_works_after_a_refusal() -> None:
    with pytest.raises(SerializationError):
        CODEC.encode([1, 2, (3, Foo())], KEY)
    assert roundtrip([1, 2, (3, 4)]) == [1, 2, (3, 4)]


def test_bytes_and_latin_extended_text_are_not_mistaken_for_bytearray() -> None:
    # These all pack bytes 0xc4..0xc6, which makes the encoder walk the value for bytearray/memoryview.
    value = {"polish": "Łódź", "raw": b"\xc4\xc5\xc6", "f": struct.unpack(">d", b"\x40\xc4" + b"\0" * 6)[0]}
    assert same(roundtrip(value), value)


# -- signed pickle ------------------------------------------------------------------------------------


class Opaque:
    """Something msgpack refuses and pickle takes."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.n == self.n

    __hash__ = None  # type: ignore[assignment]


UNPICKLED: list[str] = []


def _record(tag: str) -> str:
    UNPICKLED.append(tag)
    return tag


class SideEffect:
    """Unpickling it appends to UNPICKLED: proof of whether a payload was ever loaded."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (_record, ("unpickled!",))


def _forge(secret: bytes, full_key: str, body: bytes, header: int = 0x03) -> bytes:
    key = full_key.encode()
    tag = hmac.new(secret, len(key).to_bytes(4, "big") + key + bytes([header]) + body, hashlib.sha256).digest()
    return bytes([header]) + tag + body


def test_signed_pickle_round_trip() -> None:
    codec = SignedPickleCodec("secret")
    value = {"o": Opaque(3), "t": (1, {2}), "dt": datetime.now(timezone.utc)}
    payload = codec.encode(value, KEY)
    assert payload[0] == 0x03
    assert codec.decode(payload, KEY) == value


def test_signed_pickle_wire_format_is_as_documented() -> None:
    payload = SignedPickleCodec(b"k").encode([1, 2], KEY)
    assert payload == _forge(b"k", KEY, pickle.dumps([1, 2], protocol=5))


def test_signed_pickle_compression() -> None:
    codec = SignedPickleCodec("secret", compression_threshold=100)
    value = ["same text"] * 1000
    payload = codec.encode(value, KEY)
    assert payload[0] == 0x04
    assert len(payload) < len(pickle.dumps(value, protocol=5))
    assert codec.decode(payload, KEY) == value
    assert codec.encode([1], KEY)[0] == 0x03


def test_forged_payload_with_a_wrong_mac_is_never_unpickled() -> None:
    UNPICKLED.clear()
    body = pickle.dumps(SideEffect(), protocol=5)
    codec = SignedPickleCodec(b"real")
    # The control: correctly signed, this payload does run its side effect when read.
    assert codec.decode(_forge(b"real", KEY, body), KEY) == "unpickled!"
    assert UNPICKLED == ["unpickled!"]
    UNPICKLED.clear()

    forged = [
        _forge(b"guessed", KEY, body),  # signed with the wrong secret
        bytes([0x03]) + b"\x00" * 32 + body,  # no real tag at all
        bytes([0x03]) + _forge(b"real", KEY, body, header=0x04)[1:],  # right secret, header flipped
    ]
    for payload in forged:
        with pytest.raises(UndecodablePayload):
            codec.decode(payload, KEY)
    assert UNPICKLED == []


def test_every_tampered_byte_is_rejected_without_unpickling() -> None:
    UNPICKLED.clear()
    codec = SignedPickleCodec("secret")
    payload = codec.encode(SideEffect(), KEY)
    for index in range(len(payload)):
        tampered = bytearray(payload)
        tampered[index] ^= 0x01
        with pytest.raises(UndecodablePayload):
            codec.decode(bytes(tampered), KEY)
    for end in range(len(payload)):
        with pytest.raises(UndecodablePayload):
            codec.decode(payload[:end], KEY)
    with pytest.raises(UndecodablePayload):
        codec.decode(payload + b"\x00", KEY)
    assert UNPICKLED == []


def test_payload_moved_to_another_key_fails() -> None:
    codec = SignedPickleCodec("secret")
    payload = codec.encode({"a": 1}, "ns:a")
    assert codec.decode(payload, "ns:a") == {"a": 1}
    for other in ("ns:b", "ns:a ", "ns", "a", "", "ns:a\x00"):
        with pytest.raises(UndecodablePayload):
            codec.decode(payload, other)


def test_key_and_body_boundary_is_unambiguous() -> None:
    # Without the length prefix, key "ab" + body "c..." and key "a" + body "bc..." could share a MAC input.
    codec = SignedPickleCodec("secret")
    payload = codec.encode(1, "ab")
    with pytest.raises(UndecodablePayload):
        codec.decode(payload, "a")


def test_rotation_old_secret_still_verifies() -> None:
    old = SignedPickleCodec("old")
    rotated = SignedPickleCodec(["new", "old"])
    payload = old.encode(Opaque(1), KEY)
    assert rotated.decode(payload, KEY) == Opaque(1)
    new_payload = rotated.encode(Opaque(2), KEY)
    assert SignedPickleCodec("new").decode(new_payload, KEY) == Opaque(2)
    with pytest.raises(UndecodablePayload):
        old.decode(new_payload, KEY)
    with pytest.raises(UndecodablePayload):
        SignedPickleCodec(["other"]).decode(payload, KEY)


def test_str_and_bytes_secrets_are_the_same_secret() -> None:
    payload = SignedPickleCodec("sécret").encode(1, KEY)
    assert SignedPickleCodec("sécret".encode()).decode(payload, KEY) == 1


@pytest.mark.parametrize("secret", ["", b"", [], (), [""], ["ok", b""]])
def test_no_secret_is_refused(secret: Any) -> None:
    with pytest.raises(ValueError):
        SignedPickleCodec(secret)


def test_pickling_failure_is_a_serialization_error_naming_the_type() -> None:
    codec = SignedPickleCodec("secret")
    with pytest.raises(SerializationError, match="lock"):
        codec.encode({"lock": threading.Lock()}, KEY)
    with pytest.raises(SerializationError, match="function"):
        codec.encode(lambda: None, KEY)


def test_codecs_read_only_their_own_headers() -> None:
    pickled = SignedPickleCodec("secret").encode(1, KEY)
    with pytest.raises(UndecodablePayload):
        CODEC.decode(pickled, KEY)
    with pytest.raises(UndecodablePayload):
        SignedPickleCodec("secret").decode(CODEC.encode(1, KEY), KEY)


# -- make_codec ---------------------------------------------------------------------------------------


def test_make_codec() -> None:
    assert type(make_codec()) is MsgpackCodec
    assert type(make_codec("msgpack", compression_threshold=10)) is MsgpackCodec
    assert make_codec("msgpack", compression_threshold=10).encode("a" * 100, KEY)[0] == 0x02
    pickle_codec = make_codec("pickle", secret=["a", "b"], compression_threshold=10)
    assert type(pickle_codec) is SignedPickleCodec
    assert pickle_codec.encode("a" * 100, KEY)[0] == 0x04
    assert make_codec(CODEC) is CODEC
    with pytest.raises(ValueError, match="secret"):
        make_codec("pickle")
    with pytest.raises(ValueError):
        make_codec("pickle", secret="")
    for bad in ("json", "MSGPACK", "", None, 3):
        with pytest.raises(ValueError):
            make_codec(bad)  # type: ignore[arg-type]
