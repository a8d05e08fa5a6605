"""Match stage: an in-process MinHash-LSH index over every signature kind.

``query`` returns every indexed article that collides with the signature in any band of any kind: a
candidate set built for recall. Precision is the verifier's job. Banding is datasketch's (band ``i``
of a kind holds rows ``i*r .. i*r+r-1``); the buckets are plain dicts keyed by the band's raw bytes,
which costs a few µs per band where wrapping each signature in datasketch MinHash objects cost more
than the whole lookup.
"""

from __future__ import annotations

import numpy as np

from pipeline.dedup.fingerprint import KINDS
from pipeline.records import Signature


class LSHIndex:
    """Band buckets per kind, keyed by article id; one process, so query-then-insert is atomic."""

    def __init__(self, num_perm: int = 128) -> None:
        for kind, (_n, bands, rows) in KINDS.items():
            if bands * rows > num_perm:
                raise ValueError(f"kind {kind}: {bands} bands x {rows} rows exceed num_perm={num_perm}")
        self.num_perm = num_perm
        self._tables: dict[str, list[dict[bytes, list[int]]]] = {
            kind: [{} for _ in range(bands)] for kind, (_n, bands, _rows) in KINDS.items()
        }
        self._keys: dict[int, dict[str, list[bytes]]] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, article_id: int) -> bool:
        return article_id in self._keys

    @staticmethod
    def _band_keys(sig: Signature, kind: str) -> list[bytes]:
        _n, bands, rows = KINDS[kind]
        data = np.ascontiguousarray(sig.values[kind], dtype="<u4").tobytes()
        step = rows * 4
        return [data[b * step : (b + 1) * step] for b in range(bands)]

    def query(self, sig: Signature) -> set[int]:
        found: set[int] = set()
        for kind, table in self._tables.items():
            if kind in sig.values:
                for bucket, key in zip(table, self._band_keys(sig, kind), strict=True):
                    hit = bucket.get(key)
                    if hit:
                        found.update(hit)
        return found

    def query_insert(self, article_id: int, sig: Signature) -> set[int]:
        """Candidates for a new article, then the article itself indexed."""
        found = self.query(sig)
        self.insert(article_id, sig)
        return found

    def insert(self, article_id: int, sig: Signature) -> None:
        if article_id in self._keys:
            return
        keys: dict[str, list[bytes]] = {}
        for kind, table in self._tables.items():
            if kind not in sig.values:
                continue
            keys[kind] = self._band_keys(sig, kind)
            for bucket, key in zip(table, keys[kind], strict=True):
                bucket.setdefault(key, []).append(article_id)
        self._keys[article_id] = keys

    def remove(self, article_id: int) -> None:
        keys = self._keys.pop(article_id, None)
        if keys is None:
            return
        for kind, kind_keys in keys.items():
            for bucket, key in zip(self._tables[kind], kind_keys, strict=True):
                ids = bucket.get(key)
                if ids is not None and article_id in ids:
                    ids.remove(article_id)
                    if not ids:
                        del bucket[key]
