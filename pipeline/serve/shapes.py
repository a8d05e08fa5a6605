"""The JSON shapes the read side serves (articles, events), built from rows read by position or by name.

The API, ``reprint status``, the web UI and tests share these, so every consumer sees one shape. Stored
datetimes are naive UTC and always go out as ISO-8601 with ``Z``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from pipeline.serve.cursors import encode_cursor
from pipeline.store import ArticleRow


def iso(value: datetime | None) -> str | None:
    """Stored datetimes are naive UTC; the API always says so explicitly (this runs twice per listed row)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


def naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def flag_list(row_flags: Iterable[Any] | None) -> list[str]:
    return [str(f) for f in (row_flags or [])]


#: The columns the list view reads: no body, meta or evidence, so a page is cheap to load and to encode. The
#: flags are read as their JSON text and the datetimes as stored (SQLite's text, PostgreSQL's datetime), so
#: ``_flags_any`` / ``_iso_any`` turn them into the API's form faster than a generic decoder would.
SUMMARY_SQL = ("id, url, title, site, published, canonical_url, language, byline, cluster_id, is_canonical, "
               "CAST(flags AS TEXT), similarity, created_at, updated_at")


def _iso_any(value: Any) -> str | None:
    """A stored naive-UTC datetime as ISO-8601 with Z, from a datetime (PostgreSQL) or SQLite's stored text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.replace(" ", "T", 1) + "Z"
    return iso(value)


#: Decoded flag lists by their stored JSON text: a store holds a handful of distinct ones ('[]', '["spun"]', ...).
_FLAG_TEXTS: dict[str, tuple[str, ...]] = {}


def _flags_any(value: Any) -> list[str]:
    """Flags from a decoded list or the stored JSON text."""
    if not value:
        return []
    if isinstance(value, str):
        known = _FLAG_TEXTS.get(value)
        if known is None:
            known = tuple(str(f) for f in json.loads(value) or [])
            if len(_FLAG_TEXTS) < 1024:
                _FLAG_TEXTS[value] = known
        return list(known)
    return [str(f) for f in value]


def summary_from_tuple(row: Any) -> dict[str, Any]:
    """``article_summary`` for a row of ``SUMMARY_SQL`` read by position (the list endpoint's hot path)."""
    (aid, url, title, site, published, canonical_url, language, byline, cluster_id, is_canonical, flags,
     similarity, created_at, updated_at) = row
    return {
        "id": aid, "url": url, "title": title or "", "site": site, "published": published,
        "canonical_url": canonical_url, "language": language, "byline": byline, "cluster_id": cluster_id,
        "canonical": bool(is_canonical), "flags": _flags_any(flags),
        "similarity": float(similarity) if similarity is not None else None,
        "ingested_at": _iso_any(created_at), "updated_at": _iso_any(updated_at),
    }


def article_summary(row: Any) -> dict[str, Any]:
    """The list view of an article: everything but the body, so a page of 200 stays small."""
    return {
        "id": row.id,
        "url": row.url,
        "title": row.title or "",
        "site": row.site,
        "published": row.published,
        "canonical_url": row.canonical_url,
        "language": row.language,
        "byline": row.byline,
        "cluster_id": row.cluster_id,
        "canonical": bool(row.is_canonical),
        "flags": flag_list(row.flags),
        "similarity": float(row.similarity) if row.similarity is not None else None,
        "ingested_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def article_detail(row: ArticleRow) -> dict[str, Any]:
    """The full article: summary plus body, evidence and token count."""
    out = article_summary(row)
    out.update(text=row.text or "", evidence=row.evidence or {}, n_tokens=int(row.n_tokens or 0))
    return out


#: The columns the feed reads; ``data`` as its stored JSON text (see ``_event_data``).
EVENT_SQL = "id, at, type, cluster_id, article_id, CAST(data AS TEXT)"


def _event_data(value: Any, raw: bool) -> Any:
    """An event's data from its stored JSON text: decoded, or with ``raw`` an ``orjson.Fragment`` of the text
    itself (valid JSON as stored, so the feed re-encodes nothing). An empty or null document is ``{}``."""
    if value is None:
        return {}
    if not isinstance(value, str):  # a driver that decoded it already
        return value or {}
    if raw and len(value) > 2 and value[0] == "{" and "NaN" not in value and "Infinity" not in value:
        return orjson.Fragment(value)
    return json.loads(value) or {}


def event_from_tuple(row: Any, raw: bool = False) -> dict[str, Any]:
    """``event_dict`` for a row of ``EVENT_SQL`` read by position (the feed's hot path)."""
    eid, at, etype, cluster_id, article_id, data = row
    return {"id": eid, "cursor": encode_cursor("e", eid), "at": _iso_any(at), "type": etype, "cluster_id": cluster_id,
            "article_id": article_id, "data": _event_data(data, raw)}


def event_dict(row: Any) -> dict[str, Any]:
    """One event as the feed serves it; ``cursor`` resumes the feed right after this event."""
    return {
        "id": row.id,
        "cursor": encode_cursor("e", row.id),
        "at": iso(row.at),
        "type": row.type,
        "cluster_id": row.cluster_id,
        "article_id": row.article_id,
        "data": row.data or {},
    }
