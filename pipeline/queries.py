"""Read queries behind the REST API, the changes feed, ``reprint status`` and ``/metrics``.

They live apart from ``store.py`` so the write path stays small and the read side can grow (indexes, caching)
without touching it. Every function takes a ``Store`` and opens its own short read transaction; results are
plain dicts so the API, the status screen and the JSON output share one shape.

Cursors are opaque to clients (base64url of a kind letter and an id) but stable: they name a row id, never an
offset, so they survive restarts, new inserts and rows that change between two pages.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

from sqlalchemy import String, Text, cast, func, or_, select, type_coerce
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from .store import ArticleRow, ClusterRow, ErrorRow, EventRow, PageRow, RunRow, SourceRow, Store

#: The flags a client may filter on; anything else is a 422, not an empty page.
KNOWN_FLAGS = ("spun", "scraped")
#: Event types that belong to a cluster's canonical history.
HISTORY_TYPES = ("article_added", "canonical_changed", "canonical_status", "clusters_merged", "cluster_split")


#: The largest id a cursor or path may name (a signed 64-bit integer, what every backend can compare).
MAX_ID = 2**63 - 1


class CursorError(ValueError):
    """A cursor that this server did not issue (or issued for another listing)."""


def encode_cursor(kind: str, value: int) -> str:
    """An opaque, URL-safe cursor for ``kind`` ('a' articles, 'e' events) positioned after row ``value``."""
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str) -> int:
    """The row id a cursor names; raises ``CursorError`` for anything malformed or of another kind."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        got_kind, _, value = raw.partition(":")
        number = int(value)
    except (ValueError, binascii.Error, UnicodeError) as err:
        raise CursorError(f"malformed cursor {cursor!r}") from err
    if got_kind != kind or not value.isdigit() or number > MAX_ID:
        raise CursorError(f"cursor {cursor!r} does not belong to this listing")
    return number


def _iso(value: datetime | None) -> str | None:
    """Stored datetimes are naive UTC; the API always says so explicitly (this runs twice per listed row)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _flags(row_flags: Iterable[Any] | None) -> list[str]:
    return [str(f) for f in (row_flags or [])]


#: The columns the list view reads: no body, meta or evidence, so a page is cheap to load and to encode. The
#: datetimes and the flags skip SQLAlchemy's result processing (``type_coerce``): SQLite hands back their stored
#: text, which ``_iso_any`` / ``_flags_any`` turn into the API's form faster than parsing and re-formatting.
SUMMARY_COLUMNS = (ArticleRow.id, ArticleRow.url, ArticleRow.title, ArticleRow.site, ArticleRow.published,
                   ArticleRow.canonical_url, ArticleRow.language, ArticleRow.byline, ArticleRow.cluster_id,
                   ArticleRow.is_canonical, type_coerce(ArticleRow.flags, String), ArticleRow.similarity,
                   type_coerce(ArticleRow.created_at, String), type_coerce(ArticleRow.updated_at, String))


def _iso_any(value: Any) -> str | None:
    """A stored naive-UTC datetime as ISO-8601 with Z, from a datetime (PostgreSQL) or SQLite's stored text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.replace(" ", "T", 1) + "Z"
    return _iso(value)


def _flags_any(value: Any) -> list[str]:
    """Flags from a decoded list (PostgreSQL) or the stored JSON text (SQLite)."""
    if not value:
        return []
    if isinstance(value, str):
        if value == "[]":
            return []
        value = json.loads(value)
    return [str(f) for f in value or []]


def summary_from_tuple(row: Any) -> dict[str, Any]:
    """``article_summary`` for a row of ``SUMMARY_COLUMNS`` read by position (the list endpoint's hot path)."""
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
        "flags": _flags(row.flags),
        "similarity": float(row.similarity) if row.similarity is not None else None,
        "ingested_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def article_detail(row: ArticleRow) -> dict[str, Any]:
    """The full article: summary plus body, evidence and token count."""
    out = article_summary(row)
    out.update(text=row.text or "", evidence=row.evidence or {}, n_tokens=int(row.n_tokens or 0))
    return out


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True, slots=True)
class ArticleFilter:
    """The filters of ``GET /articles``; ``canonical=None`` means every article, copies included."""

    canonical: bool | None = True
    site: str | None = None
    published_since: date | datetime | None = None
    ingested_since: datetime | None = None
    flag: str | None = None
    q: str | None = None
    cluster_id: int | None = None


