"""Read queries behind the REST API, the changes feed, ``reprint status`` and ``/metrics``.

They live apart from ``store.py`` so the write path stays small and the read side can grow (indexes, caching)
without touching it. Every function takes a ``Store`` and opens its own short read transaction; results are
plain dicts so the API, the status screen and the JSON output share one shape.

Cursors are opaque to clients (base64url of a kind letter and an id) but stable: they name a row id, never an
offset, so they survive restarts, new inserts and rows that change between two pages.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, func, or_, select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from pipeline.records import ArticleFilter
from pipeline.serve.cursors import CursorError, decode_cursor, encode_cursor
from pipeline.serve.readers import readers, sql_for
from pipeline.serve.shapes import (
    EVENT_SQL,
    SUMMARY_SQL,
    article_detail,
    article_summary,
    event_dict,
    event_from_tuple,
    flag_list,
    iso,
    naive_utc,
    summary_from_tuple,
)
from pipeline.store import ArticleRow, ClusterRow, ErrorRow, EventRow, PageRow, RunRow, SourceRow, Store

log = logging.getLogger(__name__)

#: The flags a client may filter on; anything else is a 422, not an empty page.
KNOWN_FLAGS = ("spun", "scraped")
#: Event types that belong to a cluster's canonical history.
HISTORY_TYPES = ("article_added", "canonical_changed", "canonical_status", "clusters_merged", "cluster_split",
                 "article_updated", "article_removed", "review_applied", "review_undone")


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True, slots=True)
class _Shape:
    """Which filters a listing has (the values are parameters): what its statements are built and cached by."""

    canonical: bool | None
    site: bool
    published: bool
    ingested: bool
    flag: str | None  # a known flag (matched literally, as its partial index is), "?" for any other, or None
    q: bool
    cluster: bool


def _shape(flt: ArticleFilter) -> _Shape:
    flag = None if not flt.flag else (flt.flag if flt.flag in KNOWN_FLAGS else "?")
    return _Shape(flt.canonical, bool(flt.site), flt.published_since is not None, flt.ingested_since is not None,
                  flag, bool(flt.q), flt.cluster_id is not None)


def flag_condition(flag: str) -> str:
    """The SQL condition 'the JSON flags list holds ``flag``' for a known flag: its text contains '"spun"'. The
    partial indexes ``ix_articles_flag_*`` are declared with exactly this condition, which is what lets both
    SQLite and PostgreSQL use them."""
    assert flag in KNOWN_FLAGS, flag
    return f"CAST(flags AS TEXT) LIKE '%\"{flag}\"%'"


def _conditions(dialect: str, shape: _Shape, *, index: str) -> list[str]:
    """The WHERE terms of a listing. ``index`` says which index the statement is meant to walk ('canonical', 'driver'
    (site, flag or cluster), 'range' (published / created_at), or 'id'); on SQLite the others' columns get a
    unary ``+`` so its planner cannot pick them instead (PostgreSQL plans from statistics)."""
    lite = dialect == "sqlite"

    def term(column: str, rest: str, indexed: bool) -> str:
        return f"{'+' if lite and not indexed else ''}{column}{rest}"

    out = []
    if shape.canonical is not None:
        if lite:
            out.append(term("is_canonical", f" = {int(shape.canonical)}", index == "canonical"))
        else:
            out.append("is_canonical" if shape.canonical else "NOT is_canonical")
    if shape.site:
        out.append(term("site", " = :site", index == "driver"))
    if shape.flag == "?":
        out.append("CAST(flags AS TEXT) LIKE :flag ESCAPE '\\'")
    elif shape.flag:
        out.append(flag_condition(shape.flag))
    if shape.cluster:
        out.append(term("cluster_id", " = :cluster", index == "driver"))
    if shape.published:
        # published is stored as an ISO-8601 string, so a lexical comparison is a chronological one
        out.append(term("published", " >= :published", index == "range"))
    if shape.ingested:
        out.append(term("created_at", " >= :ingested",
                        index == "range" and not shape.published))
    if shape.q:
        out.append("lower(title) LIKE :q ESCAPE '\\'")
    return out


@dataclass(frozen=True, slots=True)
class _Plan:
    walk: str  # the page in id order from :after, LIMIT :n (the only statement unless there is a date range)
    # a date range without a site, flag or cluster to walk: race the id order against the range index
    bound: str | None = None  # the :skip+1-th candidate id after :after: where a step of the walk ends
    step: str | None = None  # the walk up to :bound
    probe: str | None = None  # whether more than :skip matches follow :after (reading the range index)
    top: str | None = None  # the :n smallest matching ids after :after among :k, through the range index
    covering: bool = True  # the probe reads the range index alone (else it costs a row per entry, like a step)


@functools.lru_cache(maxsize=256)
def _article_plan(dialect: str, shape: _Shape) -> _Plan:
    driver = shape.site or shape.flag is not None or shape.cluster
    dated = shape.published or shape.ingested
    # no index to walk: go in bounded steps of the id order (a planner misjudging a LIKE's selectivity would
    # otherwise read and sort the whole table), and with a date range race them against the date index
    ranged = (dated or shape.q) and not driver
    index = "driver" if driver else ("canonical" if shape.canonical is not None else "id")
    where = " AND ".join([*_conditions(dialect, shape, index=index), "id > :after"])
    walk = f"SELECT {SUMMARY_SQL} FROM articles WHERE {where} ORDER BY id LIMIT :n"
    if not ranged:
        return _Plan(sql_for(dialect, walk))
    # the walk's candidates: the canonical index (or the primary key) in id order, read alone
    candidates = " AND ".join([*_conditions(dialect, _Shape(shape.canonical, False, False, False, None, False, False),
                                            index=index), "id > :after"])
    bound = f"SELECT id FROM articles WHERE {candidates} ORDER BY id LIMIT 1 OFFSET :skip"
    step = f"SELECT {SUMMARY_SQL} FROM articles WHERE {where} AND id <= :bound ORDER BY id LIMIT :n"
    if not dated:
        return _Plan(*(sql_for(dialect, s) for s in (walk, bound, step)))
    column = "published" if shape.published else "created_at"
    ranged_where = " AND ".join([*_conditions(dialect, shape, index="range"),
                                 "+id > :after" if dialect == "sqlite" else "id > :after"])
    probe = f"SELECT 1 FROM articles WHERE {ranged_where} ORDER BY {column} LIMIT 1 OFFSET :skip"
    top = (f"SELECT id FROM (SELECT id FROM articles WHERE {ranged_where} ORDER BY {column} LIMIT :k) AS matches "
           f"ORDER BY id LIMIT :n")
    covering = not shape.q and not (shape.published and shape.ingested)
    return _Plan(*(sql_for(dialect, s) for s in (walk, bound, step, probe, top)), covering=covering)


#: The race's first step (candidate rows walked in id order) and how many index entries a probe may read per row
#: a step reads (an index-only entry costs several times less than a row).
RACE_STEP = 256
RACE_PROBE_RATIO = 4


def list_articles(store: Store, flt: ArticleFilter, *, after: int = 0,
                  limit: int = 50) -> tuple[list[dict[str, Any]], int | None]:
    """A page of articles in id order after ``after``; returns (items, last id if there may be more).

    Keyset pagination on the primary key: stable while rows are added. A site, flag or cluster filter walks its
    own (…, id) index, so a page costs O(limit) at any depth. A date filter alone (published_since,
    ingested_since) races the id order against the date index: steps of growing size walk rows in id order
    (cheap when matches are dense after the cursor), and between them a probe counts whether few enough
    matches follow the cursor to take the smallest ids straight from the date index (cheap when they are
    few). Either way the work is within a small factor of the cheaper plan, whatever the data's correlation.
    A title text filter alone (no index can serve a substring) walks the same bounded steps without the probe.
    """
    reads = readers(store)
    dialect = reads.dialect
    shape = _shape(flt)
    plan = _article_plan(dialect, shape)
    params: dict[str, Any] = {}
    if flt.site:
        params["site"] = flt.site
    if shape.flag == "?":
        params["flag"] = f'%"{_like_escape(str(flt.flag))}"%'
    if flt.cluster_id is not None:
        params["cluster"] = flt.cluster_id
    if flt.published_since is not None:
        params["published"] = flt.published_since.isoformat()
    if flt.ingested_since is not None:
        params["ingested"] = _datetime_param(store.engine.dialect, naive_utc(flt.ingested_since))
    if flt.q:
        params["q"] = f"%{_like_escape(flt.q.lower())}%"
    need = limit + 1

    def work(cur: Any) -> list[Any]:
        if plan.bound is None:
            cur.execute(plan.walk, {**params, "after": after, "n": need})
            return cur.fetchall()
        rows: list[Any] = []
        pos, step = after, RACE_STEP
        while True:
            cur.execute(plan.bound, {**params, "after": pos, "skip": step - 1})
            end = cur.fetchone()
            if end is None:  # fewer than a step's candidates are left: walk them all
                cur.execute(plan.walk, {**params, "after": pos, "n": need - len(rows)})
                return rows + cur.fetchall()
            cur.execute(plan.step, {**params, "after": pos, "bound": end[0], "n": need - len(rows)})
            rows += cur.fetchall()
            if len(rows) >= need:
                return rows
            pos = end[0]
            if plan.probe is None or plan.top is None:
                step *= 4
                continue
            reach = step * (RACE_PROBE_RATIO if plan.covering else 1)
            cur.execute(plan.probe, {**params, "after": pos, "skip": reach})
            if cur.fetchone() is None:  # at most `reach` matches follow: take the smallest from the date index
                cur.execute(plan.top, {**params, "after": pos, "k": reach, "n": need - len(rows)})
                ids = [int(r[0]) for r in cur.fetchall()]
                if ids:
                    cur.execute(f"SELECT {SUMMARY_SQL} FROM articles WHERE id IN ({','.join(map(str, ids))}) "
                                "ORDER BY id")
                    rows += cur.fetchall()
                return rows
            step *= 4

    rows = reads.run(work)
    more = len(rows) > limit
    rows = rows[:limit]
    return [summary_from_tuple(r) for r in rows], (rows[-1][0] if more and rows else None)


def bounded(flt: ArticleFilter) -> bool:
    """Whether a page of this listing reads O(limit) index entries whatever the data: no title text or date filter
    (those may scan), and no flag asked of canonical articles (flagged articles are copies, so that walks every
    flagged one to find few or none)."""
    return not (flt.q or flt.published_since is not None or flt.ingested_since is not None
                or (flt.flag and flt.canonical is True))


def ensure_read_indexes(store: Store) -> None:
    """Create the articles' indexes a SQLite store lacks. SQLite keeps ``create_all``, which makes no index on a
    table that already exists, so a store made before an index was declared gets it here, once (a few seconds on
    a large store). Best effort: the listings are right without them, only slower."""
    if store.engine.dialect.name != "sqlite":
        return
    try:
        with store.engine.begin() as conn:
            existing = set(conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'articles'").scalars())
            for index in ArticleRow.__table__.indexes:
                if index.name not in existing:
                    log.info("creating index %s", index.name)
                    index.create(conn)
    except SQLAlchemyError as err:
        log.warning("could not create the read indexes: %s", err)


def _datetime_param(dialect: Dialect, value: datetime) -> Any:
    """A naive-UTC datetime as the driver must be given it to compare with stored ones (SQLite: SQLAlchemy's
    stored text form; PostgreSQL: the datetime)."""
    process = DateTime().bind_processor(dialect)
    return process(value) if process is not None else value


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


def article_versions(store: Store, article_id: int) -> dict[str, Any] | None:
    """The article's current version and the earlier ones it replaced (oldest first), or None."""
    from pipeline.store.living import text_hash

    with store.session() as s:
        row = s.execute(select(ArticleRow.id, ArticleRow.url, ArticleRow.title, ArticleRow.text, ArticleRow.n_tokens,
                               ArticleRow.updated_at, PageRow.content_hash, PageRow.fetched_at)
                        .join(PageRow, PageRow.id == ArticleRow.page_id).where(ArticleRow.id == article_id)).first()
    if row is None:
        return None
    earlier = store.versions(article_id)
    current = {"version": len(earlier) + 1, "content_hash": row.content_hash, "fetched_at": iso(row.fetched_at),
               "replaced_at": None, "title": row.title or "", "text_length": len(row.text or ""),
               "text_hash": text_hash(row.text or ""), "n_tokens": int(row.n_tokens or 0), "reason": None}
    return {"article_id": row.id, "url": row.url, "current": current, "versions": earlier}


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
            "created_at": iso(cluster.created_at),
            "updated_at": iso(cluster.updated_at),
            "members": [
                {**article_summary(r), "evidence": r.evidence or {}} for r in rows
            ],
            "history": history,
        }


