"""Export stage: stored articles → JSONL, the contract downstream systems and the benchmark read.

One object per ingested page, duplicates included, so that no page ever disappears into another
page's record. Rows are streamed from the database and written one line at a time.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from pipeline.store.store import ArticleRow, Store

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
