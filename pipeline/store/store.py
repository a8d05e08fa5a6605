"""The store: a unit of work over the schema (``schema.py``), the writes the pipeline makes, and typed reads.

Every method is its own transaction unless it runs inside ``Store.unit()`` (then it joins that unit; a unit
inside a unit is a savepoint). Values are encoded by ``codecs.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Text, bindparam, create_engine, event, func, literal, null, select, union_all, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.schema import CreateIndex

from pipeline.records import Article, ClusterDecision, Page, PairVerdict, Signature
from pipeline.store.codecs import (
    compress_html,
    content_hash,
    decode_signature,
    decompress_html,
    edge_verdict,
    encode_signature,
    json_text,
    kind_bytes,
    naive_utc,
    row_to_article,
    url_key,
)
from pipeline.store.living import LivingStore
from pipeline.store.schema import (
    FLAG_NAMES,
    ArticleRow,
    Base,
    ClusterRow,
    EdgeRow,
    ErrorRow,
    EventRow,
    LSHBandRow,
    MarkRow,
    PageRow,
    PendingRow,
    RunRow,
    SignatureRow,
    SitemapLastmodRow,
    SourceRow,
    TombstoneRow,
    WarcCheckpointRow,
    utcnow,
)

__all__ = ["Base", "Store", "content_hash", "make_engine", "url_key"]

#: Ids in one driver-level IN list (SQLite before 3.32 takes at most 999 parameters a statement).
IN_CHUNK = 900

_A, _CL, _E = ArticleRow.__table__, ClusterRow.__table__, EdgeRow.__table__
_IDS = bindparam("ids", expanding=True)
# A component's walk and its cluster decisions' reads and writes, built once (constructing a statement cost as
# much as running it): every related arrival and every decided group runs them.
_EDGES_OF = select(_E.c.a_id, _E.c.b_id, _E.c.relation, _E.c.similarity, _E.c.data).where(
    _E.c.a_id.in_(_IDS) | _E.c.b_id.in_(_IDS))
_CLUSTER_OF = select(_A.c.id, _A.c.cluster_id).where(_A.c.id.in_(_IDS))
_FIRST_MEMBER = select(_A.c.cluster_id, func.min(_A.c.id)).where(_A.c.cluster_id.in_(_IDS)).group_by(_A.c.cluster_id)
_MOVE = update(_A).where(_A.c.id.in_(_IDS)).values(cluster_id=bindparam("cid"))
_CLUSTER_STATE = select(_CL.c.canonical_id, _CL.c.size).where(_CL.c.id == bindparam("cid"))
_DECIDED = select(_A.c.id, _A.c.flags, _A.c.is_canonical, _A.c.similarity, _A.c.evidence).where(_A.c.id.in_(_IDS))
_MEMBER_UPDATE = update(_A).where(_A.c.id == bindparam("b_id"))
_SIGNATURE_UPDATE = update(SignatureRow.__table__).where(SignatureRow.__table__.c.article_id == bindparam("a")).values(
    kinds=bindparam("k"), n_tokens=bindparam("n"), data=bindparam("d"))
_CLUSTER_UPDATE = update(_CL).where(_CL.c.id == bindparam("cid")).values(
    canonical_id=bindparam("canonical"), size=bindparam("size"), updated_at=bindparam("now"))


#: SQLite page cache per connection (KiB) and the part of the file read through a memory map: a store of
#: 100,000 articles is a B-tree a new article's index lookups touch all over, and with the default 2 MB cache
#: every touch was a read system call (system time was a third of the run's CPU).
SQLITE_CACHE_KIB = 64 * 1024
SQLITE_MMAP_BYTES = 256 << 20


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # The sqlite3 module's own transaction handling opens a transaction only at the first INSERT/UPDATE, so a
    # unit whose first statement was a read began with a SAVEPOINT instead, and SQLite commits an outermost
    # savepoint when it is released: every page of a batch committed alone, and a rolled-back unit kept
    # them. So the driver's handling is off (isolation_level None) and BEGIN is sent by ``_sqlite_begin``.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")


def make_engine(url: str) -> Engine:
    """An engine for a sqlite:// or postgresql+psycopg:// URL (plain postgresql:// means psycopg 3)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    sqlite = url.startswith("sqlite")
    # a ping per checkout guards against server restarts; an embedded file has no server to lose
    engine = create_engine(url, future=True, pool_pre_ping=not sqlite, json_serializer=json_text,
                           json_deserializer=orjson.loads)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


