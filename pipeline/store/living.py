"""The store's writes and reads for living articles (issue 12): updates and their versions, operator reviews,
takedowns (tombstones), retention (pruned HTML) and the re-processing checkpoint.

``LivingStore`` is a part of ``Store`` (its base class), kept in its own module because it is its own concern:
every method joins the open ``Store.unit()`` like the rest, and each write that downstream systems must see
logs its event in the same transaction:

- ``article_updated`` (``replace_article``): url, reason (``update`` or ``reprocess``), version, and the old and
  new title, text length and text hash; the events of its consequences (``cluster_split``, ``canonical_status``,
  ``canonical_changed``, ``flags_changed``) follow when the cluster is re-decided;
- ``article_removed`` (``remove_article``): url, reason, whether it was canonical (a mirror drops it);
- ``review_applied`` / ``review_undone`` (``add_review`` / ``undo_review``): the review.

A page's HTML pruned by ``prune_html`` is an empty ``html_gz`` (its content hash stays, so an unchanged re-fetch
is still a no-op).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.engine import Connection

from pipeline.records import Article, PageVersion, Review, Signature
from pipeline.store.codecs import content_hash, edge_verdict, encode_signature, json_text, naive_utc, url_key
from pipeline.store.schema import (
    ArticleRow,
    ArticleVersionRow,
    ClusterRow,
    EdgeRow,
    EventRow,
    LSHBandRow,
    PageRow,
    PendingRow,
    ReprocessCheckpointRow,
    ReviewRow,
    SignatureRow,
    SitemapLastmodRow,
    TombstoneRow,
    UnmatchedRow,
    utcnow,
)

_A, _P, _E, _R = ArticleRow.__table__, PageRow.__table__, EdgeRow.__table__, ReviewRow.__table__
_V, _T, _EV, _C = ArticleVersionRow.__table__, TombstoneRow.__table__, EventRow.__table__, ClusterRow.__table__
# the content log's reads, built once: a deduplicator asks before every use of its cache (once a page)
_LOG_END = select(func.max(_V.c.id))
_LOG_AFTER = select(_V.c.id, _V.c.article_id).where(_V.c.id > bindparam("after"))


def text_hash(text: str) -> str:
    """The digest an ``article_updated`` event and a version give for an article's text."""
    return content_hash(text.encode("utf-8", "surrogatepass"))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value is not None else None


def review_dict(row: Any) -> dict[str, Any]:
    """A review as the CLI, the API and the web UI show it."""
    return {"id": row.id, "kind": row.kind, "urls": [u for u in (row.url_a, row.url_b) if u],
            "article_ids": [a for a in (row.article_a, row.article_b) if a is not None], "flag": row.flag,
            "on": row.flag_on, "who": row.who, "note": row.note, "at": _iso(row.at),
            "undone": row.undone_at is not None, "undone_at": _iso(row.undone_at), "undone_by": row.undone_by}


def _review(row: Any) -> Review:
    return Review(row.id, row.kind, row.article_a, row.article_b, row.flag, row.flag_on, row.who, row.note,
                  _iso(row.at))


