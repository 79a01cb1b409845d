"""``delete_by_pattern``: Redis glob syntax against the UTF-8 bytes of ``full_key``, live entries only."""

from __future__ import annotations

import pytest

from rediscache._models import CacheKey
from rediscache._port import CacheAdapter

from ._support import MakeSeparateCache, add, add_expired, glob_escape, live_full_keys


async def removed_by(adapter: CacheAdapter, pattern: str, full_keys: list[str]) -> set[str]:
    """Set one entry per full key, delete by ``pattern``, return the full keys that went.

    Also checks the count returned equals the number of entries removed.
    """
    keys = [CacheKey(key=full_key) for full_key in full_keys]
    await add(adapter, *keys)
    count = await adapter.delete_by_pattern(pattern)
    removed = set(full_keys) - await live_full_keys(adapter, keys)
    assert count == len(removed), (count, removed)
    return removed


async def test_star_matches_any_suffix(adapter: CacheAdapter) -> None:
    removed = await removed_by(adapter, "user:*", ["user:1", "user:22", "users:1", "xuser:1", "user"])

    assert removed == {"user:1", "user:22"}


async def test_star_matches_the_empty_sequence(adapter: CacheAdapter) -> None:
    assert await removed_by(adapter, "user:*", ["user:", "user"]) == {"user:"}


async def test_star_matches_across_colons(adapter: CacheAdapter) -> None:
    assert await removed_by(adapter, "user:*", ["user:1:profile", "user:1:a:b:c"]) == {
        "user:1:profile",
        "user:1:a:b:c",
    }


async def test_star_in_the_middle(adapter: CacheAdapter) -> None:
    removed = await removed_by(adapter, "temp:*:data", ["temp:1:data", "temp:a:b:data", "temp:1:data:x", "temp:data"])

    assert removed == {"temp:1:data", "temp:a:b:data"}


async def test_lone_star_matches_every_entry(adapter: CacheAdapter) -> None:
    assert await removed_by(adapter, "*", ["a", "b:c", "ü"]) == {"a", "b:c", "ü"}


async def test_pattern_must_match_the_whole_key(adapter: CacheAdapter) -> None:
    assert await removed_by(adapter, "user", ["user:1", "a:user", "user"]) == {"user"}


async def test_pattern_does_not_match_a_suffix_of_the_key(adapter: CacheAdapter) -> None:
    assert await removed_by(adapter, "ser:*", ["user:1"]) == set()


async def test_question_mark_matches_exactly_one_character(adapter: CacheAdapter) -> None:
    assert await removed_by(adapter, "k?", ["k", "k1", "kx", "k12"]) == {"k1", "kx"}


async def test_bracket_set_matches_one_listed_character(adapter: CacheAdapter) -> None:
    assert await removed_by(adapter, "k[abc]", ["ka", "kc", "kd", "kab", "k"]) == {"ka", "kc"}


async def test_bracket_negation_matches_one_unlisted_character(adapter: CacheAdapter) -> None:
    assert await removed_by(adapter, "k[^a]", ["ka", "kb", "kz", "k", "kbb"]) == {"kb", "kz"}


async def test_bracket_range_matches_one_character_in_the_range(adapter: CacheAdapter) -> None:
    assert await removed_by(adapter, "k[a-c]", ["ka", "kb", "kc", "kd", "k-"]) == {"ka", "kb", "kc"}


async def test_negated_range(adapter: CacheAdapter) -> None:
    assert await removed_by(adapter, "k[^a-c]", ["ka", "kc", "kd", "k1"]) == {"kd", "k1"}


async def test_match_is_case_sensitive(adapter: CacheAdapter) -> None:
    assert await removed_by(adapter, "User:*", ["user:1", "User:1"]) == {"User:1"}


async def test_backslash_escapes_star(adapter: CacheAdapter) -> None:
    assert await removed_by(adapter, r"a\*b", ["a*b", "axb", "ab"]) == {"a*b"}


async def test_backslash_escapes_question_mark(adapter: CacheAdapter) -> None:
    assert await removed_by(adapter, r"a\?b", ["a?b", "axb"]) == {"a?b"}


async def test_backslash_escapes_brackets(adapter: CacheAdapter) -> None:
    assert await removed_by(adapter, r"a\[b\]", ["a[b]", "ab"]) == {"a[b]"}


async def test_backslash_escapes_backslash(adapter: CacheAdapter) -> None:
    assert await removed_by(adapter, r"a\\b", ["a\\b", "ab", "a\\\\b"]) == {"a\\b"}


async def test_backslash_escapes_inside_brackets(adapter: CacheAdapter) -> None:
    assert await removed_by(adapter, r"a[\]x]", ["a]", "ax", "a\\", "ay"]) == {"a]", "ax"}


async def test_backslash_before_an_ordinary_character_matches_that_character(adapter: CacheAdapter) -> None:
    assert await removed_by(adapter, r"\a\b", ["ab", "\\a\\b"]) == {"ab"}


async def test_pattern_matches_namespaced_full_key(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="1", namespace="user"), CacheKey(key="2", namespace="user", tags=["t"]))

    assert await adapter.delete_by_pattern("user:*") == 2
    assert (await adapter.get_stats()).total_entries == 0


async def test_pattern_spans_namespace_and_key(adapter: CacheAdapter) -> None:
    await add(
        adapter,
        CacheKey(key="bc", namespace="a"),
        CacheKey(key="a:bd"),
        CacheKey(key="c", namespace="a:b"),
        CacheKey(key="x", namespace="a"),
    )

    assert await adapter.delete_by_pattern("a:b*") == 3
    assert await adapter.exists(CacheKey(key="x", namespace="a"))


