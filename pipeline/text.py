"""Tokens and shingles shared by fingerprinting and verification.

Words are lower-cased ``\\w+`` runs; scripts written without spaces (Han, kana, Thai) are split into
single characters so that n-grams over them still mean something.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from functools import lru_cache

_WORD = re.compile(r"\w+", re.UNICODE)
_NO_SPACE_SCRIPT = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0e7f]")


@lru_cache(maxsize=1024)
def tokenize(text: str) -> tuple[str, ...]:
    """Lower-cased word tokens, with unspaced scripts split into characters.

    Cached: fingerprinting, verification and every re-decision of a cluster ask for the same texts.
    """
    if not _NO_SPACE_SCRIPT.search(text):
        return tuple(_WORD.findall(text.lower()))
    tokens: list[str] = []
    for word in _WORD.findall(text.lower()):
        if _NO_SPACE_SCRIPT.search(word):
            tokens.extend(word)
        else:
            tokens.append(word)
    return tuple(tokens)


def shingles(tokens: Sequence[str], n: int) -> set[str]:
    """The set of word n-grams, joined by a space; a text shorter than n gives one shingle."""
    if len(tokens) < n:
        return {" ".join(tokens)} if tokens else set()
    # n shifted views zipped (shorter ones end it): twice as fast as slicing out every n-gram
    return set(map(" ".join, zip(*(tokens[i:] for i in range(n)), strict=False)))


@lru_cache(maxsize=1024)
def _cached_trigrams(tokens: tuple[str, ...]) -> frozenset[str]:
    return frozenset(shingles(tokens, 3))


def trigram_set(tokens: Sequence[str]) -> AbstractSet[str]:
    """``shingles(tokens, 3)``, cached for the token tuples ``tokenize`` returns: the fingerprint hashes
    it, and verification and re-clustering compare it again and again."""
    return _cached_trigrams(tokens) if isinstance(tokens, tuple) else shingles(tokens, 3)


@lru_cache(maxsize=256)
def token_starts(text: str) -> tuple[int, ...]:
    """Character offset of every token ``tokenize`` yields, in the same order (cached: the
    canonicalizer asks for the same texts on every re-decision of a cluster)."""
    if not _NO_SPACE_SCRIPT.search(text):
        return tuple(map(re.Match.start, _WORD.finditer(text)))
    starts: list[int] = []
    for match in _WORD.finditer(text):
        word = match.group().lower()
        if _NO_SPACE_SCRIPT.search(word):
            starts.extend(range(match.start(), match.start() + len(word)))
        else:
            starts.append(match.start())
    return tuple(starts)