class _OpenUnit(threading.local):
    """Per thread: the connection of the ``Store.unit()`` open on it, if any."""

    conn: Connection | None = None


def _add_missing_indexes(engine: Engine) -> None:
    """Create the indexes a SQLite store lacks. ``create_all`` makes an index only with its table, so an index
    declared after a store was made (``ix_pages_source_id``, for instance) is made here, once; one query when
    none is missing. PostgreSQL gets them from its migrations."""
    with engine.begin() as c:
        present = {name for (name,) in c.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")}
        for table in Base.metadata.sorted_tables:
            for index in table.indexes:
                if index.name not in present:
                    c.execute(CreateIndex(index, if_not_exists=True))


class Store(LivingStore):
    """The database behind one deployment; every method is its own transaction unless given a session.

    The living articles' writes and reads (updates, reviews, takedowns, retention, re-processing) are in
    ``living.LivingStore``, its base."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._local = _OpenUnit()
        self._in_queries: dict[tuple[str, int], str] = {}
        self._mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"  # the driver's placeholder
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if create:
            Base.metadata.create_all(self.engine)
            if self.engine.dialect.name == "sqlite":
                _add_missing_indexes(self.engine)
        pages = PageRow.__table__
        upsert = _insert(self.engine)(pages)
        refreshed = [c.name for c in pages.columns if c.name not in ("id", "url", "url_key")]
        self._page_upsert = upsert.on_conflict_do_update(
            index_elements=[pages.c.url_key], set_={k: upsert.excluded[k] for k in refreshed}
        ).returning(pages.c.id)  # built once: constructing an upsert costs more than running it
        a = ArticleRow.__table__
        checkpoints = WarcCheckpointRow.__table__
        checkpoint = _insert(self.engine)(checkpoints)
        self._stmts: dict[str, Any] = {
            "checkpoint": checkpoint.on_conflict_do_update(
                index_elements=[checkpoints.c.key],
                set_={"offset": checkpoint.excluded["offset"], "updated_at": checkpoint.excluded["updated_at"]}),
            "article_of_page": select(a.c.id, a.c.cluster_id).where(a.c.page_id == bindparam("p")),
            "insert_article": a.insert(),
            "insert_cluster": ClusterRow.__table__.insert(),
            "set_canonical": update(ClusterRow.__table__).where(ClusterRow.__table__.c.id == bindparam("c"))
            .values(canonical_id=bindparam("a")),
            "insert_signature": SignatureRow.__table__.insert(),
            "insert_event": EventRow.__table__.insert(),
            "remove_bands": LSHBandRow.__table__.delete().where(
                LSHBandRow.article_id == bindparam("a"), LSHBandRow.band_key.in_(bindparam("keys", expanding=True))),
            "stored_page": select(pages.c.id, pages.c.content_hash, a.c.id, pages.c.fetched_at)
            .select_from(pages.outerjoin(a, a.c.page_id == pages.c.id))
            .where(pages.c.url_key == bindparam("k")),
        }
        edges = EdgeRow.__table__
        edge_upsert = _insert(self.engine)(edges)
        self._stmts["upsert_edges"] = edge_upsert.on_conflict_do_update(
            index_elements=[edges.c.a_id, edges.c.b_id],
            set_={k: edge_upsert.excluded[k] for k in ("relation", "similarity", "data")})
        self._stmts["add_pending"] = _insert(self.engine)(PendingRow.__table__).on_conflict_do_nothing()
        tombstones = TombstoneRow.__table__
        self._stmts["page_or_tombstone"] = union_all(  # a row for the page, a row for its tombstone, or neither
            self._stmts["stored_page"].add_columns(null()),
            select(null(), null(), null(), null(), tombstones.c.allowed).where(tombstones.c.url_key == bindparam("k")))

    def _insert_for(self, bind: Connection | Engine) -> Any:
        return _insert(bind)

    @contextmanager
    def session(self) -> Iterator[Session]:
        held = self._local.conn
        if held is not None:  # inside a unit: its reads see the unit's writes, its writes join it
            with Session(bind=held, expire_on_commit=False, join_transaction_mode="rollback_only") as s:
                yield s
                s.flush()
            return
        with self._sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def unit(self) -> Iterator[None]:
        """Make the store calls inside (on this thread) one transaction: they commit or roll back together.

        Each call is otherwise its own transaction, and in a bulk ingest the commits were most of the
        store's CPU. A unit inside a unit is a savepoint: its failure undoes its own writes only.
        """
        held = self._local.conn
        if held is not None:
            with held.begin_nested():
                yield
            return
        with self.engine.begin() as c:
            self._local.conn = c
            try:
                yield
            finally:
                self._local.conn = None

    @contextmanager
    def _begin(self, *, read: bool = False) -> Iterator[Connection]:
        """The open unit's connection, or a transaction of its own (for a read, a plain connection)."""
        held = self._local.conn
        if held is not None:
            yield held
        else:
            with self.engine.connect() if read else self.engine.begin() as c:
                yield c

    def _savepoint(self, c: Connection) -> AbstractContextManager[Any]:
        """A savepoint where a failed statement must not end the unit around it: PostgreSQL aborts the
        whole transaction on an error; SQLite undoes only the statement, and needs none."""
        held = self._local.conn is not None
        return c.begin_nested() if held and c.dialect.name == "postgresql" else nullcontext()

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
        """Insert or refresh a page; returns its id. One upsert, safe when two workers store one URL."""
        values = {
            "url": page.url,
            "url_key": url_key(page.url),
            "source_id": source_id,
            "status": page.status,
            "headers": dict(page.headers),
            "etag": page.headers.get("etag"),
            "last_modified": page.headers.get("last-modified"),
            "content_hash": content_hash(page.body),
            "html_gz": compress_html(page.body),
            "fetched_at": naive_utc(page.fetched_at) if page.fetched_at else utcnow(),
        }
        with self._begin() as c:
            return int(c.execute(self._page_upsert, values).scalar_one())

    def stored_page(self, url: str) -> tuple[int, str, int | None, datetime | None] | None:
        """(page id, content hash, article id or None, fetched at) of a stored URL, or None: one query per page."""
        with self._begin(read=True) as c:
            row = c.execute(self._stmts["stored_page"], {"k": url_key(url)}).first()
        return (row[0], row[1], row[2], row[3]) if row else None

    def lookup_page(self, url: str) -> tuple[tuple[int, str, int | None, datetime | None] | None, bool]:
        """``stored_page(url)`` and whether the URL is forgotten (taken down, and not allowed again), in the one query
        ingest makes of every page."""
        with self._begin(read=True) as c:
            rows = c.execute(self._stmts["page_or_tombstone"], {"k": url_key(url)}).all()
        state = next(((r[0], r[1], r[2], r[3]) for r in rows if r[0] is not None), None)
        return state, any(r[0] is None and not r[4] for r in rows)

    def load_page(self, page_id: int) -> Page | None:
        """The stored page (bytes decompressed, headers as fetched), or None if it is gone."""
        with self.session() as s:
            row = s.execute(select(PageRow.url, PageRow.status, PageRow.headers, PageRow.fetched_at, PageRow.html_gz)
                            .where(PageRow.id == page_id)).first()
        if row is None:
            return None
        return Page(row.url, decompress_html(row.html_gz or b""), status=row.status, headers=dict(row.headers or {}),
                    fetched_at=row.fetched_at)

    def page_html(self, page_id: int) -> bytes:
        with self.session() as s:
            return decompress_html(s.scalar(select(PageRow.html_gz).where(PageRow.id == page_id)) or b"")

    def article_for_page(self, page_id: int) -> int | None:
        with self.session() as s:
            return s.scalar(select(ArticleRow.id).where(ArticleRow.page_id == page_id))

    def add_article(self, page_id: int, article: Article, signature: Signature) -> int:
        """Store an article and its signature in one transaction; a new article is its own cluster."""
        return self.add_article_once(page_id, article, signature)[0]

    def add_article_once(self, page_id: int, article: Article, signature: Signature) -> tuple[int, int, bool]:
        """(article id, cluster id, created): the page's existing article if it has one already.

        Safe when two workers race on the same page, or a task is redelivered: the second insert fails on
        the unique page id and the stored article is returned. Prebuilt Core statements: this runs once
        per ingested page.
        """
        q = self._stmts
        kinds, data = encode_signature(signature)
        try:
            with self._begin() as c, self._savepoint(c):
                # no look-up first: the unique page id turns a second insert into the IntegrityError below
                now = utcnow()
                # the cluster first, so that the article row (text and all) is written once
                cluster_id = c.execute(q["insert_cluster"], {"canonical_id": None, "size": 1,
                                                             "created_at": now, "updated_at": now}
                                       ).inserted_primary_key[0]
                article_id = c.execute(q["insert_article"], {
                    "page_id": page_id, "url": article.url, "title": article.title, "text": article.text,
                    "published": article.published, "site": article.site, "canonical_url": article.canonical_url,
                    "language": article.language, "byline": article.byline, "meta": article.meta(),
                    "n_tokens": signature.n_tokens, "is_canonical": True, "flags": [], "evidence": {},
                    "similarity": 1.0, "created_at": now, "updated_at": now, "cluster_id": cluster_id,
                }).inserted_primary_key[0]
                c.execute(q["set_canonical"], {"c": cluster_id, "a": article_id})
                c.execute(q["insert_signature"], {"article_id": article_id, "kinds": kinds,
                                                  "n_tokens": signature.n_tokens, "data": data})
                c.execute(q["insert_event"], {"at": now, "type": "article_added", "cluster_id": cluster_id,
                                              "article_id": article_id,
                                              "data": {"url": article.url, "canonical": True}})
                return int(article_id), int(cluster_id), True
        except IntegrityError:
            with self._begin() as c:
                found = c.execute(q["article_of_page"], {"p": page_id}).first()
            if found is None:
                raise
            return found[0], found[1], False

    def articles(self, ids: Iterable[int]) -> dict[int, Article]:
        ids = list(ids)
        with self.session() as s:
            rows = s.scalars(select(ArticleRow).where(ArticleRow.id.in_(ids))) if ids else []
            return {r.id: row_to_article(r) for r in rows}

    def article_urls(self, ids: Iterable[int]) -> dict[int, str]:
        """id → URL of these articles (a big component is partitioned from this and the signatures)."""
        ids = list(ids)
        with self._begin(read=True) as c:
            return dict(c.execute(select(ArticleRow.id, ArticleRow.url).where(ArticleRow.id.in_(ids))).all())

    def article_rows(self, ids: Iterable[int]) -> dict[int, ArticleRow]:
        ids = list(ids)
        with self.session() as s:
            rows = s.scalars(select(ArticleRow).where(ArticleRow.id.in_(ids))) if ids else []
            return {r.id: r for r in rows}

    def signatures_of(self, ids: Iterable[int]) -> dict[int, Signature]:
        """The stored signatures of these articles (a big story is partitioned from them)."""
        rows = self._rows_in("SELECT article_id, kinds, data, n_tokens FROM signatures WHERE article_id IN", ids)
        return {r[0]: decode_signature(r[1], r[2], r[3]) for r in rows}

    def signature_values(self, ids: Iterable[int], kind: str, width: int) -> tuple[list[int], np.ndarray]:
        """One kind's stored MinHash values of these articles as one matrix, a row per article that has ``width``
        of them (others are left out), with the articles' ids in row order: the candidate filter compares a new
        article with all of its candidates at once, and decoding each signature cost more than reading it."""
        found: list[int] = []
        parts: list[bytes] = []
        for article_id, kinds, data in self._rows_in(
                "SELECT article_id, kinds, data FROM signatures WHERE article_id IN", ids):
            part = kind_bytes(kinds, bytes(data), kind)
            if part is not None and len(part) == 4 * width:
                found.append(article_id)
                parts.append(part)
        return found, np.frombuffer(b"".join(parts), dtype=np.uint32).reshape(len(parts), width)

    # the persisted LSH index (pipeline.dedup.index.StoreLSHIndex) ----------------------------
    def band_members(self, band_keys: list[int]) -> list[tuple[int, int]]:
        """(band key, article id) of every article in these buckets (this runs for every article)."""
        return [(r[0], r[1]) for r in self._rows_in("SELECT band_key, article_id FROM lsh_bands WHERE band_key IN",
                                                    band_keys)]

    def _rows_in(self, head: str, values: Iterable[int]) -> list[Any]:
        """The rows of ``head`` + ``(values)``: driver-level SQL with a placeholder list made once per length, in
        chunks of ``IN_CHUNK``. The candidate reads of every new article run here, and SQLAlchemy's rendering of
        an expanding IN (and its row handling) cost more than the index lookups themselves."""
        values = list(values)
        rows: list[Any] = []
        if not values:
            return rows
        with self._begin(read=True) as c:
            for start in range(0, len(values), IN_CHUNK):
                chunk = tuple(values[start : start + IN_CHUNK])
                sql = self._in_queries.get((head, len(chunk)))
                if sql is None:
                    sql = self._in_queries[(head, len(chunk))] = f"{head} ({', '.join([self._mark] * len(chunk))})"
                rows.extend(c.exec_driver_sql(sql, chunk))
        return rows

    def add_bands(self, rows: list[tuple[int, int]]) -> None:
        """Put articles into buckets, ``(band key, article id)``; an entry already there is kept as it is."""
        if rows:
            with self._begin() as c:
                c.exec_driver_sql(f"INSERT INTO lsh_bands (band_key, article_id) VALUES ({self._mark}, {self._mark}) "
                                  "ON CONFLICT DO NOTHING", rows)

    def remove_bands(self, article_id: int, band_keys: list[int]) -> None:
        """Take an article out of these buckets."""
        with self._begin() as c:
            c.execute(self._stmts["remove_bands"], {"a": article_id, "keys": band_keys})

    def mark(self, name: str) -> int:
        """A named position (``MarkRow``); 0 when never set."""
        with self._begin(read=True) as c:
            value = c.scalar(select(MarkRow.value).where(MarkRow.name == name))
        return int(value) if value is not None else 0

    def set_mark(self, name: str, value: int) -> None:
        with self._begin() as c:
            stmt = _insert(c)(MarkRow.__table__).values(name=name, value=value)
            c.execute(stmt.on_conflict_do_update(index_elements=[MarkRow.__table__.c.name], set_={"value": value}))

    # re-fingerprinting (``pipeline.dedup.refingerprint``) ---------------------------------------------
    def first_signature_kinds(self) -> list[str] | None:
        """The kinds of the oldest stored signature (None: no signature is stored)."""
        with self._begin(read=True) as c:
            kinds = c.scalar(select(SignatureRow.kinds).order_by(SignatureRow.article_id).limit(1))
        return kinds.split(",") if kinds is not None else None

    def article_texts_after(self, article_id: int, *, batch: int = 500) -> list[tuple[int, str]]:
        """(id, text) of the next ``batch`` articles after ``article_id``, in id order."""
        with self._begin(read=True) as c:
            return [(int(i), t) for i, t in c.execute(select(ArticleRow.id, ArticleRow.text)
                                                      .where(ArticleRow.id > article_id)
                                                      .order_by(ArticleRow.id).limit(batch))]

    def replace_signatures(self, signatures: Iterable[tuple[int, Signature]]) -> None:
        """Overwrite the stored signatures of these articles (every kind at once)."""
        rows = []
        for article_id, sig in signatures:
            kinds, data = encode_signature(sig)
            rows.append({"a": article_id, "k": kinds, "n": sig.n_tokens, "d": data})
        if rows:
            with self._begin() as c:
                c.execute(_SIGNATURE_UPDATE, rows)

    def clear_bands(self, mark: str) -> None:
        """Empty the persisted LSH index and move its mark (``mark``) to 0: the next index opened on this store
        takes every article in again from its signature."""
        with self._begin() as c:
            c.execute(LSHBandRow.__table__.delete())
        self.set_mark(mark, 0)

    def signatures_after(self, article_id: int, *, batch: int = 1000) -> Iterator[tuple[int, Signature]]:
        """Signatures of the articles with a larger id, in id order."""
        last = article_id
        while True:
            with self._begin(read=True) as c:
                rows = c.execute(select(SignatureRow.article_id, SignatureRow.kinds, SignatureRow.data,
                                        SignatureRow.n_tokens).where(SignatureRow.article_id > last)
                                 .order_by(SignatureRow.article_id).limit(batch)).all()
            if not rows:
                return
            for r in rows:
                yield r[0], decode_signature(r[1], r[2], r[3])
            last = rows[-1][0]

    def indexed_articles(self) -> set[int]:
        """Every article in some bucket (a whole scan: for inspection and tests, not for the hot path)."""
        with self._begin(read=True) as c:
            return set(c.execute(select(LSHBandRow.article_id).distinct()).scalars())

    def has_bands(self) -> bool:
        """Whether the persisted index holds anything (a store written before it existed holds nothing)."""
        with self._begin(read=True) as c:
            return c.execute(select(LSHBandRow.band_key).limit(1)).first() is not None

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
        rows = [
            {"a_id": min(a, b), "b_id": max(a, b), "relation": v.relation, "similarity": v.similarity,
             "data": {"coverage_a": v.coverage_a, "coverage_b": v.coverage_b,
                      "substitution_rate": v.substitution_rate, "evidence": v.evidence, "flipped": a > b}}
            for (a, b), v in edges.items()
        ]
        with self._begin() as c:
            if pending is not None:
                c.execute(self._stmts["add_pending"], {"article_id": pending})
            if rows:
                c.execute(self._stmts["upsert_edges"], rows)

    def pending(self) -> set[int]:
        with self.session() as s:
            return set(s.scalars(select(PendingRow.article_id)))

    def clear_pending(self, article_ids: Iterable[int]) -> None:
        ids = list(article_ids)
        with self.session() as s:
            s.execute(PendingRow.__table__.delete().where(PendingRow.article_id.in_(ids)))

    def component_edges(
        self, article_id: int | Iterable[int], limit: int = 5000, *, links: bool = False
    ) -> tuple[set[int], dict[tuple[int, int], PairVerdict]]:
        """The related component of an article (or the union of several articles' components) and every verified
        relation inside it, in one transaction. With ``links`` the walk also follows the merges of operator
        reviews in force (forced relations, which have no verdict and are not returned)."""
        seen = {article_id} if isinstance(article_id, int) else set(article_id)
        frontier = set(seen)
        found: dict[tuple[int, int], PairVerdict] = {}
        with self._begin() as c:
            while frontier and len(seen) < limit:
                ids = list(frontier)
                rows = c.execute(_EDGES_OF, {"ids": ids}).all()
                for a_id, b_id, relation, similarity, data in rows:
                    found[(a_id, b_id)] = edge_verdict(relation, similarity, data)
                nxt = {x for r in rows for x in (r[0], r[1])}
                if links:
                    nxt |= {x for pair in self._merge_links(c, ids) for x in pair}
                nxt -= seen
                seen |= nxt
                frontier = nxt
        return seen, {k: v for k, v in found.items() if k[0] in seen and k[1] in seen}

    def assign_clusters(self, groups: list[set[int]], moves: list[dict[str, Any]] | None = None) -> list[int]:
        """Give each group of articles a cluster id, keeping the ids they already hold where possible.

        A cluster id stays with the group that holds most of its members (ties: the bigger group, then the one
        with the smaller ids): a group keeps the oldest id it holds that way, else the oldest it holds that no
        group kept, else it gets a new cluster (``cluster_split``). When groups only merge (a bulk ingest) every
        cluster lies in one group, so a group keeps the oldest id among its members' clusters. Clusters left
        without members are marked merged into the group that absorbed them. A cluster that also holds articles
        outside these groups (the rest of a component split by an update, a takedown or a review, re-decided in
        another call) is kept by the groups only if they hold its smallest member, so two calls never both keep
        it. ``moves`` collects every article whose cluster changed (``cluster_moved``: old, new).
        """
        a, cl, ev = ArticleRow.__table__, ClusterRow.__table__, EventRow.__table__
        members = set().union(*groups) if groups else set()
        order = sorted(range(len(groups)), key=lambda k: (-len(groups[k]), min(groups[k])))
        with self._begin() as c:
            current = dict(c.execute(_CLUSTER_OF, {"ids": list(members)}).all())
            held_ids = sorted({v for v in current.values() if v is not None})
            first = dict(c.execute(_FIRST_MEMBER, {"ids": held_ids}).all()) if held_ids else {}
            taken: set[int] = {cid for cid, smallest in first.items() if smallest not in members}
            chosen = self._keep_ids(groups, order, current, taken)
            result: dict[int, int] = {}
            for k in order:
                group = groups[k]
                cid = chosen.get(k)
                if cid is None:
                    now = utcnow()
                    cid = c.execute(cl.insert().values(size=len(group), created_at=now, updated_at=now)
                                    ).inserted_primary_key[0]
                    c.execute(ev.insert().values(at=now, type="cluster_split", cluster_id=cid,
                                                 data={"members": sorted(group)}))
                    taken.add(cid)
                result[k] = cid
                moved = [i for i in group if current.get(i) != cid]
                if moved:
                    c.execute(_MOVE, {"ids": moved, "cid": cid})
                    if moves is not None:
                        moves.extend({"type": "cluster_moved", "article_id": i, "old": current.get(i), "new": cid}
                                     for i in sorted(moved))
                absorbed = sorted({current[i] for i in group if current.get(i) is not None} - {cid})
                for old in absorbed:
                    if old in taken or first.get(old, -1) not in members:
                        continue
                    still = c.scalar(select(a.c.id).where(a.c.cluster_id == old).limit(1))
                    if still is None:
                        c.execute(update(cl).where(cl.c.id == old).values(merged_into=cid, size=0, canonical_id=None))
                        c.execute(ev.insert().values(at=utcnow(), type="clusters_merged", cluster_id=cid,
                                                     data={"merged": [old], "into": cid}))
            return [result[k] for k in range(len(groups))]

    @staticmethod
    def _keep_ids(groups: list[set[int]], order: list[int], current: dict[int, int | None],
                  taken: set[int]) -> dict[int, int]:
        """group index → the cluster id it keeps (``assign_clusters``); ``taken`` grows by the ids kept."""
        rank = {k: r for r, k in enumerate(order)}
        share: dict[int, dict[int, int]] = {}
        for k, group in enumerate(groups):
            for i in group:
                cid = current.get(i)
                if cid is not None:
                    share.setdefault(cid, {})[k] = share.get(cid, {}).get(k, 0) + 1
        owner = {cid: min(counts, key=lambda k: (-counts[k], rank[k])) for cid, counts in share.items()}
        chosen: dict[int, int] = {}
        for k in order:  # the oldest cluster the group holds most of
            own = sorted(cid for cid, o in owner.items() if o == k and cid not in taken)
            if own:
                chosen[k] = own[0]
                taken.add(own[0])
        for k in order:  # else the oldest it holds that nobody kept
            if k not in chosen:
                held = sorted({current[i] for i in groups[k] if current.get(i) is not None} - taken)
                if held:
                    chosen[k] = held[0]
                    taken.add(held[0])
        return chosen

    def apply_decision(self, cluster_id: int, decision: ClusterDecision, *,
                       touch: bool = False) -> list[dict[str, Any]]:
        """Write the canonicalizer's verdict; log canonical moves and flag changes as events.

        A decision that changes nothing writes nothing (a re-processing with unchanged code leaves every row as
        it was); ``touch`` sets the cluster's ``updated_at`` anyway (a review shown on the cluster's page)."""
        ev = EventRow.__table__
        changes: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        now = utcnow()
        with self._begin() as c:
            old, old_size = c.execute(_CLUSTER_STATE, {"cid": cluster_id}).one()
            ids = [m.article_id for m in decision.members]
            stored = {r[0]: (r[1] or [], r[2], r[3], r[4]) for r in c.execute(_DECIDED, {"ids": ids})}
            updates = []
            for m in decision.members:
                flags, is_canonical, similarity, evidence = stored[m.article_id]
                if sorted(flags) != sorted(m.flags) and (flags or m.flags):
                    events.append({"type": "flags_changed", "article_id": m.article_id,
                                   "data": {"old": list(flags), "new": list(m.flags)}})
                    changes.append({"type": "flags_changed", "article_id": m.article_id, "flags": list(m.flags),
                                    "old": list(flags)})
                if bool(is_canonical) != m.canonical:
                    # per-article status: a follower of the feed mirrors the canonical set from these alone
                    events.append({"type": "canonical_status", "article_id": m.article_id,
                                   "data": {"canonical": m.canonical}})
                if (list(flags) != list(m.flags) or bool(is_canonical) != m.canonical or similarity != m.similarity
                        or json_text(evidence) != json_text(m.evidence)):
                    # only what changed: an unchanged member keeps its row (and updated_at) as it was
                    updates.append({"b_id": m.article_id, "is_canonical": m.canonical, "flags": list(m.flags),
                                    "evidence": m.evidence, "similarity": m.similarity, "updated_at": now})
            if updates:
                c.execute(_MEMBER_UPDATE, updates)
            if old != decision.canonical_id:
                events.append({"type": "canonical_changed", "article_id": decision.canonical_id,
                               "data": {"old": old, "new": decision.canonical_id, "reason": decision.reason}})
                changes.append({"type": "canonical_changed", "old": old, "new": decision.canonical_id,
                                "reason": decision.reason, "cluster_id": cluster_id})
            if events:
                c.execute(ev.insert(), [{"at": now, "cluster_id": cluster_id, **e} for e in events])
            if touch or updates or events or old != decision.canonical_id or old_size != len(ids):
                c.execute(_CLUSTER_UPDATE, {"cid": cluster_id, "canonical": decision.canonical_id, "size": len(ids),
                                            "now": now})
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

    def totals(self) -> dict[str, Any]:
        """What a run's summary says of the whole store: articles, clusters with articles, clusters with copies,
        and articles per flag. Each is a count over an index (clusters keep their size; each flag has a partial
        index), so a summary costs the same against a million articles as against a hundred."""
        with self._begin(read=True) as c:
            articles = c.scalar(select(func.count()).select_from(ArticleRow)) or 0
            clusters = c.scalar(select(func.count()).select_from(ClusterRow).where(ClusterRow.size > 0)) or 0
            multi = c.scalar(select(func.count()).select_from(ClusterRow).where(ClusterRow.size > 1)) or 0
        flags = {flag: n for flag, n in self.flag_totals().items() if n}
        return {"articles": int(articles), "clusters": int(clusters), "multi_clusters": int(multi), "flags": flags}

    def flag_totals(self) -> dict[str, int]:
        """How many articles carry each flag (every name in ``FLAG_NAMES``, zeros included), each counted through
        the flag's partial index: the cost is the flagged articles', not the store's."""
        counts = {}
        with self._begin(read=True) as c:
            for flag in FLAG_NAMES:
                # the pattern inline, as in the partial index's predicate: with a bound parameter the planner
                # cannot tell that the index covers the query, and reads every article (0.17 s a flag at 100k)
                pattern = literal(f'%"{flag}"%', literal_execute=True)
                counts[flag] = int(c.scalar(select(func.count()).select_from(ArticleRow)
                                            .where(ArticleRow.flags.cast(Text).like(pattern))) or 0)
        return counts

    def warc_checkpoint(self, key: str) -> int:
        """The committed resume offset of a WARC read (0: start from the beginning)."""
        with self.session() as s:
            row = s.get(WarcCheckpointRow, key)
            return int(row.offset) if row is not None else 0

    def set_warc_checkpoint(self, key: str, offset: int) -> None:
        """Record that everything before ``offset`` is committed; call after the items are stored (in
        their unit, so that the offset commits with them). One prebuilt upsert: it runs per record."""
        with self._begin() as c:
            c.execute(self._stmts["checkpoint"], {"key": key, "offset": offset, "updated_at": utcnow()})

    def sitemap_unchanged(self, url: str, lastmod: datetime) -> bool:
        """Whether a sitemap URL listed with ``lastmod`` (aware or naive UTC) needs no fetch: its page is
        stored and the lastmod is not newer than the one recorded at its last fetch (or, with none
        recorded, than the stored page's fetch time)."""
        when = naive_utc(lastmod)
        key = url_key(url)
        with self.session() as s:
            fetched = s.scalar(select(PageRow.fetched_at).where(PageRow.url_key == key))
            if fetched is None:
                return False
            seen = s.scalar(select(SitemapLastmodRow.lastmod).where(SitemapLastmodRow.url_key == key))
            return when <= (seen if seen is not None else naive_utc(fetched))

    def set_sitemap_lastmod(self, url: str, lastmod: datetime) -> None:
        """Record the sitemap lastmod of a URL whose content as of that version has been fetched."""
        key = url_key(url)
        with self.session() as s:
            row = s.get(SitemapLastmodRow, key)
            if row is None:
                s.add(SitemapLastmodRow(url_key=key, lastmod=naive_utc(lastmod), checked_at=utcnow()))
            else:
                row.lastmod, row.checked_at = naive_utc(lastmod), utcnow()


def _insert(bind: Connection | Engine) -> Any:
    """The dialect's INSERT, which has ON CONFLICT on both SQLite and PostgreSQL (imported for the dialect in use:
    the PostgreSQL dialect module is a twentieth of a second of every embedded start)."""
    if bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert
