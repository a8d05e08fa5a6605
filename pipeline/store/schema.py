"""The store's schema: one SQLAlchemy model per table, and the indexes the read side relies on.

One schema serves SQLite (embedded) and PostgreSQL (distributed); Alembic migrations
(``pipeline/store/migrations``) bring a PostgreSQL database to it, SQLite gets ``create_all``. Raw HTML is
kept compressed so a page can be re-extracted without refetching (``prune`` empties it past an age: an empty
``html_gz`` means the HTML was pruned); signatures are kept so an index can be rebuilt.

Living articles (issue 12) add tables only, never columns, so a SQLite store made before them gets them from
``create_all``: ``article_versions`` (what an article was before an update), ``reviews`` (operator decisions that
outrank the algorithm), ``tombstones`` (pages taken down, never re-ingested unless allowed) and
``reprocess_checkpoints`` (how far a re-processing run has gone). So does ``unmatched_articles`` (articles whose
matching ran past ``dedup_deadline``, for reprocess to match again). An index declared later reaches an older
SQLite store when the store opens it (``store._add_missing_indexes``); ``/metrics`` counts pages per source and
events per type through two such (``ix_pages_source_id``, ``ix_events_type``; migration 0010), and a run's
summary counts clusters by size through ``ix_clusters_size`` (migration 0011).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


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
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"), nullable=True, index=True)
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
    size: Mapped[int] = mapped_column(Integer, default=1, index=True)  # the run summary counts through it
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


class LSHBandRow(Base):
    """One band bucket entry of the persisted LSH index (``pipeline.dedup.index.StoreLSHIndex``): the band's
    64-bit key and an article in that bucket. The primary key is the bucket then the article, so a query is
    an index range per band, and the table is the index (no row ids in SQLite)."""

    __tablename__ = "lsh_bands"
    __table_args__ = {"sqlite_with_rowid": False}
    band_key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    article_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class MarkRow(Base):
    """A named position the store keeps for one of its parts (``lsh_indexed_through``: the last article whose
    bucket entries are in ``lsh_bands``; later ones are re-indexed from their signatures on start-up)."""

    __tablename__ = "store_marks"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class PendingRow(Base):
    """Articles whose cluster is yet to be re-decided (batched ingest); survives a crash mid-run."""

    __tablename__ = "pending_decisions"
    article_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class UnmatchedRow(Base):
    """Articles whose matching was cut short (their dedup ran past ``dedup_deadline``): stored as a cluster of their
    own, with no relation yet; ``reprint reprocess`` matches them again."""

    __tablename__ = "unmatched_articles"
    article_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class EventRow(Base):
    """The ordered change log downstream systems follow: its id is the cursor."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    type: Mapped[str] = mapped_column(String(30), index=True)
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


class SitemapLastmodRow(Base):
    """The sitemap ``<lastmod>`` of a URL when its content was last fetched (naive UTC): a later run
    that finds the same or an older lastmod in the sitemap does not fetch the URL again."""

    __tablename__ = "sitemap_lastmods"
    url_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    lastmod: Mapped[datetime] = mapped_column(DateTime)
    checked_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ArticleVersionRow(Base):
    """An article as it was before an update replaced it: the page it came from (content hash, fetch time) and
    what it said (title, text length, text hash). The text itself is not kept: the store serves the current one."""

    __tablename__ = "article_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(Integer, index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str | None] = mapped_column(String(40), nullable=True)
    fetched_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    title: Mapped[str] = mapped_column(Text, default="")
    text_length: Mapped[int] = mapped_column(Integer, default=0)
    text_hash: Mapped[str] = mapped_column(String(40))
    n_tokens: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(20))
    replaced_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ReviewRow(Base):
    """An operator's review (``pipeline.dedup.reviews``): in force from ``at`` until ``undone_at``.

    The pages are kept by URL (and URL key) and by the article ids they resolved to, which is what the decisions
    read: an article keeps its id through updates and re-processing, and a forgotten page closes its reviews."""

    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    url_a: Mapped[str] = mapped_column(Text)
    url_b: Mapped[str | None] = mapped_column(Text, nullable=True)
    article_a: Mapped[int] = mapped_column(Integer, index=True)
    article_b: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    flag: Mapped[str | None] = mapped_column(String(20), nullable=True)
    flag_on: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    who: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    undone_by: Mapped[str | None] = mapped_column(Text, nullable=True)


class TombstoneRow(Base):
    """A page taken down (``reprint forget``): its URL, when and why. Ingest skips the URL unless ``allowed``."""

    __tablename__ = "tombstones"
    url_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    article_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    who: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    allowed: Mapped[bool] = mapped_column(Boolean, default=False)
    allowed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ReprocessCheckpointRow(Base):
    """How far one re-processing (``reprint reprocess``, keyed by its options) has gone: the last page id whose
    batch committed, and the counts so far. Deleted when the run reaches the end, so the next one starts afresh."""

    __tablename__ = "reprocess_checkpoints"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_page_id: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


Index("ix_articles_canonical", ArticleRow.is_canonical, ArticleRow.id)
# The read API's filters (pipeline/queries.py list_articles; migration 0004): a site walks (site, id) in id order;
# the dates are ranges probed in date order; a flag walks a partial index of the articles whose JSON flags list
# holds it, declared with exactly the condition the listing writes (queries.flag_condition).
Index("ix_articles_site", ArticleRow.site, ArticleRow.id)
Index("ix_articles_published", ArticleRow.published, ArticleRow.is_canonical, ArticleRow.id)
Index("ix_articles_created_at", ArticleRow.created_at, ArticleRow.is_canonical, ArticleRow.id)
#: The flags a copy can carry; each has a partial index of the articles holding it.
FLAG_NAMES = ("spun", "scraped")
for _flag in FLAG_NAMES:
    _holds = ArticleRow.flags.cast(Text).like(f'%"{_flag}"%')
    Index(f"ix_articles_flag_{_flag}", ArticleRow.id, sqlite_where=_holds, postgresql_where=_holds)
del _flag, _holds
