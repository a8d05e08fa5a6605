"""Export stage: stored articles → JSONL, the contract downstream systems and the benchmark read.

One object per ingested page, duplicates included, so that no page ever disappears into another
page's record. Rows are streamed from the database and written one line at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TextIO

from sqlalchemy import select

from pipeline.serve.cursors import decode_cursor, encode_cursor
from pipeline.store import ArticleRow, EventRow, Store

FLAGS = ("spun", "scraped")

#: The keys every exported object has, in the order they are written.
EXPORT_KEYS = (
    "url",
    "cluster_id",
    "canonical",
    "flags",
    "title",
    "text",
    "published",
    "site",
    "canonical_url",
    "evidence",
    "similarity",
)


def export_record(row: ArticleRow) -> dict[str, Any]:
    """The exported object for one article; ``url`` is exactly the URL that was fetched or read."""
    return {
        "url": row.url,
        "cluster_id": row.cluster_id,
        "canonical": bool(row.is_canonical),
        "flags": [flag for flag in FLAGS if flag in (row.flags or [])],
        "title": row.title or "",
        "text": row.text or "",
        "published": row.published,
        "site": row.site,
        "canonical_url": row.canonical_url,
        "evidence": row.evidence or {},
        "similarity": float(row.similarity) if row.similarity is not None else None,
    }


def _line(record: dict[str, Any]) -> str:
    """One JSON line; text with lone surrogates falls back to escaped ASCII instead of failing."""
    line = json.dumps(record, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(record, ensure_ascii=True)
    return line + "\n"


def export_jsonl(store: Store, out: TextIO, canonical_only: bool = False) -> int:
    """Write every article (or only canonicals) as JSONL to ``out``; returns how many were written."""
    written = 0
    for row in store.export_rows(canonical_only=canonical_only):
        out.write(_line(export_record(row)))
        written += 1
    out.flush()
    return written


# export --since ------------------------------------------------------------------------------
def changed_article_ids(store: Store, after: int, *, batch: int = 5000) -> tuple[list[int], int]:
    """Ids of articles any event after ``after`` touched (added, re-flagged, re-elected, moved), in id order.

    Cluster-level events (merges, splits, canonical moves) touch every current member of the clusters they
    name, because each member's exported ``cluster_id`` or ``canonical`` may have changed with them.
    """
    ids: set[int] = set()
    clusters: set[int] = set()
    last = after
    with store.session() as s:
        while True:
            rows = s.execute(select(EventRow.id, EventRow.type, EventRow.article_id, EventRow.cluster_id,
                                    EventRow.data).where(EventRow.id > last).order_by(EventRow.id)
                             .limit(batch)).all()
            if not rows:
                break
            for eid, etype, aid, cid, data in rows:
                last = eid
                if aid is not None:
                    ids.add(int(aid))
                if etype in ("clusters_merged", "cluster_split", "canonical_changed") and cid is not None:
                    clusters.add(int(cid))
                    clusters.update(int(m) for m in (data or {}).get("merged", []) if isinstance(m, int))
        if clusters:
            cl = sorted(clusters)
            for i in range(0, len(cl), 500):
                ids.update(s.scalars(select(ArticleRow.id).where(ArticleRow.cluster_id.in_(cl[i:i + 500]))))
    return sorted(ids), last


def iter_article_rows(store: Store, ids: list[int], *, batch: int = 500) -> Iterator[ArticleRow]:
    """The rows of ``ids`` in id order, loaded in batches."""
    for i in range(0, len(ids), batch):
        with store.session() as s:
            yield from s.scalars(select(ArticleRow).where(ArticleRow.id.in_(ids[i:i + batch])).order_by(ArticleRow.id))


def export_since(store: Store, out: TextIO, cursor: str | None) -> tuple[int, str]:
    """``reprint export --since CURSOR``: the export records of articles changed after a /changes cursor.

    Returns (records written, the cursor to pass next time). The cursor is the same opaque token the API's
    /changes feed uses, so a batch consumer and a feed follower can hand positions to each other. Records are
    the full export objects (``pipeline.serve.export.export_record``): a consumer upserts them by ``url``.
    """
    after = decode_cursor(cursor, "e") if cursor else 0
    ids, last = changed_article_ids(store, after)
    written = 0
    for row in iter_article_rows(store, ids):
        out.write(_line(export_record(row)))
        written += 1
    out.flush()
    return written, encode_cursor("e", last)