#: How long a poll waits for a moment with no event-writing transaction in flight before it settles for the
#: last horizon known to be safe (PostgreSQL only; see ``stable_horizon``).
HORIZON_WAIT_SECONDS = 0.05
_last_safe: dict[str, int] = {}
_SEQUENCE_VALUE = ("SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('events', 'id')::regclass), 0)")
_WRITERS_IN_FLIGHT = ("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE relation = 'events'::regclass "
                      "AND mode = 'RowExclusiveLock' AND granted AND pid <> pg_backend_pid())")


def stable_horizon(store: Store, cursor: Any, wait: float = HORIZON_WAIT_SECONDS) -> int | None:
    """The highest event id the feed may serve without ever skipping one, or None when every visible id is safe.

    On PostgreSQL ids come from a sequence when a row is inserted, but transactions commit in any order: a
    follower that read id 101 while id 100 was still uncommitted would never see 100. Ids up to the sequence's
    value at time t1 are final once no other transaction holds a write lock on ``events`` at a later time t2
    (an inserter takes that lock before it draws an id and keeps it until it commits). So: read the sequence,
    then the locks, and serve only ids up to that value. While writers overlap without pause, the last horizon
    found safe is served (never a newer unsafe one). SQLite has a single writer, so its commit order is its id
    order and no horizon is needed. ``cursor`` is a DBAPI cursor in autocommit (``ReadConnections``): each
    statement sees what was committed when it started, which is what makes reading events after this valid.
    """
    if store.engine.dialect.name != "postgresql":
        return None
    deadline = time.monotonic() + wait
    while True:
        cursor.execute(_SEQUENCE_VALUE)
        seq_value = int(cursor.fetchone()[0] or 0)
        cursor.execute(_WRITERS_IN_FLIGHT)
        busy = cursor.fetchone()[0]
        if not busy:
            _last_safe[store.url] = max(_last_safe.get(store.url, 0), seq_value)
            return _last_safe[store.url]
        if time.monotonic() >= deadline:
            return _last_safe.get(store.url, 0)
        time.sleep(0.005)


