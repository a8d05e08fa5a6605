"""Store stage: SQLAlchemy 2 tables and the few operations the pipeline needs.

One schema serves SQLite (embedded) and PostgreSQL (distributed). Raw HTML is kept compressed so a page
can be re-extracted without refetching; signatures are kept so the in-process index can be rebuilt.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    create_engine,
    event,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from .records import Article, ClusterDecision, Link, Page, PairVerdict, Signature


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def url_key(url: str) -> str:
    """A fixed-width key for a URL, so unique indexes hold for URLs of any length."""
    return hashlib.sha1(url.encode("utf-8", "surrogatepass")).hexdigest()


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class SourceRow(Base):
    __tablename__ = "sources"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    spec: Mapped[str] = mapped_column(Text)
    spec_key: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class RunRow(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    sources: Mapped[list[Any]] = mapped_column(JSON, default=list)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PageRow(Base):
    __tablename__ = "pages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    url_key: Mapped[str] = mapped_column(String(40), unique=True)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"), nullable=True)
    status: Mapped[int] = mapped_column(Integer, default=200)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    etag: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_modified: Mapped[str | None] = mapped_column(Text, nullable=True)
    content_hash: Mapped[str] = mapped_column(String(40))
    html_gz: Mapped[bytes] = mapped_column(LargeBinary)
    fetched_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ClusterRow(Base):
    __tablename__ = "clusters"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    canonical_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    size: Mapped[int] = mapped_column(Integer, default=1)
    merged_into: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ArticleRow(Base):
    __tablename__ = "articles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"), unique=True)
    url: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    published: Mapped[str | None] = mapped_column(String(40), nullable=True)
    site: Mapped[str | None] = mapped_column(Text, nullable=True)
    canonical_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    language: Mapped[str | None] = mapped_column(String(20), nullable=True)
    byline: Mapped[str | None] = mapped_column(Text, nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    n_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cluster_id: Mapped[int | None] = mapped_column(ForeignKey("clusters.id"), nullable=True, index=True)
    is_canonical: Mapped[bool] = mapped_column(Boolean, default=False)
    flags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    similarity: Mapped[float] = mapped_column(Float, default=1.0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SignatureRow(Base):
    __tablename__ = "signatures"
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"), primary_key=True)
    kinds: Mapped[str] = mapped_column(String(100))
    n_tokens: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class EdgeRow(Base):
    """A verified relation between two articles (a_id < b_id); clusters are its connected components."""

    __tablename__ = "edges"
    a_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    b_id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)
    relation: Mapped[str] = mapped_column(String(20))
    similarity: Mapped[float] = mapped_column(Float)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PendingRow(Base):
    """Articles whose cluster is yet to be re-decided (batched ingest); survives a crash mid-run."""

    __tablename__ = "pending_decisions"
    article_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class EventRow(Base):
    """The ordered change log downstream systems follow: its id is the cursor."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    type: Mapped[str] = mapped_column(String(30))
    cluster_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    article_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ErrorRow(Base):
    __tablename__ = "errors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    source_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    stage: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(60))
    level: Mapped[str] = mapped_column(String(10), default="error")
    message: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class WarcCheckpointRow(Base):
    """How far a WARC source has been read and committed: the offset of the next record to read.

    Kept in the store (not a side file) so it commits with the data it describes, works the same on
    SQLite and PostgreSQL, and is seen by every worker. ``key`` is the file plus the read's filters.
    """

    __tablename__ = "warc_checkpoints"
    key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    offset: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


Index("ix_articles_canonical", ArticleRow.is_canonical, ArticleRow.id)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for a sqlite:// or postgresql+psycopg:// URL (plain postgresql:// means psycopg 3)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    engine = create_engine(url, future=True, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def encode_signature(sig: Signature) -> tuple[str, bytes]:
    kinds = sorted(sig.values)
    return ",".join(kinds), b"".join(np.asarray(sig.values[k], dtype=np.uint32).tobytes() for k in kinds)


