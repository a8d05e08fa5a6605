"""Bring a store's signatures up to this code's fingerprint (``fingerprint.FINGERPRINT_VERSION``).

A store records the version its signatures were made with (the mark ``fingerprint_version``; a store without
it is told by its oldest signature's kinds). Matching a new article against signatures of another version would
miss its copies (their kinds differ), so every ``Deduplicator`` refuses such a store with ``StaleSignatures``
(``require_current_signatures``), and ``reprint index refingerprint`` (``refingerprint`` below) recomputes every
stored signature from the stored article text, in batches, then builds the persisted LSH index again from the new
signatures. Nothing else changes: texts, relations and decisions stay as they are. A run that stops half way
leaves the store refused, so it is run again from the start (the work is idempotent).
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.dedup.fingerprint import FINGERPRINT_VERSION, KINDS, fingerprint_tokens
from pipeline.dedup.index import StoreLSHIndex
from pipeline.errors import StaleSignatures
from pipeline.store import Store
from pipeline.text import tokenize

BATCH = 500
FINGERPRINT_MARK = "fingerprint_version"


def stored_version(store: Store) -> int:
    """The fingerprint version of the store's signatures. A store that never recorded one takes this code's
    version when it holds no signature or its oldest one has this version's kinds (it was made by this code);
    else it is version 1 (``w3`` and ``w1``, before versions were recorded)."""
    version = store.mark(FINGERPRINT_MARK)
    if version:
        return version
    kinds = store.first_signature_kinds()
    if kinds is not None and not set(KINDS) <= set(kinds):
        return 1
    store.set_mark(FINGERPRINT_MARK, FINGERPRINT_VERSION)
    return FINGERPRINT_VERSION


def require_current_signatures(store: Store) -> None:
    """Raise ``StaleSignatures`` when the store's signatures are of another version."""
    version = stored_version(store)
    if version != FINGERPRINT_VERSION:
        raise StaleSignatures(
            f"the stored signatures are fingerprint version {version}, this reprint makes version "
            f"{FINGERPRINT_VERSION}: run `reprint index refingerprint` (then `reprint index rebuild` where workers "
            "share a Redis index)")


def refingerprint(store: Store, num_perm: int, min_tokens: int = 0,
                  progress: Callable[[int], None] | None = None,
                  indexing: Callable[[], None] | None = None) -> int:
    """Recompute every stored article's signature and re-index the persisted LSH index from them (articles of at
    least ``min_tokens`` tokens, as the dedup stage indexes); returns how many. ``progress(done)`` after each batch
    of signatures, ``indexing()`` once they are all in, as the re-indexing (one pass over them) begins."""
    store.set_mark(FINGERPRINT_MARK, 1)  # until the last batch is in: a run cut short leaves the store refused
    done = last = 0
    while batch := store.article_texts_after(last, batch=BATCH):
        with store.unit():
            store.replace_signatures((article_id, fingerprint_tokens(tokenize(text), num_perm))
                                     for article_id, text in batch)
        done += len(batch)
        last = batch[-1][0]
        if progress is not None:
            progress(done)
    if indexing is not None:
        indexing()
    with store.unit():
        store.clear_bands(StoreLSHIndex.MARK)
        index = StoreLSHIndex(store, num_perm, min_tokens=min_tokens)  # takes every article in from the mark, 0
        index.merge()
        store.set_mark(FINGERPRINT_MARK, FINGERPRINT_VERSION)
    return done
