"""Fingerprint stage: Article → Signature, several MinHash kinds per article.

One signature kind cannot serve both verbatim republication and spinning, so each article gets:
- ``w3``: word 3-grams, indexed with many short bands: finds republished, scraped and excerpted copies
  (low Jaccard, high containment) and harsh spins;
- ``w1``: the set of words, indexed with longer bands: finds spun copies whose n-grams are broken by
  substitution but whose vocabulary mostly survives.
Permutations are built once per process and hashing uses xxh32, so a signature costs a few hundred µs.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import xxhash
from datasketch import MinHash

from .records import Article, Signature
from .text import shingles, tokenize

SCHEME = "affine32"
SEED = 1

# kind → (shingle size, LSH bands, rows per band); bands * rows <= num_perm
KINDS: dict[str, tuple[int, int, int]] = {
    "w3": (3, 64, 2),
    "w1": (1, 32, 4),
}


def _hash(data: bytes) -> int:
    return xxhash.xxh32_intdigest(data)


@lru_cache(maxsize=4)
def _prototype(num_perm: int) -> MinHash:
    """A MinHash whose permutations every signature reuses (building them costs ~150 µs each time)."""
    return MinHash(num_perm=num_perm, seed=SEED, hashfunc=_hash, scheme=SCHEME)


def minhash_of(items: set[str], num_perm: int) -> np.ndarray:
    """MinHash values of a set of strings, as uint32."""
    proto = _prototype(num_perm)
    m = MinHash(num_perm=num_perm, hashfunc=_hash, permutations=proto.permutations, scheme=SCHEME)
    if items:
        m.update_batch([s.encode("utf-8", "surrogatepass") for s in items])
    return np.asarray(m.hashvalues, dtype=np.uint32)


def fingerprint_tokens(tokens: list[str], num_perm: int = 128) -> Signature:
    """Signature of an already tokenized text."""
    values = {kind: minhash_of(shingles(tokens, n), num_perm) for kind, (n, _b, _r) in KINDS.items()}
    return Signature(values, len(tokens))


def fingerprint(article: Article, num_perm: int = 128) -> Signature:
    """Signature of an article's body text (title excluded: republishers rewrite titles)."""
    return fingerprint_tokens(tokenize(article.text), num_perm)


def estimate_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a == b)) / len(a)
