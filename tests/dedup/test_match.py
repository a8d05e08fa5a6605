"""Fingerprint and match stages against datasketch, whose MinHash and banding they reimplement for speed."""

from __future__ import annotations

import random

import numpy as np
from datasketch import MinHash, MinHashLSH

from pipeline.dedup.fingerprint import KINDS, SCHEME, _hash, _prototype, fingerprint_tokens, minhash_of
from pipeline.dedup.index import LSHIndex
from pipeline.records import Signature


def _datasketch_values(items: set[str], num_perm: int = 128) -> np.ndarray:
    m = MinHash(num_perm=num_perm, hashfunc=_hash, permutations=_prototype(num_perm).permutations, scheme=SCHEME)
    if items:
        m.update_batch([s.encode("utf-8", "surrogatepass") for s in items])
    return np.asarray(m.hashvalues, dtype=np.uint32)


def test_minhash_values_are_datasketchs():
    rng = random.Random(11)
    words = ["harbour", "déjà", "ферри", "橋", "x", "\ud800lone"]  # non-ASCII and a lone surrogate
    for n in (0, 1, 2, 50, 900):
        items = {" ".join(rng.choice(words) + str(rng.randint(0, 99)) for _ in range(3)) for _ in range(n)}
        assert np.array_equal(minhash_of(items, 128), _datasketch_values(items))


def _signatures(count: int, seed: int) -> list[Signature]:
    """Signatures of random texts drawn from a small vocabulary, so that many share bands."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(60)]
    base = [rng.choice(vocab) for _ in range(120)]
    sigs = []
    for _ in range(count):
        tokens = [w if rng.random() < 0.8 else rng.choice(vocab) for w in base]
        sigs.append(fingerprint_tokens(tokens, 128))
    return sigs


def test_index_candidates_match_datasketch_lsh():
    sigs = _signatures(60, seed=5)
    ours = LSHIndex(128)
    theirs = {kind: MinHashLSH(num_perm=128, params=(bands, rows)) for kind, (_n, bands, rows) in KINDS.items()}
    total = 0
    for i, sig in enumerate(sigs):
        expected: set[int] = set()
        for kind, lsh in theirs.items():
            m = MinHash(hashvalues=sig.values[kind], scheme=SCHEME)
            expected |= set(lsh.query(m))
            lsh.insert(i, m, check_duplication=False)
        got = ours.query_insert(i, sig)
        assert got == expected
        total += len(got)
    assert total > 0  # the fixture does produce collisions


def test_index_remove_forgets_the_article():
    sigs = _signatures(5, seed=9)
    index = LSHIndex(128)
    for i, sig in enumerate(sigs):
        index.insert(i, sig)
    assert 0 in index.query(sigs[0]) and len(index) == 5
    index.remove(0)
    assert 0 not in index.query(sigs[0]) and 0 not in index and len(index) == 4
    index.insert(0, sigs[0])
    assert 0 in index.query(sigs[0])
