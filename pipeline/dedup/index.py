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
#: New articles whose bucket entries wait in memory before they are written together (``StoreLSHIndex``):
#: a twentieth of the store, within these bounds (see ``StoreLSHIndex``).
MERGE_MIN = 2000
MERGE_MAX = 20000

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


def screen(sig: Signature, ids: list[int], values: np.ndarray, *, threshold: float = SCREEN_JACCARD3,
           most: int = VERIFY_MAX) -> list[int]:
    """The candidates worth aligning: estimated 3-gram Jaccard at least ``threshold``, the closest ``most``
    first (ties by id, so the choice never depends on the order they were found in). ``values``: the
    candidates' stored ``w3`` values, a row per id of ``ids`` (``Store.signature_values``), compared in one pass."""
    mine = np.asarray(sig.values["w3"], dtype=values.dtype)
    estimates = np.count_nonzero(values == mine, axis=1) / len(mine)
    scored = sorted((-float(e), article_id) for article_id, e in zip(ids, estimates, strict=True) if e >= threshold)
    return [article_id for _e, article_id in scored[:most]]


class StoreLSHIndex:
    """The LSH buckets in the store's ``lsh_bands`` table, with the newest entries held in memory first.

    A bucket key is a random 64-bit number, so every entry written alone lands on a different page of a
    large table: at 100,000 stored articles each new article dirtied ~96 pages, written to the WAL and again
    at the checkpoint (system time was a third of the run). So new entries wait in ``recent`` (queried as
    part of the index) and are written together, sorted, many to a page. A write then touches most of the
    table's pages whatever it holds, so it waits for a twentieth of the store's articles (between
    ``MERGE_MIN`` and ``MERGE_MAX``): each article's share of the writes stays about the same as the store
    grows (up to ~400,000 articles; past that the cap on memory lets it grow slowly). The store
    keeps ``lsh_indexed_through``, the last article whose entries are written, in the same transaction; a
    process that stopped before writing its recent entries leaves articles above that mark, and the next
    index puts them back from their signatures when it opens. If the transaction a write was part of rolls
    back (``rolled_back``), the mark tells what to put back the same way.
    """

    MARK = "lsh_indexed_through"

    def __init__(self, store: object, num_perm: int = 128, *, cap: int = BUCKET_CAP, min_tokens: int = 0,
                 merge_every: int | None = None) -> None:
        """``merge_every``: recent articles written at once (default: a twentieth of the store, bounded)."""
        _check(num_perm)
        self.store = store
        self.num_perm = num_perm
        self.cap = cap
        self.min_tokens = min_tokens
        self._fixed = merge_every
        self.merge_every = merge_every or MERGE_MIN
        self._recent: dict[int, list[int]] = {}  # band key → articles whose entries are not written yet
        self._recent_keys: dict[int, list[int]] = {}  # article → its keys in ``_recent``
        self._through = 0
        self._recover()

    def _recover(self) -> None:
        """Put back into ``recent`` the articles above the store's mark (not written when a process stopped)."""
        self._recent.clear()
        self._recent_keys.clear()
        self._through = self.store.mark(self.MARK)  # type: ignore[attr-defined]
        if self._fixed is None:
            self.merge_every = max(MERGE_MIN, min(MERGE_MAX, self._through // 20))
        for article_id, sig in self.store.signatures_after(self._through):  # type: ignore[attr-defined]
            if sig.n_tokens >= self.min_tokens:
                keys = band_keys(sig, self.num_perm)
                held = self._held(keys)
                for key in keys:
                    held[key] = held.get(key, 0) + len(self._recent.get(key, ()))
                self._add(article_id, keys, held)
                if len(self._recent_keys) >= self.merge_every:
                    self.merge()

    def _held(self, keys: list[int]) -> dict[int, int]:
        held: dict[int, int] = {}
        for key, _member in self.store.band_members(keys):  # type: ignore[attr-defined]
            held[key] = held.get(key, 0) + 1
        return held

    def __len__(self) -> int:
        return len(self.store.indexed_articles() | set(self._recent_keys))  # type: ignore[attr-defined]

    def __contains__(self, article_id: int) -> bool:
        return article_id in self._recent_keys or article_id in self.store.indexed_articles()  # type: ignore[attr-defined]

    def query_insert(self, article_id: int, sig: Signature) -> set[int]:
        """Candidates for a new article, then the article itself put into the buckets that have room."""
        keys = band_keys(sig, self.num_perm)
        found: set[int] = set()
        held: dict[int, int] = {}
        indexed = article_id in self._recent_keys  # a redelivered article finds itself and is not added again
        for key, member in self.store.band_members(keys):  # type: ignore[attr-defined]
            if member != article_id:
                found.add(member)
                held[key] = held.get(key, 0) + 1
            else:
                indexed = True
        for key in keys:
            for member in self._recent.get(key, ()):
                if member != article_id:
                    found.add(member)
                    held[key] = held.get(key, 0) + 1
        if not indexed:
            self._add(article_id, keys, held)
        if len(self._recent_keys) >= self.merge_every:
            self.merge()
        return found

    def _add(self, article_id: int, keys: list[int], held: dict[int, int]) -> None:
        kept = [key for key in dict.fromkeys(keys) if held.get(key, 0) < self.cap]
        for key in kept:
            self._recent.setdefault(key, []).append(article_id)
        self._recent_keys[article_id] = kept

    def merge(self) -> None:
        """Write the recent entries, sorted by bucket, and move the mark past them (in the open unit)."""
        if not self._recent_keys:
            return
        rows = sorted((key, member) for key, members in self._recent.items() for member in members)
        through = max(self._recent_keys)
        self.store.add_bands(rows)  # type: ignore[attr-defined]
        self.store.set_mark(self.MARK, through)  # type: ignore[attr-defined]
        self._recent.clear()
        self._recent_keys.clear()
        self._through = through
        if self._fixed is None:  # article ids grow with the store: a cheap measure of its size
            self.merge_every = max(MERGE_MIN, min(MERGE_MAX, through // 20))

    def rolled_back(self) -> None:
        """A transaction this index wrote in may have rolled back: start again from the store's mark."""
        if self.store.mark(self.MARK) != self._through:  # type: ignore[attr-defined]
            self._recover()

    def query(self, sig: Signature) -> set[int]:
        keys = band_keys(sig, self.num_perm)
        found = {member for _key, member in self.store.band_members(keys)}  # type: ignore[attr-defined]
        for key in keys:
            found.update(self._recent.get(key, ()))
        return found

    def insert(self, article_id: int, sig: Signature) -> None:
        self.query_insert(article_id, sig)

    def insert_many(self, items: Iterable[tuple[int, Signature]]) -> int:
        """Index many articles (a store written before the table existed), then write them; returns how many."""
        n = 0
        for article_id, sig in items:
            self.query_insert(article_id, sig)
            n += 1
        self.merge()
        return n

    def remove(self, article_id: int, sig: Signature | None = None) -> None:
        """Take an article out of its buckets (its recent entries, and with its signature its written ones)."""
        for key in self._recent_keys.pop(article_id, ()):
            members = self._recent.get(key)
            if members is not None and article_id in members:
                members.remove(article_id)
                if not members:
                    del self._recent[key]
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
