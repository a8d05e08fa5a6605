"""Fingerprint stage: Article → Signature, several MinHash kinds per article.

One signature kind cannot serve both verbatim republication and spinning, so each article gets:
- ``w3``: word 3-grams, indexed with many short bands: finds republished, scraped and excerpted copies
  (low Jaccard, high containment) and harsh spins;
- ``c1``: the set of content words (every word but the commonest of the main languages,
  ``pipeline.dedup.frequent``), indexed with longer bands: finds spun copies whose n-grams are broken by
  substitution but whose vocabulary mostly survives. The commonest words are left out because every article
  holds them: in a set of all words (the ``w1`` kind this replaced) they made unrelated articles look alike
  (Jaccard 0.13 on the benchmarks' Zipf text; 0.028 for content words), so a new article shared a band with
  ~1,130 of 100,000 stored ones (the bucket caps kept 57 of them); ``c1`` shares one with ~100 (43 kept). On
  the dev WARC ``c1`` gives 68 false candidate pairs where ``w1`` gave 338, and finds 589 true pairs where
  ``w1`` found 570 (100 of 101 spun pairs, against 96). With 4 rows a band it would share one with ~3 of
  100,000, but keep a harsh spin only two times in three (below).
Permutations are built once per process and hashing uses xxh32, so a signature costs a few hundred µs.
The values are datasketch's ``MinHash`` (scheme ``affine32``) computed in one numpy pass without the object;
the permutations are drawn here the way datasketch draws them (``numpy.random.RandomState(seed)``: odd
multipliers ``a``, offsets ``b``), because importing datasketch pulls in scipy and cost 0.7 s of every
``reprint`` start. ``tests/dedup/test_match.py`` checks both against datasketch itself.

``FINGERPRINT_VERSION`` names what the kinds are; a store records the version its signatures were made with,
and one made with another (``w1``) is brought up to this one by ``reprint index refingerprint``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from functools import lru_cache

import numpy as np
import xxhash

from pipeline.dedup.frequent import WORDS as FREQUENT_WORDS
from pipeline.records import Article, Signature
from pipeline.text import tokenize, trigram_set

SCHEME = "affine32"
SEED = 1

# kind → (shingle size, LSH bands, rows per band); bands * rows <= num_perm. ``c1`` has 3 rows a band where
# ``w1`` had 4: content words share less than all words do, and 32 x 3 keeps a harsh spin (40% of its content
# words swapped: Jaccard 0.43) a candidate with probability 0.93 (32 x 4: 0.67).
KINDS: dict[str, tuple[int, int, int]] = {
    "w3": (3, 64, 2),
    "c1": (1, 32, 3),
}
#: The version of what ``KINDS`` computes (1: ``w3`` and ``w1``; 2: ``w3`` and ``c1``). A store keeps the
#: version of its signatures (``pipeline.dedup.refingerprint``).
FINGERPRINT_VERSION = 2


def _hash(data: bytes) -> int:
    return xxhash.xxh32_intdigest(data)


@lru_cache(maxsize=4)
def _permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """The affine permutations ``h → a*h + b (mod 2**32)`` of every signature (built once per process)."""
    gen = np.random.RandomState(SEED)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)  # odd: a bijection
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


# MurmurHash3's 32-bit finalizer, which datasketch's affine32 scheme applies before its permutations
_FMIX32 = (16, np.uint32(0x85EBCA6B), 13, np.uint32(0xC2B2AE35), 16)
_EMPTY = np.uint32(0xFFFFFFFF)


def _fmix32(hv: np.ndarray) -> np.ndarray:
    s1, m1, s2, m2, s3 = _FMIX32
    hv = hv ^ (hv >> np.uint32(s1))
    hv = hv * m1
    hv = hv ^ (hv >> np.uint32(s2))
    hv = hv * m2
    return hv ^ (hv >> np.uint32(s3))


def _digests(items: AbstractSet[str]) -> np.ndarray:
    """xxh32 of every item's UTF-8 bytes (a lone surrogate is kept as its own bytes)."""
    try:
        return np.fromiter(map(xxhash.xxh32_intdigest, map(str.encode, items)), dtype=np.uint32, count=len(items))
    except UnicodeEncodeError:
        return np.fromiter((xxhash.xxh32_intdigest(s.encode("utf-8", "surrogatepass")) for s in items),
                           dtype=np.uint32, count=len(items))


def minhash_of(items: AbstractSet[str], num_perm: int) -> np.ndarray:
    """MinHash values of a set of strings, as uint32: datasketch's affine32 MinHash with xxh32, the
    same values ``MinHash.update_batch`` gives, computed in one numpy pass without the object."""
    a, b = _permutations(num_perm)
    if not items:
        return np.full(num_perm, _EMPTY, dtype=np.uint32)
    hv = _fmix32(_digests(items))
    with np.errstate(over="ignore"):
        return (hv[:, None] * a + b).min(axis=0)  # wraps modulo 2**32, as the scheme intends


def content_words(tokens: Sequence[str]) -> set[str]:
    """The distinct words of a text but the commonest ones (``pipeline.dedup.frequent``): what ``c1`` hashes. A
    text of common words only keeps them all: an empty set's MinHash would put every such text in one bucket."""
    words = set(tokens)
    return words - FREQUENT_WORDS or words


#: kind → the set of strings its MinHash is taken over
_ITEMS: dict[str, Callable[[Sequence[str]], AbstractSet[str]]] = {"w3": trigram_set, "c1": content_words}


def fingerprint_tokens(tokens: Sequence[str], num_perm: int = 128) -> Signature:
    """Signature of an already tokenized text."""
    return Signature({kind: minhash_of(_ITEMS[kind](tokens), num_perm) for kind in KINDS}, len(tokens))


def fingerprint(article: Article, num_perm: int = 128) -> Signature:
    """Signature of an article's body text (title excluded: republishers rewrite titles)."""
    return fingerprint_tokens(tokenize(article.text), num_perm)


def estimate_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a == b)) / len(a)