@functools.lru_cache(maxsize=64)
def _changes_sql(dialect: str, n_types: int, capped: bool) -> str:
    types = f" AND type IN ({', '.join(f':t{i}' for i in range(n_types))})" if n_types else ""
    cap = " AND id <= :horizon" if capped else ""
    return sql_for(dialect, f"SELECT {EVENT_SQL} FROM events WHERE id > :after{types}{cap} ORDER BY id LIMIT :n")


def list_changes(store: Store, *, after: int = 0, limit: int = 500, types: Iterable[str] | None = None,
                 wait: float = HORIZON_WAIT_SECONDS, raw_data: bool = False) -> tuple[list[dict[str, Any]], int]:
    """Events after ``after`` in id order, up to the stable horizon; returns (events, id to resume from).

    The resume id is the last event returned, or ``after`` when there is nothing new, so a poller can always
    keep the cursor it was given and never skips or repeats an event. ``raw_data`` leaves each event's data as
    its stored JSON (an ``orjson.Fragment``) for a caller that encodes the page with orjson.
    """
    reads = readers(store)
    dialect = reads.dialect
    wanted = list(types or [])
    params: dict[str, Any] = {"after": after, "n": limit} | {f"t{i}": t for i, t in enumerate(wanted)}

    def work(cur: Any) -> list[Any]:
        if dialect == "postgresql":
            known = _last_safe.get(store.url, 0)
            if known > after:  # a reader catching up below a horizon already proven safe needs no new proof
                cur.execute(_changes_sql(dialect, len(wanted), True), params | {"horizon": known})
                rows = cur.fetchall()
                if len(rows) == limit:
                    return rows
        horizon = stable_horizon(store, cur, wait)
        if horizon is None:
            cur.execute(_changes_sql(dialect, len(wanted), False), params)
        else:
            cur.execute(_changes_sql(dialect, len(wanted), True), params | {"horizon": horizon})
        return cur.fetchall()

    rows = reads.run(work)
    return [event_from_tuple(r, raw_data) for r in rows], (rows[-1][0] if rows else after)