async def test_question_mark_matches_one_utf8_byte(adapter: CacheAdapter) -> None:
    # "ü" is two bytes in UTF-8, so it takes two "?".
    assert await removed_by(adapter, "k?", ["kü", "ka"]) == {"ka"}


async def test_two_question_marks_match_a_two_byte_character(adapter: CacheAdapter) -> None:
    assert await removed_by(adapter, "k??", ["kü", "ka"]) == {"kü"}


async def test_four_question_marks_match_an_emoji(adapter: CacheAdapter) -> None:
    removed = await removed_by(adapter, "k????", ["k😀", "kü", "kab", "kabcd"])

    assert removed == {"k😀", "kabcd"}


async def test_question_marks_count_bytes_within_a_word(adapter: CacheAdapter) -> None:
    assert await removed_by(adapter, "gr??ße", ["grüße", "graaße", "grüsse", "graße"]) == {"grüße", "graaße"}


async def test_literal_non_ascii_in_pattern_matches(adapter: CacheAdapter) -> None:
    assert await removed_by(adapter, "grüße:*", ["grüße:1", "grusse:1"]) == {"grüße:1"}


ODD_KEYS = [
    pytest.param("a:b:c", id="colons"),
    pytest.param("a*b", id="star"),
    pytest.param("a?b", id="question"),
    pytest.param("a[xy]b", id="brackets"),
    pytest.param("a[^x]b", id="negated_brackets"),
    pytest.param("a\\*b", id="backslash_star"),
    pytest.param("{tag}x", id="braces"),
    pytest.param("}{", id="reversed_braces"),
    pytest.param("with space", id="space"),
    pytest.param("new\nline", id="newline"),
    pytest.param("tab\there", id="tab"),
    pytest.param("ünïcödé 😀", id="unicode"),
    pytest.param("*", id="lone_star"),
    pytest.param("\\", id="lone_backslash"),
]

DECOYS = ["aXb", "axb", "a*b", "a?b", "ab", "a[xy]b", "a\\b", "axyb", "x", "a:b", "tag", "{tag}"]


@pytest.mark.parametrize("odd", ODD_KEYS)
async def test_escaped_pattern_matches_only_the_literal_key(adapter: CacheAdapter, odd: str) -> None:
    decoys = [decoy for decoy in DECOYS if decoy != odd]
    keys = [CacheKey(key=odd)] + [CacheKey(key=decoy) for decoy in decoys]
    await add(adapter, *keys)

    assert await adapter.delete_by_pattern(glob_escape(odd)) == 1
    assert await live_full_keys(adapter, keys) == set(decoys)


@pytest.mark.parametrize("odd", ODD_KEYS)
async def test_escaped_prefix_pattern_matches_the_literal_namespace(adapter: CacheAdapter, odd: str) -> None:
    await add(adapter, CacheKey(key="k", namespace=odd), CacheKey(key="k", namespace="a"))

    assert await adapter.delete_by_pattern(glob_escape(odd) + ":*") == 1
    assert await adapter.exists(CacheKey(key="k", namespace="a"))
    assert not await adapter.exists(CacheKey(key="k", namespace=odd))


async def test_delete_by_pattern_with_no_match_returns_0(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="a"))

    assert await adapter.delete_by_pattern("nothing:*") == 0
    assert await adapter.exists(CacheKey(key="a"))


async def test_delete_by_pattern_on_empty_cache_returns_0(adapter: CacheAdapter) -> None:
    assert await adapter.delete_by_pattern("*") == 0


async def test_delete_by_pattern_does_not_count_expired_entries(adapter: CacheAdapter) -> None:
    await add_expired(adapter, CacheKey(key="temp:old"))
    await add(adapter, CacheKey(key="temp:live"))

    assert await adapter.delete_by_pattern("temp:*") == 1


async def test_delete_by_pattern_removes_tag_memberships(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="temp:1", tags=["t"]))
    await adapter.delete_by_pattern("temp:*")
    await add(adapter, CacheKey(key="temp:1"))

    assert await adapter.delete_by_tags(["t"]) == 0
    assert await adapter.exists(CacheKey(key="temp:1"))


async def test_delete_by_pattern_removes_namespace_memberships(adapter: CacheAdapter) -> None:
    await add(adapter, CacheKey(key="1", namespace="temp"))
    await adapter.delete_by_pattern("temp:*")
    await add(adapter, CacheKey(key="temp:1"))

    assert await adapter.delete_by_namespace("temp") == 0
    assert await adapter.exists(CacheKey(key="temp:1"))


async def test_delete_by_pattern_touches_only_this_cache(
    adapter: CacheAdapter, make_separate_cache: MakeSeparateCache
) -> None:
    other = await make_separate_cache()
    await add(adapter, CacheKey(key="user:1"))
    await add(other, CacheKey(key="user:1"), CacheKey(key="user:2"))

    assert await adapter.delete_by_pattern("user:*") == 1
    assert await other.exists(CacheKey(key="user:1"))
    assert (await other.get_stats()).total_entries == 2


async def test_many_matches_are_all_removed_and_counted(adapter: CacheAdapter) -> None:
    keys = [CacheKey(key=f"bulk:{i}", tags=[f"t{i % 3}"]) for i in range(1200)]
    await adapter.set_many((key, i) for i, key in enumerate(keys))
    await add(adapter, CacheKey(key="keep:1"))

    assert await adapter.delete_by_pattern("bulk:*") == 1200
    assert (await adapter.get_stats()).total_entries == 1
    assert await adapter.delete_by_tags(["t0", "t1", "t2"]) == 0
