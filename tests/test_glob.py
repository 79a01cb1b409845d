"""``rediscache._glob`` against a real Redis, against its own faithful port, and ``literal_prefix``."""

from __future__ import annotations

import itertools
import time

import pytest
from glob_corpus import KEYS, LONG_A_KEY, PATTERNS
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from rediscache._glob import compile_glob, glob_match, literal_prefix, stringmatchlen


def _show(text: str) -> str:
    return repr(text if len(text) <= 60 else f"{text[:40]}...<{len(text)} chars>")


# ---------------------------------------------------------------------------------------------------
# (a) The corpus against a real server.
# ---------------------------------------------------------------------------------------------------


def test_corpus_is_large_and_distinct() -> None:
    assert len(KEYS) >= 60
    assert len(PATTERNS) >= 60
    assert len(set(KEYS)) == len(KEYS)
    assert len(set(PATTERNS)) == len(PATTERNS)
    for key in KEYS:
        key.encode("utf-8")  # every key is storable as UTF-8
        assert "\x00" not in key


async def test_scan_match_agrees_with_glob_match_on_the_corpus(redis_client: Redis, key_prefix: str) -> None:
    # The prefix is made of letters and digits, so "<prefix><pattern>" needs no escaping.
    assert key_prefix.isascii() and key_prefix.isalnum()
    prefix = key_prefix.encode()
    stored = {prefix + key.encode("utf-8"): key for key in KEYS}
    await redis_client.mset(dict.fromkeys(stored, b"1"))
    try:
        everything = {k async for k in redis_client.scan_iter(match=prefix + b"*", count=1000)}
        assert set(stored) <= everything, "the corpus was not stored"

        mismatches: list[str] = []
        match_counts: dict[str, int] = {}
        for pattern in PATTERNS:
            redis_pattern = prefix + pattern.encode("utf-8")
            scanned = {k async for k in redis_client.scan_iter(match=redis_pattern, count=1000)}
            # Ignore keys of other tests that might share the prefix's first characters.
            from_redis = {stored[k] for k in scanned if k in stored}
            ours = {key for key in KEYS if glob_match(pattern, key)}
            match_counts[pattern] = len(from_redis)
            if ours != from_redis:
                mismatches.append(
                    f"pattern {_show(pattern)}: only Redis {sorted(map(_show, from_redis - ours))}, "
                    f"only glob_match {sorted(map(_show, ours - from_redis))}"
                )
                continue
            # The port agrees with the server too: under the prefix for every key, bare when non-empty.
            for key in KEYS:
                expected = key in from_redis
                if stringmatchlen(redis_pattern, prefix + key.encode("utf-8")) != expected or (
                    key and stringmatchlen(pattern.encode("utf-8"), key.encode("utf-8")) != expected
                ):
                    mismatches.append(f"stringmatchlen: pattern {_show(pattern)}, key {_show(key)}")
        assert not mismatches, "\n".join(mismatches)

        # The comparison is not vacuous: patterns match nothing, some, and everything.
        assert match_counts["*"] == len(KEYS)
        assert match_counts["[]"] == 0
        assert sum(1 for n in match_counts.values() if 0 < n < len(KEYS)) >= len(PATTERNS) // 2
        # A few of the documented quirks, as the server answered them.
        assert match_counts["a*" * 1001] == 2  # LONG_A_KEY and LONG_A_KEY + "b"
        assert match_counts["a*" * 1002] == 0
        assert match_counts["[^]"] == sum(1 for key in KEYS if len(key.encode()) == 1)
    finally:
        await redis_client.delete(*stored)
    assert await redis_client.exists(*stored) == 0


# ---------------------------------------------------------------------------------------------------
# (b) The compiled matcher against the faithful port.
# ---------------------------------------------------------------------------------------------------

# Weighted towards '*' and letters, so that random patterns are often matched by something.
_PATTERN_PIECES = [
    *"****??aaabbc",
    *"[]^-\\!z:",
    "ü",
    "日",
    "🎉",
]
_KEY_PIECES = [
    b"a",
    b"b",
    b"c",
    b"z",
    b"A",
    b"-",
    b"]",
    b"[",
    b"^",
    b"\\",
    b"*",
    b"!",
    b":",
    "ü".encode(),
    "日".encode(),
    "🎉".encode(),
    b"\xc3",  # lone bytes of multi-byte characters: keys are bytes to the matcher
    b"\xbc",
    b"\xff",
    b"\x00",
]