def list_articles(store: Store, flt: ArticleFilter, *, after: int = 0,
                  limit: int = 50) -> tuple[list[dict[str, Any]], int | None]:
    """A page of articles in id order after ``after``; returns (items, last id if there may be more).

    Keyset pagination on the primary key: O(limit) per page whatever the depth, and stable while rows are added.
    """
    q = select(*SUMMARY_COLUMNS).where(ArticleRow.id > after)
    if flt.canonical is not None:
        q = q.where(ArticleRow.is_canonical.is_(flt.canonical))
    if flt.site:
        q = q.where(ArticleRow.site == flt.site)
    if flt.published_since is not None:
        # published is stored as an ISO-8601 string, so a lexical comparison is a chronological one
        q = q.where(ArticleRow.published.is_not(None), ArticleRow.published >= flt.published_since.isoformat())
    if flt.ingested_since is not None:
        q = q.where(ArticleRow.created_at >= _naive_utc(flt.ingested_since))
    if flt.flag:
        # flags are a small JSON list of known words; its text form contains '"spun"' exactly when it holds it
        q = q.where(cast(ArticleRow.flags, Text).like(f'%"{_like_escape(flt.flag)}"%', escape="\\"))
    if flt.q:
        q = q.where(func.lower(ArticleRow.title).like(f"%{_like_escape(flt.q.lower())}%", escape="\\"))
    if flt.cluster_id is not None:
        q = q.where(ArticleRow.cluster_id == flt.cluster_id)
    q = q.order_by(ArticleRow.id).limit(limit + 1)
    with store.engine.connect() as conn:  # a plain read: no ORM identity map, no objects
        rows = list(conn.execute(q))
    more = len(rows) > limit
    rows = rows[:limit]
    return [summary_from_tuple(r) for r in rows], (rows[-1][0] if more and rows else None)


def _cluster_brief(s: Session, cluster_id: int | None) -> dict[str, Any] | None:
    if cluster_id is None:
        return None
    cluster = s.get(ClusterRow, cluster_id)
    if cluster is None:
        return None
    members = list(s.scalars(select(ArticleRow.id).where(ArticleRow.cluster_id == cluster_id).order_by(ArticleRow.id)))
    return {
        "id": cluster.id,
        "canonical_id": cluster.canonical_id,
        "size": len(members),
        "merged_into": cluster.merged_into,
        "member_ids": members,
    }


def get_article(store: Store, article_id: int) -> dict[str, Any] | None:
    """One article with a brief of its cluster, or None."""
    with store.session() as s:
        row = s.get(ArticleRow, article_id)
        if row is None:
            return None
        out = article_detail(row)
        out["cluster"] = _cluster_brief(s, row.cluster_id)
        return out


EVENT_COLUMNS = (EventRow.id, type_coerce(EventRow.at, String), EventRow.type, EventRow.cluster_id,
                 EventRow.article_id, EventRow.data)


def event_from_tuple(row: Any) -> dict[str, Any]:
    """``event_dict`` for a row of ``EVENT_COLUMNS`` read by position (the feed's hot path)."""
    eid, at, etype, cluster_id, article_id, data = row
    return {"id": eid, "cursor": encode_cursor("e", eid), "at": _iso_any(at), "type": etype, "cluster_id": cluster_id,
            "article_id": article_id, "data": data or {}}


def event_dict(row: Any) -> dict[str, Any]:
    """One event as the feed serves it; ``cursor`` resumes the feed right after this event."""
    return {
        "id": row.id,
        "cursor": encode_cursor("e", row.id),
        "at": _iso(row.at),
        "type": row.type,
        "cluster_id": row.cluster_id,
        "article_id": row.article_id,
        "data": row.data or {},
    }