class LivingStore:
    """Updates, reviews, takedowns, retention and the re-processing checkpoint (see the module docstring)."""

    _begin: Any  # Store's: the open unit's connection, or a transaction of its own
    _insert_for: Any  # Store's: the dialect's INSERT (ON CONFLICT on SQLite and PostgreSQL)
    _stmts: dict[str, Any]  # Store's: statements built once, for what runs once per page

    def _conn(self, *, read: bool = False) -> AbstractContextManager[Connection]:
        return self._begin(read=read)  # type: ignore[no-any-return]

    # --- updates -----------------------------------------------------------------------------------------------------
    def page_version(self, url: str) -> PageVersion | None:
        """The stored page's content hash and fetch time (what an update's version keeps), or None."""
        with self._conn(read=True) as c:
            row = c.execute(select(_P.c.content_hash, _P.c.fetched_at).where(_P.c.url_key == url_key(url))).first()
        return PageVersion(row[0], row[1]) if row else None

    def page_version_of(self, page_id: int) -> PageVersion | None:
        with self._conn(read=True) as c:
            row = c.execute(select(_P.c.content_hash, _P.c.fetched_at).where(_P.c.id == page_id)).first()
        return PageVersion(row[0], row[1]) if row else None

    def same_article(self, article_id: int, article: Article) -> bool:
        """Whether the stored article already says exactly what ``article`` says (text, title, dates, links, …)."""
        with self._conn(read=True) as c:
            row = c.execute(select(_A.c.title, _A.c.text, _A.c.published, _A.c.site, _A.c.canonical_url,
                                   _A.c.language, _A.c.byline, _A.c.meta).where(_A.c.id == article_id)).first()
        if row is None:
            return False
        stored = (row.title, row.text, row.published, row.site, row.canonical_url, row.language, row.byline)
        mine = (article.title, article.text, article.published, article.site, article.canonical_url,
                article.language, article.byline)
        return stored == mine and (row.meta or {}) == orjson.loads(json_text(article.meta()))

    def replace_article(self, article_id: int, article: Article, signature: Signature, *, reason: str,
                        previous: PageVersion | None = None) -> tuple[int, set[int]]:
        """Replace a stored article by a new version: the old one is kept in ``article_versions``, the text,
        signature and the row's fields are replaced, every relation of the article is dropped (the deduplicator
        verifies it again), and the article and its former neighbours are marked pending (a crash before their
        cluster is re-decided leaves them to the next flush). Logs ``article_updated``. Returns (cluster id,
        former neighbours)."""
        kinds, data = encode_signature(signature)
        now = utcnow()
        with self._conn() as c:
            row = c.execute(select(_A.c.title, _A.c.text, _A.c.n_tokens, _A.c.cluster_id, _A.c.page_id, _A.c.url)
                            .where(_A.c.id == article_id)).one()
            if previous is None:
                found = c.execute(select(_P.c.content_hash, _P.c.fetched_at).where(_P.c.id == row.page_id)).first()
                previous = PageVersion(found[0], found[1]) if found else PageVersion(None, None)
            version = int(c.scalar(select(func.count()).select_from(_V).where(
                _V.c.article_id == article_id, _V.c.reason != "removed")) or 0) + 1
            old_hash, new_hash = text_hash(row.text or ""), text_hash(article.text)
            c.execute(_V.insert().values(
                article_id=article_id, version=version, content_hash=previous.content_hash,
                fetched_at=naive_utc(previous.fetched_at) if previous.fetched_at else None, title=row.title or "",
                text_length=len(row.text or ""), text_hash=old_hash, n_tokens=row.n_tokens or 0, reason=reason,
                replaced_at=now))
            c.execute(update(_A).where(_A.c.id == article_id).values(
                title=article.title, text=article.text, published=article.published, site=article.site,
                canonical_url=article.canonical_url, language=article.language, byline=article.byline,
                meta=article.meta(), n_tokens=signature.n_tokens, updated_at=now))
            c.execute(update(SignatureRow.__table__).where(SignatureRow.article_id == article_id)
                      .values(kinds=kinds, n_tokens=signature.n_tokens, data=data))
            neighbours = self._drop_edges(c, article_id)
            self._mark_pending(c, {article_id} | neighbours)
            changed = [name for name, old, new in (("title", row.title or "", article.title),
                                                   ("text", old_hash, new_hash)) if old != new]
            c.execute(_EV.insert().values(at=now, type="article_updated", cluster_id=row.cluster_id,
                                          article_id=article_id, data={
                "url": row.url, "reason": reason, "version": version + 1, "changed": changed or ["metadata"],
                "title": {"old": row.title or "", "new": article.title},
                "length": {"old": len(row.text or ""), "new": len(article.text)},
                "text_hash": {"old": old_hash, "new": new_hash}}))
            c.execute(update(_C).where(_C.c.id == row.cluster_id).values(updated_at=now))
        return int(row.cluster_id), neighbours

    def _drop_edges(self, c: Connection, article_id: int) -> set[int]:
        """Delete every relation of an article; returns the articles it was related to."""
        rows = c.execute(select(_E.c.a_id, _E.c.b_id).where(or_(_E.c.a_id == article_id, _E.c.b_id == article_id)))
        neighbours = {x for r in rows for x in r} - {article_id}
        c.execute(delete(_E).where(or_(_E.c.a_id == article_id, _E.c.b_id == article_id)))
        return neighbours

    def _mark_pending(self, c: Connection, ids: Iterable[int]) -> None:
        rows = [{"article_id": i} for i in sorted(ids)]
        if rows:
            c.execute(self._insert_for(c)(PendingRow.__table__).on_conflict_do_nothing(), rows)

    def mark_unmatched(self, article_id: int) -> None:
        """The article's matching was cut short (``dedup_deadline``): ``reprocess`` matches it again."""
        with self._conn() as c:
            c.execute(self._insert_for(c)(UnmatchedRow.__table__).on_conflict_do_nothing(),
                      [{"article_id": article_id}])

    def unmatched(self, article_ids: Iterable[int]) -> set[int]:
        """Which of these articles wait to be matched again."""
        ids = sorted(set(article_ids))
        if not ids:
            return set()
        with self._conn(read=True) as c:
            return set(c.scalars(select(UnmatchedRow.article_id).where(
                UnmatchedRow.article_id.in_(bindparam("ids", expanding=True))), {"ids": ids}))

    def clear_unmatched(self, article_id: int) -> None:
        """The article was matched in full."""
        with self._conn() as c:
            c.execute(delete(UnmatchedRow).where(UnmatchedRow.article_id == article_id))

    def content_changes(self, after: int | None = None) -> tuple[int, set[int]]:
        """(the newest entry of the content log, the articles updated or removed after entry ``after``).

        ``article_versions`` is that log: a version per update, and a content-free marker (reason ``removed``) per
        takedown, never deleted, so its ids only grow. A process that keeps articles in memory (a worker's
        deduplicator) asks before it uses them; with ``after=None`` it learns only where the log stands."""
        with self._conn(read=True) as c:
            if after is None:
                return int(c.scalar(_LOG_END) or 0), set()
            rows = c.execute(_LOG_AFTER, {"after": after}).all()
        if not rows:
            return after, set()
        return max(int(r[0]) for r in rows), {int(r[1]) for r in rows}

    def isolated(self, article_id: int) -> bool:
        """Whether an article has no relation, no review in force, and its cluster to itself (a new article
        without a near-duplicate, as ``add_article_once`` left it)."""
        with self._conn(read=True) as c:
            if c.execute(select(_E.c.a_id).where(or_(_E.c.a_id == article_id, _E.c.b_id == article_id))
                         .limit(1)).first() is not None:
                return False
            if c.execute(select(_R.c.id).where(_R.c.undone_at.is_(None), or_(
                    _R.c.article_a == article_id, _R.c.article_b == article_id)).limit(1)).first() is not None:
                return False
            cluster = c.scalar(select(_A.c.cluster_id).where(_A.c.id == article_id))
            return cluster is not None and (c.scalar(select(func.count()).select_from(_A).where(
                _A.c.cluster_id == cluster)) or 0) == 1

    def versions(self, article_id: int) -> list[dict[str, Any]]:
        """The article's earlier versions, oldest first."""
        with self._conn(read=True) as c:
            rows = c.execute(select(_V).where(_V.c.article_id == article_id, _V.c.reason != "removed")
                             .order_by(_V.c.version)).all()
        return [{"version": r.version, "content_hash": r.content_hash, "fetched_at": _iso(r.fetched_at),
                 "replaced_at": _iso(r.replaced_at), "title": r.title, "text_length": r.text_length,
                 "text_hash": r.text_hash, "n_tokens": r.n_tokens, "reason": r.reason} for r in rows]

    def set_edges(self, changed: dict[tuple[int, int], Any]) -> None:
        """Replace stored relations by re-verified ones (a value of None: the pair is no longer related)."""
        gone = [k for k, v in changed.items() if v is None]
        with self._conn() as c:
            for a, b in gone:
                c.execute(delete(_E).where(_E.c.a_id == a, _E.c.b_id == b))
        kept = {k: v for k, v in changed.items() if v is not None}
        if kept:
            self.add_edges(kept)  # type: ignore[attr-defined]

    def edges_from(self, ids: Iterable[int]) -> dict[tuple[int, int], Any]:
        """Every stored relation whose smaller article is one of ``ids`` (each pair once, whoever asks)."""
        ids = list(ids)
        if not ids:
            return {}
        with self._conn(read=True) as c:
            rows = c.execute(select(_E.c.a_id, _E.c.b_id, _E.c.relation, _E.c.similarity, _E.c.data)
                             .where(_E.c.a_id.in_(ids))).all()
        return {(r[0], r[1]): edge_verdict(r[2], r[3], r[4]) for r in rows}

    # --- reviews -----------------------------------------------------------------------------------------------------
    def article_by_url(self, url: str) -> tuple[int, int | None] | None:
        """(article id, cluster id) of the article stored for a URL, through the pages' unique URL key."""
        with self._conn(read=True) as c:
            row = c.execute(select(_A.c.id, _A.c.cluster_id).join(_P, _P.c.id == _A.c.page_id)
                            .where(_P.c.url_key == url_key(url))).first()
        return (int(row[0]), row[1]) if row else None

    def has_active_reviews(self) -> bool:
        """Whether any review is in force (a decision reads the reviews only then)."""
        with self._conn(read=True) as c:
            return c.execute(select(_R.c.id).where(_R.c.undone_at.is_(None)).limit(1)).first() is not None

    def active_reviews(self, article_ids: Iterable[int]) -> list[Review]:
        """The reviews in force that name any of these articles."""
        ids = list(article_ids)
        out: dict[int, Review] = {}
        with self._conn(read=True) as c:
            for start in range(0, len(ids), 900):
                chunk = ids[start:start + 900]
                for row in c.execute(select(_R).where(_R.c.undone_at.is_(None),
                                                      or_(_R.c.article_a.in_(chunk), _R.c.article_b.in_(chunk)))):
                    out[row.id] = _review(row)
        return [out[k] for k in sorted(out)]

    def _merge_links(self, c: Connection, ids: list[int]) -> list[tuple[int, int]]:
        """The merges in force that name any of these articles (the component walk follows them)."""
        rows = c.execute(select(_R.c.article_a, _R.c.article_b).where(
            _R.c.kind == "merge", _R.c.undone_at.is_(None), or_(_R.c.article_a.in_(ids), _R.c.article_b.in_(ids))))
        return [(int(a), int(b)) for a, b in rows if b is not None]

    def add_review(self, *, kind: str, urls: list[str], articles: list[int], flag: str | None, on: bool | None,
                   who: str, note: str | None, cluster_id: int | None) -> dict[str, Any]:
        """Record a review and log ``review_applied``; returns the review."""
        now = utcnow()
        with self._conn() as c:
            review_id = c.execute(_R.insert().values(
                kind=kind, url_a=urls[0], url_b=urls[1] if len(urls) > 1 else None, article_a=articles[0],
                article_b=articles[1] if len(articles) > 1 else None, flag=flag, flag_on=on, who=who, note=note,
                at=now)).inserted_primary_key[0]
            row = c.execute(select(_R).where(_R.c.id == review_id)).one()
            c.execute(_EV.insert().values(at=now, type="review_applied", cluster_id=cluster_id,
                                          article_id=articles[0], data=review_dict(row)))
            self._touch(c, cluster_id, now)
        return review_dict(row)

    @staticmethod
    def _touch(c: Connection, cluster_id: int | None, now: datetime) -> None:
        """The cluster changed for its readers (its history shows a review): what the web UI keys its caches on."""
        if cluster_id is not None:
            c.execute(update(_C).where(_C.c.id == cluster_id).values(updated_at=now))

    def review_row(self, review_id: int) -> dict[str, Any] | None:
        with self._conn(read=True) as c:
            row = c.execute(select(_R).where(_R.c.id == review_id)).first()
        return review_dict(row) if row else None

    def undo_review(self, review_id: int, *, who: str, cluster_id: int | None) -> dict[str, Any]:
        """Mark a review undone and log ``review_undone``; returns the review as it is now."""
        now = utcnow()
        with self._conn() as c:
            done = c.execute(update(_R).where(_R.c.id == review_id, _R.c.undone_at.is_(None))
                             .values(undone_at=now, undone_by=who))
            if done.rowcount != 1:  # undone by someone else since it was read
                raise ValueError(f"review {review_id} was undone already")
            row = c.execute(select(_R).where(_R.c.id == review_id)).one()
            c.execute(_EV.insert().values(at=now, type="review_undone", cluster_id=cluster_id,
                                          article_id=row.article_a, data=review_dict(row)))
            self._touch(c, cluster_id, now)
        return review_dict(row)

    def review_rows(self, *, url: str | None = None) -> list[dict[str, Any]]:
        """Every review (undone ones included), oldest first; with ``url``, those naming it."""
        q = select(_R).order_by(_R.c.id)
        if url is not None:
            q = q.where(or_(_R.c.url_a == url, _R.c.url_b == url))
        with self._conn(read=True) as c:
            return [review_dict(r) for r in c.execute(q)]

    # --- takedowns ---------------------------------------------------------------------------------------------------
    def tombstone(self, url: str) -> dict[str, Any] | None:
        """The tombstone of a URL, or None."""
        with self._conn(read=True) as c:
            row = c.execute(select(_T).where(_T.c.url_key == url_key(url))).first()
        return self._tombstone_dict(row) if row else None

    @staticmethod
    def _tombstone_dict(row: Any) -> dict[str, Any]:
        return {"url": row.url, "article_id": row.article_id, "reason": row.reason, "who": row.who,
                "at": _iso(row.at), "allowed": bool(row.allowed), "allowed_at": _iso(row.allowed_at)}

    def tombstones(self) -> list[dict[str, Any]]:
        with self._conn(read=True) as c:
            return [self._tombstone_dict(r) for r in c.execute(select(_T).order_by(_T.c.at, _T.c.url))]

    def allow_url(self, url: str) -> dict[str, Any] | None:
        """Let a forgotten URL be ingested again (the tombstone stays, as a record); None when there is none."""
        with self._conn() as c:
            c.execute(update(_T).where(_T.c.url_key == url_key(url), _T.c.allowed.is_(False))
                      .values(allowed=True, allowed_at=utcnow()))
            row = c.execute(select(_T).where(_T.c.url_key == url_key(url))).first()
        return self._tombstone_dict(row) if row else None

    def remove_article(self, url: str, *, reason: str | None, who: str,
                       band_keys: list[int] | None = None) -> tuple[int | None, int | None, set[int], list[int]]:
        """Take a stored page down: its HTML, article (text), signature, index entries (``band_keys``), relations,
        versions and pending mark go; a tombstone keeps the URL, the time and the reason; reviews naming it are
        undone. Logs ``article_removed`` (and ``review_undone``). Returns (article id, its cluster, the articles it
        was related to or merged with, the reviews undone); (None, None, ∅, []) if no page is stored for ``url``."""
        key = url_key(url)
        now = utcnow()
        with self._conn() as c:
            page = c.execute(select(_P.c.id).where(_P.c.url_key == key)).first()
            if page is None:
                return None, None, set(), []
            art = c.execute(select(_A.c.id, _A.c.cluster_id, _A.c.is_canonical).where(_A.c.page_id == page[0])).first()
            article_id = int(art.id) if art else None
            cluster_id = int(art.cluster_id) if art and art.cluster_id is not None else None
            related: set[int] = set()
            undone: list[int] = []
            if article_id is not None:
                related = self._drop_edges(c, article_id)
                for row in c.execute(select(_R).where(_R.c.undone_at.is_(None), or_(
                        _R.c.article_a == article_id, _R.c.article_b == article_id))).all():
                    related |= {x for x in (row.article_a, row.article_b) if x is not None and x != article_id}
                    c.execute(update(_R).where(_R.c.id == row.id).values(undone_at=now, undone_by=f"forget: {who}"))
                    undone.append(int(row.id))
                    done = c.execute(select(_R).where(_R.c.id == row.id)).one()
                    c.execute(_EV.insert().values(at=now, type="review_undone", cluster_id=cluster_id,
                                                  article_id=row.article_a, data=review_dict(done)))
                if band_keys:
                    c.execute(delete(LSHBandRow).where(LSHBandRow.article_id == article_id,
                                                       LSHBandRow.band_key.in_(bindparam("k", expanding=True))),
                              {"k": band_keys})
                c.execute(delete(SignatureRow).where(SignatureRow.article_id == article_id))
                c.execute(delete(PendingRow).where(PendingRow.article_id == article_id))
                c.execute(delete(UnmatchedRow).where(UnmatchedRow.article_id == article_id))
                # the content log's marker first (its id above every earlier one), then the versions' content
                c.execute(_V.insert().values(article_id=article_id, version=0, content_hash=None, fetched_at=None,
                                             title="", text_length=0, text_hash="", n_tokens=0, reason="removed",
                                             replaced_at=now))
                c.execute(delete(ArticleVersionRow).where(ArticleVersionRow.article_id == article_id,
                                                          ArticleVersionRow.reason != "removed"))
                c.execute(delete(ArticleRow).where(ArticleRow.id == article_id))
                c.execute(_EV.insert().values(at=now, type="article_removed", cluster_id=cluster_id,
                                              article_id=article_id, data={"url": url, "reason": reason,
                                                                           "canonical": bool(art.is_canonical)}))
                if cluster_id is not None:
                    left = c.scalar(select(func.count()).select_from(_A).where(_A.c.cluster_id == cluster_id)) or 0
                    values: dict[str, Any] = {"size": int(left), "updated_at": now}
                    if not left:
                        values["canonical_id"] = None
                    c.execute(update(_C).where(_C.c.id == cluster_id).values(**values))
            c.execute(delete(PageRow).where(PageRow.id == page[0]))
            c.execute(delete(SitemapLastmodRow).where(SitemapLastmodRow.url_key == key))
            upsert = self._insert_for(c)(_T)
            c.execute(upsert.on_conflict_do_update(index_elements=[_T.c.url_key], set_={
                "url": url, "article_id": article_id, "reason": reason, "who": who, "at": now, "allowed": False,
                "allowed_at": None}), {"url_key": key, "url": url, "article_id": article_id, "reason": reason,
                                       "who": who, "at": now, "allowed": False, "allowed_at": None})
        return article_id, cluster_id, related, undone

    # --- retention ---------------------------------------------------------------------------------------------------
    def prune_html(self, older_than: datetime, *, batch: int = 500) -> tuple[int, int]:
        """Empty the stored HTML of pages fetched before ``older_than`` (text and signatures stay), a batch of
        pages per transaction; returns (pages pruned, compressed bytes freed)."""
        cutoff = naive_utc(older_than)
        pruned = freed = 0
        after = 0
        while True:
            with self._conn() as c:
                rows = c.execute(select(_P.c.id, func.length(_P.c.html_gz)).where(
                    _P.c.id > after, _P.c.fetched_at < cutoff).order_by(_P.c.id).limit(batch)).all()
                if not rows:
                    return pruned, freed
                full = [(i, int(n or 0)) for i, n in rows if n]
                if full:
                    c.execute(update(_P).where(_P.c.id.in_([i for i, _ in full])).values(html_gz=b""))
                pruned += len(full)
                freed += sum(n for _, n in full)
                after = rows[-1][0]

    # --- re-processing -----------------------------------------------------------------------------------------------
    def page_batches(self, *, after: int = 0, source_id: int | None = None, since: datetime | None = None,
                     batch: int = 200) -> Iterator[list[int]]:
        """Stored page ids after ``after`` in id order, ``batch`` at a time, of one source and fetched since a time
        when given (one short query per batch: the store is streamed, never read whole)."""
        while True:
            q = select(_P.c.id).where(_P.c.id > after)
            if source_id is not None:
                q = q.where(_P.c.source_id == source_id)
            if since is not None:
                q = q.where(_P.c.fetched_at >= naive_utc(since))
            with self._conn(read=True) as c:
                ids = [int(i) for i in c.execute(q.order_by(_P.c.id).limit(batch)).scalars()]
            if not ids:
                return
            yield ids
            after = ids[-1]

    def count_pages(self, *, after: int = 0, source_id: int | None = None, since: datetime | None = None) -> int:
        q = select(func.count()).select_from(_P).where(_P.c.id > after)
        if source_id is not None:
            q = q.where(_P.c.source_id == source_id)
        if since is not None:
            q = q.where(_P.c.fetched_at >= naive_utc(since))
        with self._conn(read=True) as c:
            return int(c.scalar(q) or 0)

    def current_state(self, article_ids: Iterable[int], cluster_ids: Iterable[int]
                      ) -> tuple[dict[int, int | None], dict[int, list[str]], dict[int, int | None]]:
        """(article → cluster, article → flags, cluster → canonical) of these articles and clusters, as stored now
        (what a re-processing's report compares with the states it started from)."""
        articles, clusters = sorted(article_ids), sorted(cluster_ids)
        where: dict[int, int | None] = {}
        flags: dict[int, list[str]] = {}
        canonicals: dict[int, int | None] = {}
        with self._conn(read=True) as c:
            for start in range(0, len(articles), 900):
                for i, cid, fl in c.execute(select(_A.c.id, _A.c.cluster_id, _A.c.flags)
                                            .where(_A.c.id.in_(articles[start:start + 900]))):
                    where[int(i)], flags[int(i)] = cid, list(fl or [])
            for start in range(0, len(clusters), 900):
                canonicals.update({int(i): k for i, k in c.execute(select(_C.c.id, _C.c.canonical_id)
                                                                   .where(_C.c.id.in_(clusters[start:start + 900])))})
        return where, flags, canonicals

    def source_of_spec(self, spec: str) -> int | None:
        from pipeline.store.schema import SourceRow

        with self._conn(read=True) as c:
            return c.scalar(select(SourceRow.id).where(SourceRow.spec_key == url_key(spec)))

    def reprocess_checkpoint(self, key: str) -> tuple[int, dict[str, Any]] | None:
        """(last page id committed, counts so far) of an unfinished re-processing, or None."""
        with self._conn(read=True) as c:
            row = c.execute(select(ReprocessCheckpointRow.last_page_id, ReprocessCheckpointRow.counts)
                            .where(ReprocessCheckpointRow.key == key)).first()
        return (int(row[0]), dict(row[1] or {})) if row else None

    def set_reprocess_checkpoint(self, key: str, options: dict[str, Any], last_page_id: int,
                                 counts: dict[str, Any]) -> None:
        """Record how far a re-processing has committed (call inside the batch's unit)."""
        t = ReprocessCheckpointRow.__table__
        now = utcnow()
        with self._conn() as c:
            stmt = self._insert_for(c)(t)
            c.execute(stmt.on_conflict_do_update(index_elements=[t.c.key], set_={
                "last_page_id": last_page_id, "counts": counts, "updated_at": now}),
                {"key": key, "options": options, "last_page_id": last_page_id, "counts": counts,
                 "started_at": now, "updated_at": now})

    def clear_reprocess_checkpoint(self, key: str) -> None:
        with self._conn() as c:
            c.execute(delete(ReprocessCheckpointRow).where(ReprocessCheckpointRow.key == key))


__all__ = ["LivingStore", "review_dict", "text_hash"]