patterns = st.lists(st.sampled_from(_PATTERN_PIECES), max_size=14).map("".join)
keys = st.lists(st.sampled_from(_KEY_PIECES), max_size=10).map(b"".join)


@st.composite
def patterns_and_keys(draw: st.DrawFn) -> tuple[str, bytes]:
    """A random pattern, with either a random key or one shaped after it (so that matches are common)."""
    pieces = draw(st.lists(st.sampled_from(_PATTERN_PIECES), max_size=14))
    if draw(st.booleans()):
        return "".join(pieces), draw(keys)
    parts: list[bytes] = []
    for piece in pieces:
        if piece == "*":
            parts += draw(st.lists(st.sampled_from(_KEY_PIECES), max_size=3))
        elif piece == "?":
            parts.append(draw(st.sampled_from(_KEY_PIECES)))
        else:
            parts.append(draw(st.sampled_from([piece.encode()] * 4 + [b"a", b"b"])))
    return "".join(pieces), b"".join(parts)


@settings(max_examples=3000, deadline=None)
@given(case=patterns_and_keys())
def test_compiled_matcher_agrees_with_the_port(case: tuple[str, bytes]) -> None:
    pattern, key = case
    raw = pattern.encode("utf-8")
    result = compile_glob(pattern)(key)
    # The compiled matcher answers what Redis answers for the key under a literal prefix ...
    assert result == stringmatchlen(b"k" + raw, b"k" + key)
    # ... which is the bare answer for every non-empty key, and "only '*'s" for the empty one.
    if key:
        assert result == stringmatchlen(raw, key)
    else:
        assert result == (set(pattern) <= {"*"})
    if result:
        assert key.startswith(literal_prefix(pattern).encode("utf-8"))


def test_compiled_matcher_agrees_with_the_port_exhaustively() -> None:
    """Every pattern of up to 4 pieces from a small set, against every key of up to 4 bytes."""
    pieces = ["*", "a", "b", "?", "[ab]", "[^a]", "\\*", "["]
    all_keys = [b"".join(c) for n in range(5) for c in itertools.product([b"a", b"b", b"*", b"["], repeat=n)]
    disagreements = []
    matches = 0
    for size in range(5):
        for combination in itertools.product(pieces, repeat=size):
            pattern = "".join(combination)
            matcher, prefixed = compile_glob(pattern), b"k" + pattern.encode()
            for key in all_keys:
                result = matcher(key)
                matches += result
                if result != stringmatchlen(prefixed, b"k" + key):
                    disagreements.append((pattern, key))
    assert not disagreements, disagreements[:20]
    assert matches > 10_000


# A small alphabet: most keys match or nearly match, which exercises where each '*' may stop.
_SMALL_PATTERN_PIECES = ["*", "*", "*", "a", "a", "b", "?", "[ab]", "[^a]", "[b-a]", "\\*"]


@settings(max_examples=3000, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(_SMALL_PATTERN_PIECES), max_size=10),
    key=st.lists(st.sampled_from([b"a", b"b", b"*"]), max_size=10).map(b"".join),
)
def test_compiled_matcher_agrees_with_the_port_on_a_small_alphabet(pieces: list[str], key: bytes) -> None:
    pattern = "".join(pieces)
    assert compile_glob(pattern)(key) == stringmatchlen(b"k" + pattern.encode(), b"k" + key)


@settings(max_examples=500, deadline=None)
@given(pattern=patterns, key=st.lists(st.sampled_from(["a", "b", "ü", "日", "-", "]", "\\"]), max_size=8))
def test_glob_match_is_compile_glob_on_utf8(pattern: str, key: list[str]) -> None:
    text = "".join(key)
    assert glob_match(pattern, text) == compile_glob(pattern)(text.encode("utf-8"))


