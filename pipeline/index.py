"""Match stage: an in-process MinHash-LSH index per signature kind, built on datasketch.

``query`` returns every indexed article that collides with the signature in any band of any kind: a
candidate set built for recall. Precision is the verifier's job.
"""

from __future__ import annotations

from datasketch import MinHash, MinHashLSH

from .fingerprint import KINDS, SCHEME
from .records import Signature


class LSHIndex:
    """One datasketch MinHashLSH per signature kind, keyed by article id."""

    def __init__(self, num_perm: int = 128) -> None:
        self.num_perm = num_perm
        self._lsh = {
            kind: MinHashLSH(num_perm=num_perm, params=(bands, rows)) for kind, (_n, bands, rows) in KINDS.items()
        }
        self._ids: set[int] = set()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, article_id: int) -> bool:
        return article_id in self._ids

    def _minhash(self, sig: Signature, kind: str) -> MinHash:
        return MinHash(hashvalues=sig.values[kind], scheme=SCHEME)

    def query(self, sig: Signature) -> set[int]:
        found: set[int] = set()
        for kind, lsh in self._lsh.items():
            if kind in sig.values:
                found.update(lsh.query(self._minhash(sig, kind)))
        return found

    def query_insert(self, article_id: int, sig: Signature) -> set[int]:
        """Candidates for a new article, then the article itself indexed (one process: atomic)."""
        found = self.query(sig)
        self.insert(article_id, sig)
        return found

    def insert(self, article_id: int, sig: Signature) -> None:
        if article_id in self._ids:
            return
        for kind, lsh in self._lsh.items():
            lsh.insert(article_id, self._minhash(sig, kind), check_duplication=False)
        self._ids.add(article_id)

    def remove(self, article_id: int) -> None:
        if article_id in self._ids:
            for lsh in self._lsh.values():
                lsh.remove(article_id)
            self._ids.discard(article_id)