def latest_event_id(store: Store) -> int:
    """The id of the newest event (0 for an empty feed): a cursor for 'from now on'."""
    with store.session() as s:
        return int(s.scalar(select(func.max(EventRow.id))) or 0)


def mirror_from_events(events: Iterable[dict[str, Any]], canonical: set[int] | None = None) -> set[int]:
    """Apply feed events to a set of canonical article ids, as a downstream follower does.

    article_added says whether the new article starts canonical; canonical_status flips one article;
    article_removed (a takedown) drops it. Everything else (canonical_changed, clusters_merged, cluster_split,
    flags_changed, article_updated, review_applied, review_undone) is informative and already implied.
    """
    state = set() if canonical is None else canonical
    for e in events:
        aid = e.get("article_id")
        if aid is None:
            continue
        data = e.get("data") or {}
        if e["type"] == "article_removed":
            state.discard(aid)
        elif e["type"] in ("article_added", "canonical_status"):
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
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
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
            {"id": e.id, "at": iso(e.at), "level": e.level, "stage": e.stage, "kind": e.kind, "url": e.url,
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
                "last_run_at": iso(when),
                "last_run_finished_at": iso(last.finished_at) if last else None,
                "pages": int(pages),
                "new_articles": int(new),
                "errors": int(errors),
                "next_due": iso(when + interval) if (when is not None and interval is not None) else None,
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
            flags.update(flag_list(fl))
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
    """Store-wide gauges for /metrics: per-source page/article/error counts, clusters, flags, event counts.

    Every count reads an index, never the articles' text or the pages' HTML: pages per source and events per type
    their own indexes (migration 0010), extracted pages a probe of ``articles.page_id``'s, flags their partial
    indexes (``Store.flag_totals``). On the benchmark's 100,000-article store a build went from 0.25-0.42 s to
    0.11-0.16 s; the counts still grow with the store, by index entries."""
    flags = store.flag_totals()
    with store.session() as s:
        specs = dict(s.execute(select(SourceRow.id, SourceRow.spec)).all())

        def label(source_id: int | None) -> str:
            return specs.get(source_id, "(none)") if source_id is not None else "(none)"

        def per_source(rows: Iterable[Any]) -> Counter[str]:
            counts: Counter[str] = Counter()
            for source_id, n in rows:
                counts[label(source_id)] += int(n)  # sources that share a label (a deleted one) add up
            return counts

        fetched = per_source(s.execute(select(PageRow.source_id, func.count()).group_by(PageRow.source_id)))
        has_article = select(ArticleRow.id).where(ArticleRow.page_id == PageRow.id).exists()
        extracted = per_source(s.execute(select(PageRow.source_id, func.count()).where(has_article)
                                         .group_by(PageRow.source_id)))
        failed = per_source(s.execute(select(ErrorRow.source_id, func.count()).where(ErrorRow.level == "error")
                                      .group_by(ErrorRow.source_id)))
        events = {t: int(n) for t, n in s.execute(select(EventRow.type, func.count()).group_by(EventRow.type)).all()}
        clusters = s.scalar(select(func.count(func.distinct(ArticleRow.cluster_id)))) or 0
        canonical = s.scalar(select(func.count()).select_from(ArticleRow)
                             .where(ArticleRow.is_canonical.is_(True))) or 0
        articles = s.scalar(select(func.count()).select_from(ArticleRow)) or 0
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


__all__ = [
    "KNOWN_FLAGS", "ArticleFilter", "CursorError", "article_detail", "article_summary", "article_versions",
    "canonical_ids",
    "day_summary", "decode_cursor", "encode_cursor", "event_dict", "get_article", "get_cluster", "get_run",
    "latest_event_id", "list_articles", "list_changes", "list_runs",
    "mirror_from_events", "source_health", "store_totals",
]