def decode_signature(kinds: str, data: bytes, n_tokens: int) -> Signature:
    names = kinds.split(",")
    arr = np.frombuffer(data, dtype=np.uint32)
    per = len(arr) // len(names)
    return Signature({k: arr[i * per : (i + 1) * per] for i, k in enumerate(names)}, n_tokens)


def row_to_article(row: ArticleRow) -> Article:
    meta = row.meta or {}
    return Article(
        url=row.url,
        title=row.title,
        text=row.text,
        paragraphs=tuple(meta.get("paragraphs") or row.text.split("\n\n")),
        links=tuple(Link(t, h, s, p) for t, h, s, p in meta.get("links", [])),
        byline=row.byline,
        published=row.published,
        site=row.site,
        canonical_url=row.canonical_url,
        language=row.language,
        attribution=tuple(meta.get("attribution", [])),
        attribution_urls=tuple(meta.get("attribution_urls", [])),
    )


class Store:
    """The database behind one deployment; every method is its own transaction unless given a session."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if create:
            Base.metadata.create_all(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()

    # sources, runs and errors --------------------------------------------------------------
    def source_id(self, spec: str, kind: str) -> int:
        key = url_key(spec)
        with self.session() as s:
            row = s.scalar(select(SourceRow).where(SourceRow.spec_key == key))
            if row is None:
                row = SourceRow(spec=spec, spec_key=key, kind=kind)
                s.add(row)
                s.flush()
            row.last_run_at = utcnow()
            return row.id

    def start_run(self, sources: list[str]) -> int:
        with self.session() as s:
            run = RunRow(sources=sources, counts={})
            s.add(run)
            s.flush()
            return run.id

    def finish_run(self, run_id: int, counts: dict[str, Any]) -> None:
        with self.session() as s:
            s.execute(update(RunRow).where(RunRow.id == run_id).values(finished_at=utcnow(), counts=counts))

    def record_error(
        self,
        *,
        stage: str,
        kind: str,
        message: str,
        url: str | None = None,
        source_id: int | None = None,
        run_id: int | None = None,
        level: str = "error",
    ) -> None:
        with self.session() as s:
            s.add(ErrorRow(run_id=run_id, source_id=source_id, url=url, stage=stage, kind=kind,
                           message=message, level=level))

    def errors(self, run_id: int | None = None) -> list[ErrorRow]:
        with self.session() as s:
            q = select(ErrorRow).order_by(ErrorRow.id)
            if run_id is not None:
                q = q.where(ErrorRow.run_id == run_id)
            return list(s.scalars(q))

    # pages and articles --------------------------------------------------------------------
    def page_state(self, url: str) -> tuple[int, str, str | None, str | None] | None:
        """(page id, content hash, etag, last-modified) of a stored URL, or None."""
        with self.session() as s:
            row = s.execute(
                select(PageRow.id, PageRow.content_hash, PageRow.etag, PageRow.last_modified).where(
                    PageRow.url_key == url_key(url)
                )
            ).first()
            return tuple(row) if row else None  # type: ignore[return-value]

    def add_page(self, page: Page, source_id: int | None) -> int:
        """Insert or refresh a page; returns its id."""
        digest = hashlib.sha1(page.body).hexdigest()
        key = url_key(page.url)
        with self.session() as s:
            row = s.scalar(select(PageRow).where(PageRow.url_key == key))
            if row is None:
                row = PageRow(url=page.url, url_key=key)
                s.add(row)
            row.source_id = source_id
            row.status = page.status
            row.headers = dict(page.headers)
            row.etag = page.headers.get("etag")
            row.last_modified = page.headers.get("last-modified")
            row.content_hash = digest
            row.html_gz = zlib.compress(page.body, 1)  # fast level: pages are kept for re-extraction, not archival
            row.fetched_at = page.fetched_at or utcnow()
            s.flush()
            return row.id

    def page_html(self, page_id: int) -> bytes:
        with self.session() as s:
            return zlib.decompress(s.scalar(select(PageRow.html_gz).where(PageRow.id == page_id)) or b"")

    def article_for_page(self, page_id: int) -> int | None:
        with self.session() as s:
            return s.scalar(select(ArticleRow.id).where(ArticleRow.page_id == page_id))

    def add_article(self, page_id: int, article: Article, signature: Signature) -> int:
        """Store an article and its signature in one transaction; a new article is its own cluster."""
        return self.add_article_once(page_id, article, signature)[0]

    def add_article_once(self, page_id: int, article: Article, signature: Signature) -> tuple[int, int, bool]:
        """(article id, cluster id, created): the page's existing article if it has one already.

        Safe when two workers race on the same page: the loser's insert fails on the unique page id
        and it returns the winner's article.
        """
        kinds, data = encode_signature(signature)
        try:
            with self.session() as s:
                existing = s.execute(select(ArticleRow.id, ArticleRow.cluster_id)
                                     .where(ArticleRow.page_id == page_id)).first()
                if existing is not None:
                    return existing[0], existing[1], False
                row = ArticleRow(
                    page_id=page_id, url=article.url, title=article.title, text=article.text,
                    published=article.published, site=article.site, canonical_url=article.canonical_url,
                    language=article.language, byline=article.byline, meta=article.meta(),
                    n_tokens=signature.n_tokens, is_canonical=True, flags=[], evidence={}, similarity=1.0,
                )
                s.add(row)
                s.flush()
                cluster = ClusterRow(canonical_id=row.id, size=1)
                s.add(cluster)
                s.flush()
                row.cluster_id = cluster.id
                s.add(SignatureRow(article_id=row.id, kinds=kinds, n_tokens=signature.n_tokens, data=data))
                s.add(EventRow(type="article_added", cluster_id=cluster.id, article_id=row.id,
                               data={"url": article.url, "canonical": True}))
                return row.id, cluster.id, True
        except IntegrityError:
            with self.session() as s:
                found = s.execute(select(ArticleRow.id, ArticleRow.cluster_id)
                                  .where(ArticleRow.page_id == page_id)).first()
            if found is None:
                raise
            return found[0], found[1], False

    def articles(self, ids: Iterable[int]) -> dict[int, Article]:
        ids = list(ids)
        with self.session() as s:
            rows = s.scalars(select(ArticleRow).where(ArticleRow.id.in_(ids))) if ids else []
            return {r.id: row_to_article(r) for r in rows}

    def article_rows(self, ids: Iterable[int]) -> dict[int, ArticleRow]:
        ids = list(ids)
        with self.session() as s:
            rows = s.scalars(select(ArticleRow).where(ArticleRow.id.in_(ids))) if ids else []
            return {r.id: r for r in rows}

    def signatures(self) -> Iterator[tuple[int, Signature]]:
        with self.session() as s:
            for row in s.execute(select(SignatureRow)).scalars():
                yield row.article_id, decode_signature(row.kinds, row.data, row.n_tokens)

    # clusters ------------------------------------------------------------------------------
    def cluster_of(self, article_ids: Iterable[int]) -> dict[int, int]:
        ids = list(article_ids)
        with self.session() as s:
            return dict(s.execute(select(ArticleRow.id, ArticleRow.cluster_id).where(ArticleRow.id.in_(ids))).all())

    def members(self, cluster_id: int) -> list[int]:
        with self.session() as s:
            return list(s.scalars(select(ArticleRow.id).where(ArticleRow.cluster_id == cluster_id)
                                  .order_by(ArticleRow.id)))

    def add_edges(self, edges: dict[tuple[int, int], PairVerdict], *, pending: int | None = None) -> None:
        """Store verified relations; ``pending`` marks an article whose cluster must still be decided."""
        with self.session() as s:
            if pending is not None:
                s.merge(PendingRow(article_id=pending))
            for (a, b), v in edges.items():
                s.merge(EdgeRow(a_id=min(a, b), b_id=max(a, b), relation=v.relation, similarity=v.similarity,
                                data={"coverage_a": v.coverage_a, "coverage_b": v.coverage_b,
                                      "substitution_rate": v.substitution_rate, "evidence": v.evidence,
                                      "flipped": a > b}))

    def pending(self) -> set[int]:
        with self.session() as s:
            return set(s.scalars(select(PendingRow.article_id)))

    def clear_pending(self, article_ids: Iterable[int]) -> None:
        ids = list(article_ids)
        with self.session() as s:
            s.execute(PendingRow.__table__.delete().where(PendingRow.article_id.in_(ids)))

    def component_edges(
        self, article_id: int, limit: int = 5000
    ) -> tuple[set[int], dict[tuple[int, int], PairVerdict]]:
        """The related component of an article and every verified relation inside it, in one transaction."""
        seen = {article_id}
        frontier = {article_id}
        found: dict[tuple[int, int], PairVerdict] = {}
        with self.session() as s:
            while frontier and len(seen) < limit:
                ids = list(frontier)
                rows = s.scalars(select(EdgeRow).where(EdgeRow.a_id.in_(ids) | EdgeRow.b_id.in_(ids))).all()
                for r in rows:
                    found[(r.a_id, r.b_id)] = _edge_verdict(r)
                nxt = {x for r in rows for x in (r.a_id, r.b_id)} - seen
                seen |= nxt
                frontier = nxt
        return seen, {k: v for k, v in found.items() if k[0] in seen and k[1] in seen}

    def assign_clusters(self, groups: list[set[int]]) -> list[int]:
        """Give each group of articles a cluster id, keeping the ids they already hold where possible.

        A group keeps the oldest id among its members' clusters that no bigger group took; clusters left
        without members are marked merged into the group that absorbed them.
        """
        members = set().union(*groups) if groups else set()
        with self.session() as s:
            current = dict(s.execute(select(ArticleRow.id, ArticleRow.cluster_id)
                                     .where(ArticleRow.id.in_(list(members)))).all())
            taken: set[int] = set()
            result: list[int] = []
            for group in sorted(groups, key=lambda g: (-len(g), min(g))):
                held = sorted({current[i] for i in group if current.get(i) is not None} - taken)
                if held:
                    cid = held[0]
                else:
                    row = ClusterRow(size=len(group))
                    s.add(row)
                    s.flush()
                    cid = row.id
                    s.add(EventRow(type="cluster_split", cluster_id=cid, data={"members": sorted(group)}))
                taken.add(cid)
                result.append(cid)
                moved = [i for i in group if current.get(i) != cid]
                if moved:
                    s.execute(update(ArticleRow).where(ArticleRow.id.in_(moved)).values(cluster_id=cid))
                absorbed = sorted({current[i] for i in group if current.get(i) is not None} - {cid})
                for old in absorbed:
                    if old in taken:
                        continue
                    still = s.scalar(select(ArticleRow.id).where(ArticleRow.cluster_id == old).limit(1))
                    if still is None:
                        s.execute(update(ClusterRow).where(ClusterRow.id == old)
                                  .values(merged_into=cid, size=0, canonical_id=None))
                        s.add(EventRow(type="clusters_merged", cluster_id=cid, data={"merged": [old], "into": cid}))
            order = sorted(range(len(groups)), key=lambda k: (-len(groups[k]), min(groups[k])))
            by_group = dict(zip(order, result, strict=True))
            return [by_group[k] for k in range(len(groups))]

    def apply_decision(self, cluster_id: int, decision: ClusterDecision) -> list[dict[str, Any]]:
        """Write the canonicalizer's verdict; log canonical moves and flag changes as events."""
        changes: list[dict[str, Any]] = []
        with self.session() as s:
            cluster = s.get(ClusterRow, cluster_id)
            assert cluster is not None
            old = cluster.canonical_id
            ids = [m.article_id for m in decision.members]
            rows = {r.id: r for r in s.scalars(select(ArticleRow).where(ArticleRow.id.in_(ids)))}
            for m in decision.members:
                row = rows[m.article_id]
                if sorted(row.flags or []) != sorted(m.flags) and (row.flags or m.flags):
                    s.add(EventRow(type="flags_changed", cluster_id=cluster_id, article_id=row.id,
                                   data={"old": list(row.flags or []), "new": list(m.flags)}))
                    changes.append({"type": "flags_changed", "article_id": row.id, "flags": list(m.flags)})
                if row.is_canonical != m.canonical:
                    # per-article status: a follower of the feed mirrors the canonical set from these alone
                    s.add(EventRow(type="canonical_status", cluster_id=cluster_id, article_id=row.id,
                                   data={"canonical": m.canonical}))
                row.is_canonical = m.canonical
                row.flags = list(m.flags)
                row.evidence = m.evidence
                row.similarity = m.similarity
                row.updated_at = utcnow()
            if old != decision.canonical_id:
                s.add(EventRow(type="canonical_changed", cluster_id=cluster_id,
                               article_id=decision.canonical_id,
                               data={"old": old, "new": decision.canonical_id, "reason": decision.reason}))
                changes.append({"type": "canonical_changed", "old": old, "new": decision.canonical_id,
                                "reason": decision.reason})
            cluster.canonical_id = decision.canonical_id
            cluster.size = len(ids)
            cluster.updated_at = utcnow()
        return changes

    # reading ---------------------------------------------------------------------------------
    def export_rows(self, *, canonical_only: bool = False, batch: int = 500) -> Iterator[ArticleRow]:
        with self.session() as s:
            q = select(ArticleRow).order_by(ArticleRow.id)
            if canonical_only:
                q = q.where(ArticleRow.is_canonical.is_(True))
            yield from s.scalars(q.execution_options(yield_per=batch))

    def counts(self) -> dict[str, int]:
        from sqlalchemy import func

        with self.session() as s:
            return {
                "pages": s.scalar(select(func.count()).select_from(PageRow)) or 0,
                "articles": s.scalar(select(func.count()).select_from(ArticleRow)) or 0,
                "clusters": s.scalar(select(func.count(func.distinct(ArticleRow.cluster_id)))) or 0,
                "errors": s.scalar(select(func.count()).select_from(ErrorRow).where(ErrorRow.level == "error"))
                or 0,
            }

    # report queries (used by the ingest summary and the cluster report) ----------------------
    def cluster_sizes(self) -> list[tuple[int, int]]:
        """(cluster id, member count) of every cluster that has articles, largest first."""
        from sqlalchemy import func

        with self.session() as s:
            size = func.count(ArticleRow.id)
            rows = s.execute(
                select(ArticleRow.cluster_id, size)
                .where(ArticleRow.cluster_id.is_not(None))
                .group_by(ArticleRow.cluster_id)
                .order_by(size.desc(), ArticleRow.cluster_id)
            ).all()
            return [(int(c), int(n)) for c, n in rows]

    def flag_counts(self) -> dict[str, int]:
        """How many articles carry each flag; flags are a JSON list, so they are counted here."""
        counts: dict[str, int] = {}
        with self.session() as s:
            for flags in s.scalars(select(ArticleRow.flags).execution_options(yield_per=2000)):
                for flag in flags or []:
                    counts[flag] = counts.get(flag, 0) + 1
        return counts

    def warc_checkpoint(self, key: str) -> int:
        """The committed resume offset of a WARC read (0: start from the beginning)."""
        with self.session() as s:
            row = s.get(WarcCheckpointRow, key)
            return int(row.offset) if row is not None else 0

    def set_warc_checkpoint(self, key: str, offset: int) -> None:
        """Record that everything before ``offset`` is committed; call after the items are stored."""
        with self.session() as s:
            row = s.get(WarcCheckpointRow, key)
            if row is None:
                s.add(WarcCheckpointRow(key=key, offset=offset, updated_at=utcnow()))
            else:
                row.offset, row.updated_at = offset, utcnow()


def _edge_verdict(row: EdgeRow) -> PairVerdict:
    d = row.data or {}
    return PairVerdict(row.relation, row.similarity, d.get("coverage_a", 0.0), d.get("coverage_b", 0.0),
                       d.get("substitution_rate", 0.0), d.get("evidence", {}))
