"""The web UI's read queries: the cluster list, one cluster's header, a page of its members, one member's texts
and the cluster's canonical history.

They sit beside ``pipeline.serve.queries`` (whose row shapes and flag conditions they reuse) and, like them, take
a ``Store``, open one short read transaction and return plain dicts. Every query is bounded by what one screen
shows, so a cluster of 2,000 members costs a page of members, one aggregate over the cluster's index entries and
two article rows: the member list paginates in id order (keyset), the diff reads only the member shown.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import case, func, literal_column, or_, select
from sqlalchemy.sql.elements import ColumnElement

from pipeline.serve.queries import HISTORY_TYPES, KNOWN_FLAGS, _like_escape, flag_condition
from pipeline.serve.shapes import iso as _iso
from pipeline.store import ArticleRow, ClusterRow, EventRow, PageRow, Store, url_key

#: The orders of the cluster list.
SORTS = {"newest": "newest first", "biggest": "biggest first", "flagged": "most flagged first",
         "updated": "recently changed"}
#: Timeline events (the canonical's moves and splits); an ``article_added`` or a merge per member would drown them.
TIMELINE_TYPES = tuple(t for t in HISTORY_TYPES if t not in ("article_added", "canonical_status", "clusters_merged"))
TIMELINE_MAX = 200

_A = ArticleRow.__table__
_C = ClusterRow.__table__
_E = EventRow.__table__


@dataclass(frozen=True, slots=True)
class ClusterQuery:
    """The cluster list's filters. ``site`` matches any member's site; dates bound the canonical's publication."""

    sort: str = "newest"
    flag: str | None = None
    site: str | None = None
    since: date | None = None
    until: date | None = None
    q: str | None = None
    singles: bool = False  # include clusters of one article (no copies)
    page: int = 1
    per_page: int = 50


def _flagged(table: Any, flag: str) -> ColumnElement[bool]:
    """``flag_condition`` on ``table``'s flags (its exact text, which the partial flag indexes are declared with)."""
    return literal_column(flag_condition(flag).replace("flags", f"{table.name}.flags", 1))  # type: ignore[return-value]


def _any_flag(table: Any) -> ColumnElement[bool]:
    return or_(*[_flagged(table, f) for f in KNOWN_FLAGS])


def list_clusters(store: Store, cq: ClusterQuery) -> tuple[list[dict[str, Any]], bool]:
    """One page of clusters (canonical title, site and URL, size, flag counts); returns (rows, more follow)."""
    canon = _A.alias("canon")
    members = _A.alias("m")
    stmt = (select(_C.c.id, _C.c.created_at, _C.c.updated_at, _C.c.canonical_id)
            .where(_C.c.merged_into.is_(None), _C.c.canonical_id.is_not(None)))
    if cq.since or cq.until or cq.q:  # filters on the canonical: join it (else it is read for the page's rows only)
        stmt = stmt.join(canon, canon.c.id == _C.c.canonical_id)
    if not cq.singles:
        stmt = stmt.where(_C.c.size > 1)
    if cq.flag:
        stmt = stmt.where(_C.c.id.in_(select(members.c.cluster_id).where(_flagged(members, cq.flag))))
    if cq.site:
        stmt = stmt.where(_C.c.id.in_(select(members.c.cluster_id).where(members.c.site == cq.site)))
    if cq.since:
        stmt = stmt.where(canon.c.published >= cq.since.isoformat())
    if cq.until:  # published is ISO text, a date or a datetime: before the next day is within the day
        stmt = stmt.where(canon.c.published < (cq.until + timedelta(days=1)).isoformat())
    if cq.q:
        stmt = stmt.where(func.lower(canon.c.title).like(f"%{_like_escape(cq.q.lower())}%", escape="\\"))
    if cq.sort == "biggest":
        stmt = stmt.order_by(_C.c.size.desc(), _C.c.id)
    elif cq.sort == "flagged":
        flagged = (select(members.c.cluster_id, func.count().label("n")).where(_any_flag(members))
                   .group_by(members.c.cluster_id).subquery("f"))
        stmt = stmt.outerjoin(flagged, flagged.c.cluster_id == _C.c.id).order_by(
            func.coalesce(flagged.c.n, 0).desc(), _C.c.size.desc(), _C.c.id)
    elif cq.sort == "updated":
        stmt = stmt.order_by(_C.c.updated_at.desc(), _C.c.id.desc())
    else:
        stmt = stmt.order_by(_C.c.created_at.desc(), _C.c.id.desc())
    stmt = stmt.limit(cq.per_page + 1).offset((max(1, cq.page) - 1) * cq.per_page)
    with _session(store) as s:
        rows = s.execute(stmt).all()
        more = len(rows) > cq.per_page
        rows = rows[:cq.per_page]
        counts = _cluster_flags(s, store, [(r.id, r.updated_at) for r in rows])
        canonicals = {r.id: {"id": r.id, "title": r.title or "", "site": r.site, "url": r.url,
                             "published": r.published} for r in s.execute(
            select(_A.c.id, _A.c.title, _A.c.site, _A.c.url, _A.c.published)
            .where(_A.c.id.in_([r.canonical_id for r in rows])))} if rows else {}
    return [{"id": r.id, "size": counts[r.id][1], "created_at": _iso(r.created_at), "updated_at": _iso(r.updated_at),
             "canonical": canonicals.get(r.canonical_id) or {"id": r.canonical_id, "title": "", "site": None,
                                                             "url": None, "published": None},
             "flags": {f: n for f, n in counts[r.id][0].items() if n}} for r in rows], more


