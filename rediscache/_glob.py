"""Redis glob matching in Python, with exactly the results of Redis's own matcher.

Redis matches ``KEYS``, ``SCAN ... MATCH`` (and ``PSUBSCRIBE``) patterns with ``stringmatchlen`` in
``src/util.c``. Adapters that keep keys outside Redis (the in-process adapter, the L1) must answer
"does this key match?" the same way, or a pattern invalidation removes a different set of entries
depending on where they live. This module gives that answer.

Guarantee: for every pattern ``p`` and key ``k`` (both ``str``, compared as their UTF-8 bytes),
``glob_match(p, k)`` is what Redis 7.0.15 answers for ``SCAN 0 MATCH <P><p>`` about the key
``<P><k>``, where ``<P>`` is any non-empty prefix free of ``* ? [ \\`` -- which is how an adapter that
namespaces its keys uses patterns. For every non-empty key this is also exactly
``stringmatchlen(p, k)``; the one difference is the empty key, see below.

The dialect, byte by byte (there is no notion of characters: ``?`` matches one *byte*, so ``ü``,
two bytes in UTF-8, needs ``??``):

* ``*`` any run of bytes, ``?`` one byte, any other byte itself;
* ``\\x`` the byte ``x`` literally; a lone ``\\`` at the end of the pattern is a literal ``\\``;
* ``[...]`` one byte from a set: ``[abc]``, ranges ``[a-c]`` (``[c-a]`` is the same range), negation
  ``[^...]`` only (``[!a]`` is the set ``{!, a}``), and ``\\`` escapes inside it (``[\\]]`` is ``]``).
  ``]`` right after ``[`` or ``[^`` closes the set: ``[]`` and ``[]]`` match nothing, ``[^]`` matches
  any byte. A ``[`` never closed reads to the end of the pattern as if closed there (``[ab`` is
  ``[ab]``, ``[^`` any byte, a lone trailing ``[`` nothing). In ``[a-c-e]`` the second ``-`` is a
  member; ``[a-`` is ``{a, -}``. Range bounds are raw bytes compared as C ``char``, which is *signed*
  on x86-64 (the server this was checked against): ``[a-ü]`` is the range from ``ü``'s first byte
  0xC3 (-61) to ``a`` (97), so it matches ``A`` and bytes 0x00-0x61 and 0xC3-0xFF, but not ``b``.
  Ranges whose two bounds are both ASCII, or both non-ASCII, do not depend on the signedness.
* Nesting limit: Redis gives up (answers "no match") once its recursion passes 1000 levels, which
  happens exactly when the pattern has more than 1000 runs of ``*`` and the 1001st run is not the
  last thing in the pattern. ``a*`` repeated 1001 times can match; repeated 1002 times never does.
  (This limit is the CVE-2024-31228 fix, which the Debian 7.0.15 package has; see ``_MAX_NESTING``.)
* The empty key: Redis's bare ``stringmatchlen("*", "")`` is false (its loop needs a byte to look at),
  while ``SCAN MATCH *`` returns the empty key anyway because it skips matching for exactly ``*``
  (but ``**`` then does not return it). Under a prefix, a pattern matches the empty key exactly when
  it is made of ``*`` only (or is empty), which is what ``glob_match`` answers. ``stringmatchlen`` here
  keeps the bare behaviour.

How it is fast: ``compile_glob`` parses the pattern once, as Redis does, into a list of tokens: a
run of ``*`` or a set of bytes. Outside the nesting limit, Redis's result is then the plain glob
semantics of that list (every non-``*`` token takes exactly one byte; its ``skipLongerMatches`` flag
only prunes the search). The tokens between two ``*`` form fixed-length segments, matched by
``bytes`` operations when literal and by a small ``re`` bytes regex otherwise. The first segment is
anchored at the start, the last at the end, and each middle one is placed at its leftmost
occurrence after the previous: with fixed-length segments the leftmost place never loses a match
a later one would have found. The work is at most proportional to the key's length times the
pattern's, unlike a single ``.*a.*b...`` regex, whose backtracking is polynomial with the number
of ``*`` as exponent (seconds for a 120-byte key and six stars).

``stringmatchlen`` is the faithful port of the C function (as an explicit stack rather than
recursion, so 1000 levels fit in Python); the tests check the compiled matcher against it and both
against a real server.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence

__all__ = ["compile_glob", "glob_match", "literal_prefix", "stringmatchlen"]

_STAR = 0x2A  # *
_QUESTION = 0x3F  # ?
_OPEN = 0x5B  # [
_CLOSE = 0x5D  # ]
_CARET = 0x5E  # ^
_DASH = 0x2D  # -
_BACKSLASH = 0x5C  # \

# stringmatchlen_impl returns 0 when called with nesting > 1000. The limit came with the fix for
# CVE-2024-31228 (October 2024): the Debian 7.0.15 package carries it (checked on a live server), as
# do the upstream releases with that fix; a vanilla upstream 7.0.15 build, which predates it, does not.
_MAX_NESTING = 1000

_ALL_BYTES = (1 << 256) - 1


def _signed(byte: int) -> int:
    """The value of ``byte`` as a signed C ``char`` (x86-64)."""
    return byte - 256 if byte >= 0x80 else byte


def _range_mask(first: int, last: int) -> int:
    """The 256-bit mask of the bytes between ``first`` and ``last`` (either way round) as signed chars."""
    start, end = sorted((_signed(first), _signed(last)))
    mask = 0
    for value in range(start, end + 1):
        mask |= 1 << (value & 0xFF)
    return mask


# ---------------------------------------------------------------------------------------------------
# The faithful port.
# ---------------------------------------------------------------------------------------------------

_RETURNED = -1  # _activation's "rest" when the activation returned rather than reached a '*'


def _activation(pattern: bytes, string: bytes, p: int, s: int) -> tuple[bool, int, int]:
    """One call of ``stringmatchlen_impl`` from ``pattern[p:]``, ``string[s:]``, up to a ``*``.

    Returns ``(result, _RETURNED, s)`` when the call returns ``result`` by itself, or
    ``(False, rest, s)`` when it reaches a ``*`` that is not the end of the pattern: the call then
    loops over ``string[s:]`` matching ``pattern[rest:]``, which the caller drives. Reads at
    ``len(pattern)`` see the C string's terminating NUL, as Redis's do (its patterns are sds).
    """
    n = len(pattern)
    m = len(string)

    def at(i: int) -> int:
        return pattern[i] if i < n else 0

    while p < n and s < m:  # while(patternLen && stringLen)
        c = pattern[p]
        if c == _STAR:
            while p + 1 < n and pattern[p + 1] == _STAR:
                p += 1
            if p + 1 == n:  # patternLen == 1
                return True, _RETURNED, s
            return False, p + 1, s
        if c == _QUESTION:
            s += 1
        elif c == _OPEN:
            p += 1
            negate = at(p) == _CARET
            if negate:
                p += 1
            matched = False
            sc = string[s]
            while True:
                if at(p) == _BACKSLASH and n - p >= 2:
                    p += 1
                    if pattern[p] == sc:
                        matched = True
                elif at(p) == _CLOSE:
                    break
                elif p == n:
                    p -= 1
                    break
                elif n - p >= 3 and pattern[p + 1] == _DASH:
                    start, end = _signed(pattern[p]), _signed(pattern[p + 2])
                    if start > end:
                        start, end = end, start
                    if start <= _signed(sc) <= end:
                        matched = True
                    p += 2
                elif pattern[p] == sc:
                    matched = True
                p += 1
            if negate:
                matched = not matched
            if not matched:
                return False, _RETURNED, s
            s += 1
        else:
            if c == _BACKSLASH and n - p >= 2:
                p += 1
            if pattern[p] != string[s]:
                return False, _RETURNED, s
            s += 1
        p += 1
        if s == m:
            while at(p) == _STAR:
                p += 1
            break
    return p == n and s == m, _RETURNED, s


def stringmatchlen(pattern: bytes, string: bytes) -> bool:
    """Redis's ``stringmatchlen(pattern, string, nocase=0)``, ported from 7.0.15's ``src/util.c``.

    The C recursion (one level per ``*``, bounded at 1000 levels) is an explicit stack here; the
    ``skipLongerMatches`` flag is shared by every level, as in C. Note ``stringmatchlen(b"*", b"")``
    is ``False``, as in Redis; ``glob_match`` differs from this only on the empty key.
    """
    skip_longer_matches = False
    # One [rest, s] per active '*' loop; the activation being run has nesting len(loops).
    loops: list[list[int]] = []
    p = s = 0
    while True:
        if len(loops) > _MAX_NESTING:  # if (nesting > 1000) return 0;
            result, rest = False, _RETURNED
        else:
            result, rest, s = _activation(pattern, string, p, s)
        if rest != _RETURNED:
            loops.append([rest, s])
            p = rest
            continue
        # Hand the result to the innermost '*' loop, which returns or tries the next position.
        while loops:
            if result:
                return True
            if skip_longer_matches:
                loops.pop()
                continue
            loop = loops[-1]
            loop[1] += 1
            if loop[1] < len(string):
                p, s = loop
                break
            skip_longer_matches = True
            loops.pop()
        else:
            return result


# ---------------------------------------------------------------------------------------------------
# The compiled matcher.
# ---------------------------------------------------------------------------------------------------

# A token is a run of '*' (None) or the 256-bit mask of the bytes one position accepts.
_Token = int | None


def _tokenize(pattern: bytes) -> list[_Token]:
    """Split ``pattern`` into tokens the way ``stringmatchlen_impl`` walks it (independent of the key)."""
    tokens: list[_Token] = []
    n = len(pattern)
    i = 0
    while i < n:
        c = pattern[i]
        if c == _STAR:
            while i + 1 < n and pattern[i + 1] == _STAR:
                i += 1
            tokens.append(None)
        elif c == _QUESTION:
            tokens.append(_ALL_BYTES)
        elif c == _OPEN:
            i += 1
            negate = i < n and pattern[i] == _CARET
            if negate:
                i += 1
            mask = 0
            while True:
                if i < n and pattern[i] == _BACKSLASH and n - i >= 2:
                    i += 1
                    mask |= 1 << pattern[i]
                elif i < n and pattern[i] == _CLOSE:
                    break
                elif i == n:  # unterminated: step back so the common i += 1 ends at n
                    i -= 1
                    break
                elif n - i >= 3 and pattern[i + 1] == _DASH:
                    mask |= _range_mask(pattern[i], pattern[i + 2])
                    i += 2
                else:
                    mask |= 1 << pattern[i]
                i += 1
            tokens.append(mask ^ _ALL_BYTES if negate else mask)
        else:
            if c == _BACKSLASH and n - i >= 2:
                i += 1
            tokens.append(1 << pattern[i])
        i += 1
    return tokens


def _regex_atom(mask: int) -> bytes:
    if mask == _ALL_BYTES:
        return b"."
    members = [b for b in range(256) if mask >> b & 1]
    if len(members) == 1:
        return b"\\x%02x" % members[0]
    parts: list[bytes] = []
    lo = prev = members[0]
    for b in [*members[1:], -2]:
        if b != prev + 1:
            parts.append(b"\\x%02x" % lo if lo == prev else b"\\x%02x-\\x%02x" % (lo, prev))
            lo = b
        prev = b
    return b"[" + b"".join(parts) + b"]"


class _Segment:
    """A run of one-byte tokens between two ``*``: fixed length, found by bytes ops or a regex."""

    __slots__ = ("length", "literal", "regex")

    def __init__(self, masks: Sequence[int]) -> None:
        self.length = len(masks)
        self.literal: bytes | None = None
        self.regex: re.Pattern[bytes] | None = None
        if all(mask & (mask - 1) == 0 for mask in masks):  # one byte each (empty sets never get here)
            self.literal = bytes(mask.bit_length() - 1 for mask in masks)
        else:
            self.regex = re.compile(b"".join(_regex_atom(mask) for mask in masks), re.DOTALL)

    def at(self, key: bytes, pos: int) -> bool:
        """Whether the segment matches ``key[pos:pos + length]`` (the caller checked it fits)."""
        if self.literal is not None:
            return key.startswith(self.literal, pos)
        assert self.regex is not None
        return self.regex.match(key, pos) is not None

    def find(self, key: bytes, pos: int, endpos: int) -> int:
        """The leftmost start ``>= pos`` of a match lying within ``key[:endpos]``, or -1."""
        if self.literal is not None:
            return key.find(self.literal, pos, endpos)
        assert self.regex is not None
        found = self.regex.search(key, pos, endpos)
        return -1 if found is None else found.start()


def _never(key: bytes) -> bool:
    return False


def _always(key: bytes) -> bool:
    return True


def _matcher(tokens: list[_Token]) -> Callable[[bytes], bool]:
    star_positions = [i for i, token in enumerate(tokens) if token is None]
    if len(star_positions) > _MAX_NESTING and star_positions[_MAX_NESTING] != len(tokens) - 1:
        # The 1001st '*' loop calls stringmatchlen_impl with nesting 1001 at every position, gets 0
        # each time, then sets skipLongerMatches: Redis answers "no" whatever the key.
        return _never
    if any(token == 0 for token in tokens):  # an empty set ([], []]) can never take a byte
        return _never

    if not star_positions:
        whole = _Segment([t for t in tokens if t is not None])
        literal, length = whole.literal, whole.length
        if literal is not None:
            return lambda key: key == literal

        def fixed(key: bytes) -> bool:
            return len(key) == length and whole.at(key, 0)

        return fixed

    segments: list[list[int]] = [[]]
    for token in tokens:
        if token is None:
            segments.append([])
        else:
            segments[-1].append(token)
    head, tail = _Segment(segments[0]), _Segment(segments[-1])
    middles = [_Segment(masks) for masks in segments[1:-1]]  # never empty: '*' runs are collapsed
    minimum = head.length + tail.length + sum(seg.length for seg in middles)

    if not middles and tail.length == 0 and head.literal is not None:  # "user:*", "*"
        prefix = head.literal
        return (lambda key: key.startswith(prefix)) if prefix else _always

    def starred(key: bytes) -> bool:
        size = len(key)
        if size < minimum or not head.at(key, 0):
            return False
        end = size - tail.length
        if tail.length and not tail.at(key, end):
            return False
        pos = head.length
        for segment in middles:
            found = segment.find(key, pos, end)
            if found < 0:
                return False
            pos = found + segment.length
        return True

    return starred


@functools.lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> Callable[[bytes], bool]:
    """A predicate on UTF-8 key bytes that answers as Redis would for the glob ``pattern``.

    Cached, so calling it for each key of a scan costs one dictionary lookup. The predicate's
    answers are ``glob_match``'s: Redis's ``SCAN MATCH`` result for any non-empty key, and for the
    empty key ``True`` exactly when the pattern is made of ``*`` only (see the module docstring).
    ``pattern`` must be encodable as UTF-8.
    """
    return _matcher(_tokenize(pattern.encode("utf-8")))


def glob_match(pattern: str, key: str) -> bool:
    """Whether ``key`` matches the Redis glob ``pattern``, both compared as UTF-8 bytes."""
    return compile_glob(pattern)(key.encode("utf-8"))


def literal_prefix(pattern: str) -> str:
    """The literal start of ``pattern``: up to its first unescaped ``*``, ``?`` or ``[``, unescaped.

    Every key the pattern matches starts with it (in UTF-8 bytes, hence also as a ``str``), so a
    lookup may be restricted to keys with this prefix. ``literal_prefix("user:\\\\*:*")`` is
    ``"user:*:"``; a lone ``\\`` at the end is a literal ``\\``, as in Redis.

    The prefix always ends on a character boundary: it stops only at an ASCII byte, which never
    occurs inside a multi-byte UTF-8 sequence, and an escape ``\\`` before a multi-byte character
    takes its first byte, after which the continuation bytes are literals too.
    """
    raw = pattern.encode("utf-8")
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c in (_STAR, _QUESTION, _OPEN):
            break
        if c == _BACKSLASH and n - i >= 2:
            i += 1
        out.append(raw[i])
        i += 1
    return out.decode("utf-8")
