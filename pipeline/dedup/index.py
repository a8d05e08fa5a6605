"""Match stage: MinHash-LSH indexes over every signature kind, and the filter candidates pass before any text.

``query_insert`` returns every indexed article that collides with the signature in any band of any kind: a
candidate set built for recall; precision is the verifier's job. Banding is datasketch's (band ``i`` of a kind
holds rows ``i*r .. i*r+r-1``). Two indexes implement it (a third, shared through Redis, is
``pipeline.shared.redis_index``):

- ``StoreLSHIndex`` (the default): the buckets live in the store, in the table ``lsh_bands`` keyed by
  (band key, article), written in the same transaction as the article. Nothing is loaded at start-up, so
  ``reprint ingest one.html`` costs the same against a million stored articles as against none, and the index
  can never disagree with the store after a crash.
- ``LSHIndex``: plain dicts in this process (tests, small experiments).

**Capped buckets.** A bucket keeps at most ``BUCKET_CAP`` articles. A story carried by 2,000 sites puts all
its verbatim copies in the same buckets; without a cap every copy would be a candidate of every later one
(quadratic), and the buckets would grow with the story. The first ``BUCKET_CAP`` copies stand for the rest:
a later copy finds them, and through them the story. A bucket only fills up with near-identical band values,
so a copy that differs (a spin, a trim) still lands in buckets of its own.

**The candidate filter** (``screen``): each candidate's stored signature gives an estimate of its word
3-gram Jaccard with the new article (the share of equal MinHash values). A verified relation needs an exact
3-gram Jaccard of at least ``verify.MIN_JACCARD3`` (0.1); with 128 values the estimate falls below
``SCREEN_JACCARD3`` (0.02) for such a pair with a probability under 0.2%, while unrelated articles, which
share almost no 3-grams, almost never reach it. Of what passes, at most ``VERIFY_MAX`` candidates, the
closest first, are aligned: an article is related to a story through its closest copies, and the story's
decision judges every member against its own references (``deduplicator``), so more alignments would add
cost, not relations.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import xxhash

from pipeline.dedup.fingerprint import KINDS
from pipeline.records import Signature

#: Articles a bucket keeps (see the module docstring).
BUCKET_CAP = 8
#: Estimated word 3-gram Jaccard below which a candidate is dropped before any text is read.
SCREEN_JACCARD3 = 0.02
#: Candidates aligned per new article, the closest first.
VERIFY_MAX = 16

_SIGNED = np.int64(-(2**63))


def band_keys(sig: Signature, num_perm: int | None = None) -> list[int]:
    """The 64-bit (signed) key of every band of every kind the signature has, in a fixed order.

    ``xxh64`` of the band's rows as little-endian uint32, seeded with the kind's position and the band's, the
    same hashing as the Redis index's bucket addresses.
    """
    out: list[int] = []
    for kind_index, (kind, (_n, bands, rows)) in enumerate(KINDS.items()):
        values = sig.values.get(kind)
        if values is None:
            continue
        if num_perm is not None and len(values) != num_perm:
            raise ValueError(f"signature kind {kind} has {len(values)} values, index expects {num_perm}")
        data = np.ascontiguousarray(values, dtype="<u4").tobytes()
        step = 4 * rows
        for band in range(bands):
            h = xxhash.xxh64_intdigest(data[band * step : (band + 1) * step], seed=(kind_index << 16) | band)
            out.append(h - (1 << 64) if h >= 1 << 63 else h)
    return out


def _check(num_perm: int) -> None:
    for kind, (_n, bands, rows) in KINDS.items():
        if bands * rows > num_perm:
            raise ValueError(f"kind {kind}: {bands} bands x {rows} rows exceed num_perm={num_perm}")


def screen(sig: Signature, candidates: dict[int, Signature], *, threshold: float = SCREEN_JACCARD3,
           most: int = VERIFY_MAX) -> list[int]:
    """The candidates worth aligning: estimated 3-gram Jaccard at least ``threshold``, the closest ``most``
    first (ties by id, so the choice never depends on the order they were found in)."""
    mine = sig.values.get("w3")
    if mine is None:
        return sorted(candidates)[:most]
    scored = []
    for article_id, other in candidates.items():
        theirs = other.values.get("w3")
        if theirs is None or len(theirs) != len(mine):
            continue
        estimate = float(np.count_nonzero(mine == theirs)) / len(mine)
        if estimate >= threshold:
            scored.append((-estimate, article_id))
    scored.sort()
    return [article_id for _e, article_id in scored[:most]]


class StoreLSHIndex:
    """The LSH buckets in the store's ``lsh_bands`` table; query-then-insert runs in the caller's unit."""

    def __init__(self, store: object, num_perm: int = 128, *, cap: int = BUCKET_CAP) -> None:
        _check(num_perm)
        self.store = store
        self.num_perm = num_perm
        self.cap = cap

    def __len__(self) -> int:
        return len(self.store.indexed_articles())  # type: ignore[attr-defined]

    def __contains__(self, article_id: int) -> bool:
        return article_id in self.store.indexed_articles()  # type: ignore[attr-defined]

    def query_insert(self, article_id: int, sig: Signature) -> set[int]:
        """Candidates for a new article, then the article itself put into the buckets that have room."""
        keys = band_keys(sig, self.num_perm)
        found: set[int] = set()
        held: dict[int, int] = {}
        for key, member in self.store.band_members(keys):  # type: ignore[attr-defined]
            if member != article_id:
                found.add(member)
            held[key] = held.get(key, 0) + (member != article_id)
        # a redelivered article finds itself in its buckets already: the insert below keeps those as they are
        self.store.add_bands([(key, article_id) for key in dict.fromkeys(keys)  # type: ignore[attr-defined]
                              if held.get(key, 0) < self.cap])
        return found

    def query(self, sig: Signature) -> set[int]:
        return {member for _key, member in self.store.band_members(band_keys(sig, self.num_perm))}  # type: ignore[attr-defined]

    def insert(self, article_id: int, sig: Signature) -> None:
        self.query_insert(article_id, sig)

    def insert_many(self, items: Iterable[tuple[int, Signature]]) -> int:
        """Index many articles (a store written before the table existed); returns how many."""
        n = 0
        for article_id, sig in items:
            self.query_insert(article_id, sig)
            n += 1
        return n

    def remove(self, article_id: int, sig: Signature | None = None) -> None:
        """Take an article out of its buckets. Without its signature there is nothing to do: an article whose
        unit rolled back took its bucket entries with it."""
        if sig is not None:
            self.store.remove_bands(article_id, band_keys(sig, self.num_perm))  # type: ignore[attr-defined]


class LSHIndex:
    """Band buckets per kind in this process, keyed by article id; query-then-insert is atomic."""

    def __init__(self, num_perm: int = 128, *, cap: int | None = BUCKET_CAP) -> None:
        """``cap=None``: buckets without a cap (datasketch's own behaviour, for comparisons)."""
        _check(num_perm)
        self.num_perm = num_perm
        self.cap = cap
        self._buckets: dict[int, list[int]] = {}
        self._keys: dict[int, list[int]] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, article_id: int) -> bool:
        return article_id in self._keys

    def query(self, sig: Signature) -> set[int]:
        found: set[int] = set()
        for key in band_keys(sig, self.num_perm):
            hit = self._buckets.get(key)
            if hit:
                found.update(hit)
        return found

    def query_insert(self, article_id: int, sig: Signature) -> set[int]:
        """Candidates for a new article, then the article itself indexed (a redelivered one finds itself)."""
        found = self.query(sig)
        self.insert(article_id, sig)
        return found

    def insert(self, article_id: int, sig: Signature) -> None:
        if article_id in self._keys:
            return
        kept = []
        for key in dict.fromkeys(band_keys(sig, self.num_perm)):
            bucket = self._buckets.setdefault(key, [])
            if self.cap is None or len(bucket) < self.cap:
                bucket.append(article_id)
                kept.append(key)
        self._keys[article_id] = kept

    def remove(self, article_id: int, sig: Signature | None = None) -> None:
        for key in self._keys.pop(article_id, ()):
            ids = self._buckets.get(key)
            if ids is not None and article_id in ids:
                ids.remove(article_id)
                if not ids:
                    del self._buckets[key]