_open = threading.local()


@contextmanager
def reading(store: Store) -> Iterator[None]:
    """Run the queries made inside on one read session of ``store`` (one connection check-out and transaction for
    a whole page, where each query would otherwise pay its own: several round trips each on PostgreSQL)."""
    if getattr(_open, "session", None) is not None:
        yield
        return
    with store.session() as s:
        _open.session, _open.store = s, store
        try:
            yield
        finally:
            _open.session = _open.store = None


def _session(store: Store) -> AbstractContextManager[Any]:
    """The page's session (``reading``) when one is open on this store, else a session of its own."""
    if getattr(_open, "session", None) is not None and _open.store is store:
        return nullcontext(_open.session)
    return store.session()


class _Memo:
    """Results of a cluster's costlier aggregates, kept under a key of what changes them.

    A cluster's flags and canonical history change only in ``Store.apply_decision``, which logs the events and
    always sets the cluster's ``updated_at`` (merges and splits are followed by a decision of the cluster), and a
    member leaving changes its member count; so (store, cluster, updated_at, members) names one state of it. The
    key costs an index-only count; the flag counts themselves read every member's row (on SQLite, past its text),
    and the history every event of the cluster."""

    def __init__(self, size: int = 512) -> None:
        self._items: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        found = self.peek(key)
        if found is _MISSING:
            found = make()
            self.put(key, found)
        return found

    def peek(self, key: tuple[Any, ...]) -> Any:
        """The value kept for ``key``, or ``_MISSING``."""
        with self._lock:
            if key not in self._items:
                return _MISSING
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: tuple[Any, ...], value: Any) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_MISSING = object()
_memo = _Memo()


def _state(store: Store, cluster_id: int, updated_at: Any, members: int) -> tuple[Any, ...]:
    return (store.url, id(store.engine), cluster_id, updated_at, members)