def get_cluster(store: Store, cluster_id: int) -> dict[str, Any] | None:
    """Every member (flags, evidence, similarity to the canonical) and the cluster's canonical history.

    The history is every event logged against this cluster id (or naming it as merged into another), in feed
    order, so it reads as: who was canonical, when it moved and why, which clusters it absorbed.
    """
    with store.session() as s:
        cluster = s.get(ClusterRow, cluster_id)
        if cluster is None:
            return None
        rows = list(s.scalars(select(ArticleRow).where(ArticleRow.cluster_id == cluster_id).order_by(ArticleRow.id)))
        events = list(s.scalars(select(EventRow).where(EventRow.cluster_id == cluster_id).order_by(EventRow.id)))
        history = [event_dict(e) for e in events if e.type in HISTORY_TYPES]
        return {
            "id": cluster.id,
            "canonical_id": cluster.canonical_id,
            "size": len(rows),
            "merged_into": cluster.merged_into,
            "created_at": _iso(cluster.created_at),
            "updated_at": _iso(cluster.updated_at),
            "members": [
                {**article_summary(r), "evidence": r.evidence or {}} for r in rows
            ],
            "history": history,
        }


#: How long a poll waits for a moment with no event-writing transaction in flight before it settles for the
#: last horizon known to be safe (PostgreSQL only; see ``stable_horizon``).
HORIZON_WAIT_SECONDS = 0.05
_last_safe: dict[str, int] = {}


def stable_horizon(store: Store, s: Connection, wait: float = HORIZON_WAIT_SECONDS) -> int | None:
    """The highest event id the feed may serve without ever skipping one, or None when every visible id is safe.

    On PostgreSQL ids come from a sequence when a row is inserted, but transactions commit in any order: a
    follower that read id 101 while id 100 was still uncommitted would never see 100. Ids up to the sequence's
    value at time t1 are final once no other transaction holds a write lock on ``events`` at a later time t2
    (an inserter takes that lock before it draws an id and keeps it until it commits). So: read the sequence,
    then the locks, and serve only ids up to that value. While writers overlap without pause, the last horizon
    found safe is served (never a newer unsafe one). SQLite has a single writer, so its commit order is its id
    order and no horizon is needed.
    """
    if store.engine.dialect.name != "postgresql":
        return None
    from sqlalchemy import text

    deadline = time.monotonic() + wait
    while True:
        seq_value = int(s.scalar(text(
            "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('events', 'id')::regclass), 0)")) or 0)
        busy = s.scalar(text(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE relation = 'events'::regclass "
            "AND mode = 'RowExclusiveLock' AND granted AND pid <> pg_backend_pid())"))
        if not busy:
            _last_safe[store.url] = max(_last_safe.get(store.url, 0), seq_value)
            return _last_safe[store.url]
        if time.monotonic() >= deadline:
            return _last_safe.get(store.url, 0)
        time.sleep(0.005)


def list_changes(store: Store, *, after: int = 0, limit: int = 500, types: Iterable[str] | None = None,
                 wait: float = HORIZON_WAIT_SECONDS) -> tuple[list[dict[str, Any]], int]:
    """Events after ``after`` in id order, up to the stable horizon; returns (events, id to resume from).

    The resume id is the last event returned, or ``after`` when there is nothing new, so a poller can always
    keep the cursor it was given and never skips or repeats an event.
    """
    q = select(*EVENT_COLUMNS).where(EventRow.id > after)
    wanted = list(types or [])
    if wanted:
        q = q.where(EventRow.type.in_(wanted))
    q = q.order_by(EventRow.id).limit(limit)
    # READ COMMITTED: each statement sees what was committed when it started, which is what makes the horizon
    # read before the events valid (see stable_horizon)
    with store.engine.connect() as conn:
        known = _last_safe.get(store.url, 0) if store.engine.dialect.name == "postgresql" else 0
        if known > after:  # a reader catching up below a horizon already proven safe needs no new proof
            rows = list(conn.execute(q.where(EventRow.id <= known)))
            if len(rows) == limit:
                return [event_from_tuple(r) for r in rows], rows[-1][0]
        horizon = stable_horizon(store, conn, wait)
        if horizon is not None:
            q = q.where(EventRow.id <= horizon)
        rows = list(conn.execute(q))
    return [event_from_tuple(r) for r in rows], (rows[-1][0] if rows else after)


