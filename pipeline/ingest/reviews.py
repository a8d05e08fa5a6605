"""Operator reviews: record one, undo one, list them; each re-decides the clusters it touches at once.

The three functions the web UI's review buttons call (``pipeline.serve.ui.reviews`` finds them here), the CLI's
``reprint review`` and the API's ``/admin/reviews`` use:

    apply(store, kind, urls, *, flag=None, on=None, who, note) -> dict   # kind: canonical | separate | merge | flag
    undo(store, review_id, *, who) -> dict
    list_reviews(store, *, url=None) -> list[dict]

A review names pages by URL; it is stored with the articles they resolve to and takes effect through
``pipeline.dedup.reviews.ReviewSet`` in every decision of their component from then on (re-decisions, updates and
re-processing included) until it is undone. Writing the review (and its ``review_applied`` / ``review_undone``
event) and re-deciding are one transaction under the re-clustering lock, so the events of its consequences follow
it on ``/changes``. A ``LookupError`` says a URL or review is unknown (404 in the API, exit 2 in the CLI), a
``ValueError`` that the request cannot be done (merging a page with itself, undoing twice, a bad flag: 422, exit
2); either way nothing changed.
"""

from __future__ import annotations

from typing import Any

from pipeline.dedup.reviews import FLAG_ORDER as FLAGS
from pipeline.dedup.reviews import KINDS, NOTE_MAX
from pipeline.ingest.living import operator_deduplicator
from pipeline.settings import Settings
from pipeline.store import Store


def _check(kind: str, urls: list[str], flag: str | None, on: bool | None, who: str, note: str | None) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown review kind {kind!r}: one of {', '.join(KINDS)}")
    if kind == "merge" and len(urls) != 2:
        raise ValueError("merge takes two URLs")
    if kind != "merge" and len(urls) != 1:
        raise ValueError(f"a {kind} review takes one URL")
    if kind == "flag" and (flag not in FLAGS or on is None):
        raise ValueError(f"a flag review names a flag ({' or '.join(FLAGS)}) and whether it is on or off")
    if kind != "flag" and (flag is not None or on is not None):
        raise ValueError(f"a {kind} review takes no flag")
    if not who.strip():
        raise ValueError("a review says who made it")
    if note is not None and len(note) > NOTE_MAX:
        raise ValueError(f"the note is longer than {NOTE_MAX} characters")


def apply(store: Store, kind: str, urls: list[str], *, flag: str | None = None, on: bool | None = None,
          who: str, note: str | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """Record a review and re-decide the clusters of its pages; returns the review (``id`` …) with the number of
    changes it made and where its first page stands now (``cluster_id``)."""
    urls = [u.strip() for u in urls]
    _check(kind, urls, flag, on, who, note)
    found = []
    for url in urls:
        hit = store.article_by_url(url)
        if hit is None:
            raise LookupError(f"no stored article at {url}")
        found.append(hit)
    ids = [article_id for article_id, _ in found]
    if kind == "merge" and ids[0] == ids[1]:
        raise ValueError("a page cannot be merged with itself")
    dedup = operator_deduplicator(store, settings)
    review, changes = dedup.redecide(set(ids), lambda: store.add_review(
        kind=kind, urls=urls, articles=ids, flag=flag, on=on, who=who.strip(), note=note, cluster_id=found[0][1]))
    assert review is not None
    now = store.article_by_url(urls[0])
    return {**review, "changes": len(changes), "cluster_id": now[1] if now else None}


def undo(store: Store, review_id: int, *, who: str, settings: Settings | None = None) -> dict[str, Any]:
    """Undo a review and re-decide the clusters of its pages as if it had never been made."""
    review = store.review_row(review_id)
    if review is None:
        raise LookupError(f"no review {review_id}")
    if review["undone"]:
        raise ValueError(f"review {review_id} was undone already ({review['undone_at']} by {review['undone_by']})")
    if not who.strip():
        raise ValueError("an undo says who made it")
    ids = set(review["article_ids"])
    hit = store.article_by_url(review["urls"][0])
    dedup = operator_deduplicator(store, settings)
    done, changes = dedup.redecide(ids, lambda: store.undo_review(review_id, who=who.strip(),
                                                                   cluster_id=hit[1] if hit else None))
    assert done is not None
    return {**done, "changes": len(changes)}


def list_reviews(store: Store, *, url: str | None = None) -> list[dict[str, Any]]:
    """Every review, undone ones included, oldest first; with ``url``, those naming that page."""
    return store.review_rows(url=url.strip() if url else None)


__all__ = ["FLAGS", "KINDS", "NOTE_MAX", "apply", "list_reviews", "undo"]