def _cluster_flags(s: Any, store: Store, clusters: list[tuple[int, Any]]
                   ) -> dict[int, tuple[dict[str, int], int, tuple[Any, ...]]]:
    """cluster id → ({flag: members carrying it}, members, state) for these (cluster id, updated_at): the member
    counts from the cluster index, the flag counts kept per state (``_Memo``), those missing read in one query."""
    if not clusters:
        return {}
    ids = [c for c, _ in clusters]
    members = dict(s.execute(select(_A.c.cluster_id, func.count()).where(_A.c.cluster_id.in_(ids))
                             .group_by(_A.c.cluster_id)).all())
    out: dict[int, tuple[dict[str, int], int, tuple[Any, ...]]] = {}
    missing: list[int] = []
    for cid, updated_at in clusters:
        state = _state(store, cid, updated_at, int(members.get(cid, 0)))
        kept = _memo.peek(("flags", *state))
        out[cid] = (kept if kept is not _MISSING else {}, int(members.get(cid, 0)), state)
        if kept is _MISSING:
            missing.append(cid)
    if missing:
        cols = [func.sum(case((_flagged(_A, f), 1), else_=0)).label(f) for f in KNOWN_FLAGS]
        found = {r[0]: {f: int(n or 0) for f, n in zip(KNOWN_FLAGS, r[1:], strict=True)} for r in s.execute(
            select(_A.c.cluster_id, *cols).where(_A.c.cluster_id.in_(missing)).group_by(_A.c.cluster_id))}
        for cid in missing:
            flags, n, state = out[cid]
            flags = found.get(cid, dict.fromkeys(KNOWN_FLAGS, 0))
            _memo.put(("flags", *state), flags)
            out[cid] = (flags, n, state)
    return out


def cluster_header(store: Store, cluster_id: int) -> dict[str, Any] | None:
    """The cluster row with its member and flag counts and its canonical's summary (no member list)."""
    with _session(store) as s:
        c = s.execute(select(_C).where(_C.c.id == cluster_id)).first()
        if c is None:
            return None
        flags, members, state = _cluster_flags(s, store, [(cluster_id, c.updated_at)])[cluster_id]
        canonical = _article(s, c.canonical_id) if c.canonical_id is not None else None
    return {"id": c.id, "size": members, "merged_into": c.merged_into, "created_at": _iso(c.created_at),
            "updated_at": _iso(c.updated_at), "canonical": canonical, "flags": dict(flags), "state": state}


_MEMBER_COLS = (_A.c.id, _A.c.url, _A.c.title, _A.c.site, _A.c.published, _A.c.byline, _A.c.is_canonical,
                _A.c.flags, _A.c.similarity, _A.c.evidence, _A.c.n_tokens, _A.c.canonical_url)


def _member(r: Any) -> dict[str, Any]:
    evidence = r.evidence or {}
    relation = (evidence.get("relation") or {}).get("to_canonical")
    return {"id": r.id, "url": r.url, "title": r.title or "", "site": r.site, "published": r.published,
            "byline": r.byline, "canonical": bool(r.is_canonical), "flags": [str(f) for f in r.flags or []],
            "similarity": float(r.similarity) if r.similarity is not None else None,
            "relation": "canonical" if r.is_canonical else relation, "evidence": evidence,
            "n_tokens": int(r.n_tokens or 0), "canonical_url": r.canonical_url}


def _article(s: Any, article_id: int) -> dict[str, Any] | None:
    r = s.execute(select(*_MEMBER_COLS).where(_A.c.id == article_id)).first()
    return _member(r) if r is not None else None


def list_members(store: Store, cluster_id: int, *, after: int = 0, limit: int = 50,
                 flag: str | None = None) -> tuple[list[dict[str, Any]], int | None]:
    """A page of the cluster's members in id order after ``after``; returns (members, id to continue after)."""
    stmt = select(*_MEMBER_COLS).where(_A.c.cluster_id == cluster_id, _A.c.id > after)
    if flag:
        stmt = stmt.where(_flagged(_A, flag))
    stmt = stmt.order_by(_A.c.id).limit(limit + 1)
    with _session(store) as s:
        rows = s.execute(stmt).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return [_member(r) for r in rows], (rows[-1].id if more and rows else None)


def member_before(store: Store, cluster_id: int, before: int, limit: int) -> int | None:
    """The ``after`` that shows the page ending just before member ``before`` (None: it is the first page)."""
    with _session(store) as s:
        ids = list(s.scalars(select(_A.c.id).where(_A.c.cluster_id == cluster_id, _A.c.id < before)
                             .order_by(_A.c.id.desc()).limit(limit + 1)))
    return ids[limit] if len(ids) > limit else None