def latest_event_id(store: Store) -> int:
    """The id of the newest event (0 for an empty feed): a cursor for 'from now on'."""
    with store.session() as s:
        return int(s.scalar(select(func.max(EventRow.id))) or 0)


def mirror_from_events(events: Iterable[dict[str, Any]], canonical: set[int] | None = None) -> set[int]:
    """Apply feed events to a set of canonical article ids, as a downstream follower does.

    article_added says whether the new article starts canonical; canonical_status flips one article.
    Everything else (canonical_changed, clusters_merged, flags_changed) is informative and already implied.
    """
    state = set() if canonical is None else canonical
    for e in events:
        aid = e.get("article_id")
        if aid is None:
            continue
        data = e.get("data") or {}
        if e["type"] in ("article_added", "canonical_status"):
            if data.get("canonical"):
                state.add(aid)
            else:
                state.discard(aid)
    return state


def canonical_ids(store: Store) -> set[int]:
    """The canonical set the store holds (what a mirror must equal)."""
    with store.session() as s:
        return set(s.scalars(select(ArticleRow.id).where(ArticleRow.is_canonical.is_(True))))


# runs, sources and the day's numbers ------------------------------------------------------------------------------
def run_dict(row: RunRow, errors: int | None = None) -> dict[str, Any]:
    counts = row.counts or {}
    return {
        "id": row.id,
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "running": row.finished_at is None,
        "sources": list(row.sources or []),
        "pages": int(counts.get("pages_seen", 0) or 0),
        "new_articles": int(counts.get("articles", 0) or 0),
        "errors": errors if errors is not None else int(sum((counts.get("errors") or {}).values())),
        "counts": counts,
    }


def list_runs(store: Store, *, before: int | None = None, limit: int = 20) -> tuple[list[dict[str, Any]], int | None]:
    """Runs newest first; returns (runs, id to continue before if there may be more)."""
    q = select(RunRow)
    if before is not None:
        q = q.where(RunRow.id < before)
    q = q.order_by(RunRow.id.desc()).limit(limit + 1)
    with store.session() as s:
        rows = list(s.scalars(q))
        more = len(rows) > limit
        rows = rows[:limit]
        ids = [r.id for r in rows]
        errs = dict(s.execute(select(ErrorRow.run_id, func.count()).where(ErrorRow.run_id.in_(ids),
                                                                            ErrorRow.level == "error")
                              .group_by(ErrorRow.run_id)).all()) if ids else {}
    return [run_dict(r, int(errs.get(r.id, 0))) for r in rows], (rows[-1].id if more and rows else None)


def get_run(store: Store, run_id: int, *, max_errors: int = 200) -> dict[str, Any] | None:
    """One run with its errors and warnings (message included), oldest first."""
    with store.session() as s:
        row = s.get(RunRow, run_id)
        if row is None:
            return None
        errors = list(s.scalars(select(ErrorRow).where(ErrorRow.run_id == run_id).order_by(ErrorRow.id)
                                .limit(max_errors)))
        n_errors = s.scalar(select(func.count()).select_from(ErrorRow)
                            .where(ErrorRow.run_id == run_id, ErrorRow.level == "error")) or 0
        out = run_dict(row, int(n_errors))
        out["error_list"] = [
            {"id": e.id, "at": _iso(e.at), "level": e.level, "stage": e.stage, "kind": e.kind, "url": e.url,
             "message": e.message, "source_id": e.source_id}
            for e in errors
        ]
        return out