@pytest.mark.parametrize("runs", [999, 1000, 1001, 1002, 1003])
@pytest.mark.parametrize("tail", ["", "*", "b"])
def test_nesting_limit_agrees_with_the_port(runs: int, tail: str) -> None:
    pattern = "a*" * runs + tail
    for key in (LONG_A_KEY, LONG_A_KEY + "b", "a" * runs):
        raw_key = key.encode()
        assert compile_glob(pattern)(raw_key) == stringmatchlen(pattern.encode(), raw_key)
    # 1000 loops may recurse; the 1001st '*' run may only end the pattern.
    reachable = runs <= 1000 or (runs == 1001 and tail in ("", "*"))
    assert glob_match(pattern, LONG_A_KEY + "b") is reachable


def test_pathological_patterns_take_linear_time() -> None:
    key = b"a" * 20_000
    started = time.perf_counter()
    assert compile_glob("*a" * 40 + "*b")(key) is False
    assert compile_glob("a*" * 40 + "[b]")(key) is False
    assert compile_glob("*a?" * 40 + "*")(key) is True
    # A single ".*a.*a...b" regex takes seconds on a 120-byte key; this is milliseconds.
    assert time.perf_counter() - started < 1.0


def test_compile_glob_is_cached() -> None:
    assert compile_glob("user:*") is compile_glob("user:*")


def test_redis_quirks_pinned() -> None:
    # Each answer below was checked against redis-server 7.0.15 (x86-64).
    assert stringmatchlen(b"*", b"") is False  # the bare matcher never matches the empty key with '*'
    assert glob_match("*", "") and glob_match("**", "") and glob_match("", "")
    assert not glob_match("?", "")
    assert not glob_match("?", "ü") and glob_match("??", "ü")  # '?' is one byte
    assert glob_match("[!a]", "!") and not glob_match("[!a]", "b")  # '!' is not negation
    assert not glob_match("[]", "]") and not glob_match("[]]", "]")  # ']' first closes the set
    assert glob_match("[^]", "q") and glob_match("[^]]", "q]")
    assert glob_match("[^", "x") and not glob_match("[", "[")  # unterminated sets
    assert glob_match("[ab", "b") and glob_match("[a-", "-")
    assert glob_match("[a-]", "^") and not glob_match("[a-]", "-")  # "a-]" is the range ']'..'a'
    assert glob_match("[c-a]", "b") and glob_match("[a-c-e]", "-") and not glob_match("[a-c-e]", "d")
    assert glob_match("[\\]]", "]") and glob_match("[\\", "\\")
    assert glob_match("\\", "\\") and glob_match("a\\*", "a*") and not glob_match("a\\*", "ab")
    # Signed chars: 'ü' starts with 0xC3 (-61), so "[a-ü]" is the byte range -61..97.
    assert glob_match("[a-ü]", "A") and not glob_match("[a-ü]", "b")
    assert glob_match("[a-ü]?", "ü") and not glob_match("[a-ü]", "ü")
    assert compile_glob("[a-ü]")(b"\xff") and not compile_glob("[a-ü]")(b"\x80")


# ---------------------------------------------------------------------------------------------------
# (c) literal_prefix.
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [
        ("", ""),
        ("*", ""),
        ("?", ""),
        ("[a]", ""),
        ("user:*", "user:"),
        ("user:1?:*", "user:1"),
        ("user:[0-9]*", "user:"),
        ("user:42", "user:42"),
        ("a\\*b*", "a*b"),
        ("a\\?b?", "a?b"),
        ("a\\[b[", "a[b"),
        ("\\\\x*", "\\x"),
        ("a\\b", "ab"),
        ("a\\", "a\\"),  # a trailing lone backslash is a literal backslash
        ("\\", "\\"),
        ("a]b*", "a]b"),
        ("a^-!{}:*", "a^-!{}:"),
        ("日本:*", "日本:"),
        ("ü?", "ü"),
        ("\\ü*", "ü"),  # an escape takes the first byte; the continuation byte follows as a literal
        ("🎉\\🎉[", "🎉🎉"),
        ("line\nbreak*", "line\nbreak"),
    ],
)
def test_literal_prefix(pattern: str, prefix: str) -> None:
    assert literal_prefix(pattern) == prefix


def test_literal_prefix_starts_every_matching_corpus_key() -> None:
    checked = 0
    for pattern in PATTERNS:
        prefix = literal_prefix(pattern).encode("utf-8")
        for key in KEYS:
            if glob_match(pattern, key):
                assert key.encode("utf-8").startswith(prefix), (pattern, key)
                checked += 1
    assert checked > 100