def diff_texts(store: Store, cluster_id: int, article_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Text, meta and byline of these members of the cluster (other clusters' articles are not returned)."""
    if not article_ids:
        return {}
    with _session(store) as s:
        rows = s.execute(select(*_MEMBER_COLS, _A.c.text, _A.c.meta)
                         .where(_A.c.id.in_(article_ids), _A.c.cluster_id == cluster_id)).all()
    return {r.id: {**_member(r), "text": r.text or "", "meta": r.meta or {}} for r in rows}


def timeline(store: Store, cluster_id: int, state: tuple[Any, ...] | None = None) -> dict[str, Any]:
    """The canonical's history: when the first article arrived, every move of the canonical (old, new, reason) and
    split, oldest first, with the titles and sites of the articles named; and the merges, counted (each arriving
    copy starts a cluster of its own that is merged into this one, so a 2,000-member cluster has 2,000 of them).
    ``state`` (``cluster_header``'s) lets a result be reused while the cluster has not changed."""
    if state is not None:
        return _memo.get(("timeline", *state), lambda: timeline(store, cluster_id))
    with _session(store) as s:
        first = s.execute(select(_E.c.id, _E.c.at, _E.c.article_id).where(
            _E.c.cluster_id == cluster_id, _E.c.type == "article_added").order_by(_E.c.id).limit(1)).first()
        events = s.execute(select(_E.c.id, _E.c.at, _E.c.type, _E.c.article_id, _E.c.data).where(
            _E.c.cluster_id == cluster_id, _E.c.type.in_(TIMELINE_TYPES)).order_by(_E.c.id.desc())
            .limit(TIMELINE_MAX)).all()[::-1]
        merges = s.execute(select(func.count(), func.min(_E.c.at), func.max(_E.c.at)).where(
            _E.c.cluster_id == cluster_id, _E.c.type == "clusters_merged")).one()
        named = {int(v) for e in events for v in ((e.data or {}).get("old"), (e.data or {}).get("new"), e.article_id)
                 if isinstance(v, int)}
        if first is not None and first.article_id is not None:
            named.add(int(first.article_id))
        titles = {r.id: {"id": r.id, "title": r.title or "", "site": r.site, "url": r.url}
                  for r in s.execute(select(_A.c.id, _A.c.title, _A.c.site, _A.c.url)
                                     .where(_A.c.id.in_(sorted(named))))} if named else {}
    out = []
    if first is not None:
        out.append({"id": first.id, "at": _iso(first.at), "type": "article_added", "old": None,
                    "new": titles.get(first.article_id), "reason": None, "data": {}})
    for e in events:
        data = e.data or {}
        out.append({"id": e.id, "at": _iso(e.at), "type": e.type, "old": _named(titles, data.get("old")),
                    "new": _named(titles, data.get("new", e.article_id)), "reason": data.get("reason"),
                    "data": data})
    return {"events": out, "merges": {"count": int(merges[0] or 0), "first": _iso(merges[1]),
                                      "last": _iso(merges[2])}}


def _named(titles: dict[int, dict[str, Any]], value: Any) -> dict[str, Any] | None:
    if not isinstance(value, int):
        return None
    return titles.get(value) or {"id": value, "title": f"article {value} (no longer stored)", "site": None,
                                 "url": None}


def article_cluster(store: Store, article_id: int) -> int | None:
    """The cluster an article is in now (to follow a member that moved)."""
    with _session(store) as s:
        return s.scalar(select(_A.c.cluster_id).where(_A.c.id == article_id))


def cluster_of_url(store: Store, url: str) -> tuple[int, int] | None:
    """(article id, cluster id) of the article stored for ``url``."""
    page = PageRow.__table__
    with _session(store) as s:  # through the pages' unique URL key: articles have no index on the URL itself
        row = s.execute(select(_A.c.id, _A.c.cluster_id).join(page, page.c.id == _A.c.page_id)
                        .where(page.c.url_key == url_key(url))).first()
    return (row.id, row.cluster_id) if row is not None else None


__all__ = ["SORTS", "ClusterQuery", "reading", "article_cluster", "cluster_header", "cluster_of_url", "diff_texts",
           "list_clusters", "list_members", "member_before", "timeline"]