def source_health(store: Store, *, interval: timedelta | None = None) -> list[dict[str, Any]]:
    """Per source: its last run (when, pages, new articles, errors) and when it is next due.

    A run names its sources by spec; the newest run that lists a source is its last run. Pages and new
    articles are counted from the pages and articles tables (per source id), errors from the errors table, so
    runs that covered several sources still give per-source figures. ``interval`` (from a schedule, when one is
    known) makes ``next_due`` = last run + interval.
    """
    with store.session() as s:
        sources = list(s.scalars(select(SourceRow).order_by(SourceRow.id)))
        runs = list(s.scalars(select(RunRow).order_by(RunRow.id.desc()).limit(500)))
        out = []
        for src in sources:
            last = next((r for r in runs if src.spec in (r.sources or [])), None)
            pages = new = errors = 0
            if last is not None:
                end = last.finished_at or datetime.max
                new_q = select(func.count()).select_from(ArticleRow).join(PageRow, PageRow.id == ArticleRow.page_id)
                new = s.scalar(new_q.where(PageRow.source_id == src.id, ArticleRow.created_at >= last.started_at,
                                           ArticleRow.created_at <= end)) or 0
                if len(last.sources or []) == 1:  # the run's own count includes unchanged and failed pages
                    pages = int((last.counts or {}).get("pages_seen", 0) or 0)
                else:  # a shared run: pages of this source stored or extracted during it
                    stored = select(func.count()).select_from(PageRow).outerjoin(
                        ArticleRow, ArticleRow.page_id == PageRow.id).where(
                        PageRow.source_id == src.id,
                        or_(PageRow.fetched_at.between(last.started_at, end),
                            ArticleRow.created_at.between(last.started_at, end)))
                    pages = s.scalar(stored) or 0
                errors = s.scalar(select(func.count()).select_from(ErrorRow).where(
                    ErrorRow.run_id == last.id, ErrorRow.source_id == src.id, ErrorRow.level == "error")) or 0
            when = src.last_run_at or (last.started_at if last else None)
            out.append({
                "id": src.id,
                "spec": src.spec,
                "kind": src.kind,
                "last_run_id": last.id if last else None,
                "last_run_at": _iso(when),
                "last_run_finished_at": _iso(last.finished_at) if last else None,
                "pages": int(pages),
                "new_articles": int(new),
                "errors": int(errors),
                "next_due": _iso(when + interval) if (when is not None and interval is not None) else None,
            })
        return out


def day_summary(store: Store, day: date | None = None) -> dict[str, Any]:
    """Today's (UTC) numbers: clusters created or changed, new articles, flags raised, canonical moves."""
    day = day or datetime.now(UTC).date()
    start = datetime(day.year, day.month, day.day)
    end = start + timedelta(days=1)
    with store.session() as s:
        new_articles = s.scalar(select(func.count()).select_from(ArticleRow)
                                .where(ArticleRow.created_at >= start, ArticleRow.created_at < end)) or 0
        touched = s.scalar(select(func.count(func.distinct(ArticleRow.cluster_id)))
                           .where(ArticleRow.updated_at >= start, ArticleRow.updated_at < end)) or 0
        created = s.scalar(select(func.count()).select_from(ClusterRow)
                           .where(ClusterRow.created_at >= start, ClusterRow.created_at < end)) or 0
        multi = s.scalar(select(func.count()).select_from(
            select(ArticleRow.cluster_id).where(ArticleRow.cluster_id.is_not(None))
            .group_by(ArticleRow.cluster_id).having(func.count() > 1)
            .having(func.max(ArticleRow.updated_at) >= start).subquery())) or 0
        moves = s.scalar(select(func.count()).select_from(EventRow).where(
            EventRow.type == "canonical_changed", EventRow.at >= start, EventRow.at < end)) or 0
        flags: Counter[str] = Counter()
        for fl in s.scalars(select(ArticleRow.flags).where(ArticleRow.updated_at >= start,
                                                           ArticleRow.updated_at < end)):
            flags.update(_flags(fl))
    return {
        "date": day.isoformat(),
        "new_articles": int(new_articles),
        "clusters_created": int(created),
        "clusters_touched": int(touched),
        "multi_article_clusters_touched": int(multi),
        "canonical_changes": int(moves),
        "flags": {k: int(flags.get(k, 0)) for k in KNOWN_FLAGS} | {k: v for k, v in flags.items()
                                                                   if k not in KNOWN_FLAGS},
    }


def store_totals(store: Store) -> dict[str, Any]:
    """Store-wide gauges for /metrics: per-source page/article/error counts, clusters, flags, event counts."""
    with store.session() as s:
        specs = dict(s.execute(select(SourceRow.id, SourceRow.spec)).all())

        def label(source_id: int | None) -> str:
            return specs.get(source_id, "(none)") if source_id is not None else "(none)"

        fetched = Counter({label(k): int(v) for k, v in s.execute(
            select(PageRow.source_id, func.count()).group_by(PageRow.source_id)).all()})
        extracted = Counter({label(k): int(v) for k, v in s.execute(
            select(PageRow.source_id, func.count()).select_from(ArticleRow)
            .join(PageRow, PageRow.id == ArticleRow.page_id).group_by(PageRow.source_id)).all()})
        failed = Counter({label(k): int(v) for k, v in s.execute(
            select(ErrorRow.source_id, func.count()).where(ErrorRow.level == "error")
            .group_by(ErrorRow.source_id)).all()})
        events = {t: int(n) for t, n in s.execute(select(EventRow.type, func.count()).group_by(EventRow.type)).all()}
        clusters = s.scalar(select(func.count(func.distinct(ArticleRow.cluster_id)))) or 0
        canonical = s.scalar(select(func.count()).select_from(ArticleRow)
                             .where(ArticleRow.is_canonical.is_(True))) or 0
        articles = s.scalar(select(func.count()).select_from(ArticleRow)) or 0
        flags: Counter[str] = Counter()
        for fl in s.scalars(select(ArticleRow.flags).where(
                or_(*[cast(ArticleRow.flags, Text).like(f'%"{f}"%') for f in KNOWN_FLAGS]))
                .execution_options(yield_per=2000)):
            flags.update(_flags(fl))
        runs = [(r.started_at, r.finished_at) for r in s.scalars(
            select(RunRow).where(RunRow.finished_at.is_not(None)).order_by(RunRow.id.desc()).limit(1000))]
    return {
        "pages_fetched": dict(fetched),
        "pages_extracted": dict(extracted),
        "pages_failed": dict(failed),
        "events": events,
        "clusters": int(clusters),
        "canonical_articles": int(canonical),
        "articles": int(articles),
        "flags": {k: int(flags.get(k, 0)) for k in KNOWN_FLAGS},
        "run_seconds": [max(0.0, (f - st).total_seconds()) for st, f in runs if f is not None and st is not None],
    }


# export --since ---------------------------------------------------------------------------------------------------
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
    the full export objects (``pipeline.export.export_record``): a consumer upserts them by ``url``.
    """
    from .export import export_record

    after = decode_cursor(cursor, "e") if cursor else 0
    ids, last = changed_article_ids(store, after)
    written = 0
    for row in iter_article_rows(store, ids):
        line = json.dumps(export_record(row), ensure_ascii=False)
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:
            line = json.dumps(export_record(row), ensure_ascii=True)
        out.write(line + "\n")
        written += 1
    out.flush()
    return written, encode_cursor("e", last)


__all__ = [
    "KNOWN_FLAGS", "ArticleFilter", "CursorError", "article_detail", "article_summary", "canonical_ids",
    "changed_article_ids", "day_summary", "decode_cursor", "encode_cursor", "event_dict", "export_since",
    "get_article", "get_cluster", "get_run", "latest_event_id", "list_articles", "list_changes", "list_runs",
    "mirror_from_events", "source_health", "store_totals",
]
