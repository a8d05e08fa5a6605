"""The hot listings' fast path and their queries, on SQLite and PostgreSQL, over a synthetic store.

``GET /articles`` and ``GET /changes`` are served by a plain route ahead of FastAPI's for the common case: each
answer must be exactly what FastAPI's route gives (same status, same document), and whatever the fast path does not
take (a bad value, an unknown or repeated parameter, a wrong token) must fall through to FastAPI's validation. The
listing's indexed plans (a site or flag walk, the race of a date filter against the id order) must return exactly
what the plain filtered scan returns, for any cursor and limit.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Text, cast, func, insert, select

from pipeline.records import ArticleFilter
from pipeline.serve import cursors, queries, shapes
from pipeline.serve.api import create_app, serve_in_thread
from pipeline.settings import Settings
from pipeline.store import ArticleRow, ClusterRow, EventRow, PageRow, SourceRow, Store
from tests.support.db import temporary_database

SITES = [f"Site {i}" for i in range(7)]
WORDS = ["harbour", "council", "library", "river", "budget", "ferry", "100%", "a_b"]
ROWS = 1500


def fill(store: Store, rows: int = ROWS) -> None:
    """Articles over about a year (published and ingested dates follow the ids), a third of them flagged copies."""
    rng = random.Random(3)
    start = datetime(2025, 1, 1)
    pages, clusters, articles, events = [], [], [], []
    for i in range(1, rows + 1):
        at = start + timedelta(hours=i * 6)
        copy = i > 3 and rng.random() < 0.33
        flags = rng.choice([[], ["spun"], ["scraped"], ["spun", "scraped"]]) if copy else []
        title = " ".join(rng.choice(WORDS) for _ in range(5)).capitalize()
        pages.append({"id": i, "url": f"https://s.example/{i}", "url_key": f"{i:040d}", "source_id": 1, "status": 200,
                      "headers": {}, "content_hash": f"{i:040x}", "html_gz": b"", "fetched_at": at})
        clusters.append({"id": i, "canonical_id": i, "size": 1, "created_at": at, "updated_at": at})
        articles.append({"id": i, "page_id": i, "url": f"https://s.example/{i}", "title": title, "text": title,
                         "published": None if i % 97 == 0 else (at - timedelta(hours=2)).date().isoformat(),
                         "site": None if i % 89 == 0 else SITES[i % len(SITES)], "canonical_url": None,
                         "language": "en", "byline": None, "meta": {}, "n_tokens": 5,
                         "cluster_id": rng.randint(max(1, i - 5), i) if copy else i, "is_canonical": not copy,
                         "flags": flags, "evidence": {}, "similarity": 0.9 if copy else 1.0,
                         "created_at": at + timedelta(microseconds=i % 3 * 250_000), "updated_at": at})
        events.append({"at": at, "type": "article_added", "cluster_id": i, "article_id": i,
                       "data": {"url": f"https://s.example/{i}", "canonical": not copy, "title": "Café \u2014 ok"}})
        if i % 50 == 0:
            events.append({"at": at, "type": "flags_changed", "cluster_id": i, "article_id": i, "data": {}})
    with store.engine.begin() as conn:
        conn.execute(insert(SourceRow), [{"id": 1, "spec": "s", "spec_key": "0" * 40, "kind": "url_list",
                                          "created_at": start}])
        conn.execute(insert(PageRow), pages)
        conn.execute(insert(ClusterRow), clusters)
        conn.execute(insert(ArticleRow), articles)
        conn.execute(insert(EventRow), events)
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    for url in temporary_database(request.param, tmp_path_factory.mktemp(request.param)):
        s = Store(url)
        fill(s)
        try:
            yield s
        finally:
            s.close()


def reference(store: Store, flt: ArticleFilter, after: int, limit: int) -> tuple[list[int], int | None]:
    """The listing as one plain filtered statement in id order (what the indexed plans must equal)."""
    q = select(ArticleRow.id).where(ArticleRow.id > after)
    if flt.canonical is not None:
        q = q.where(ArticleRow.is_canonical.is_(flt.canonical))
    if flt.site:
        q = q.where(ArticleRow.site == flt.site)
    if flt.published_since is not None:
        q = q.where(ArticleRow.published.is_not(None), ArticleRow.published >= flt.published_since.isoformat())
    if flt.ingested_since is not None:
        q = q.where(ArticleRow.created_at >= shapes.naive_utc(flt.ingested_since))
    if flt.flag:
        q = q.where(cast(ArticleRow.flags, Text).like(f'%"{flt.flag}"%'))
    if flt.q:
        q = q.where(func.lower(ArticleRow.title).like(f"%{queries._like_escape(flt.q.lower())}%", escape="\\"))
    with store.engine.connect() as conn:
        ids = list(conn.execute(q.order_by(ArticleRow.id).limit(limit + 1)).scalars())
    return ids[:limit], (ids[limit - 1] if len(ids) > limit else None)


def random_filter(rng: random.Random) -> ArticleFilter:
    kw: dict[str, Any] = {"canonical": rng.choice([True, False, None])}
    for _ in range(rng.choice([1, 1, 2])):
        kind = rng.choice(["site", "published", "ingested", "flag", "q"])
        if kind == "site":
            kw["site"] = rng.choice([*SITES, "Nowhere"])
        elif kind == "published":
            kw["published_since"] = rng.choice([date(2025, rng.randint(1, 12), rng.randint(1, 28)),
                                                datetime(2025, 4, 1, 12), date(2027, 1, 1)])
        elif kind == "ingested":
            kw["ingested_since"] = rng.choice([datetime(2025, rng.randint(1, 12), 2, 6, 0, 0),
                                               datetime(2025, 3, 5, 12, 0, 0, 250_000),
                                               datetime(2025, 6, 1, 2, tzinfo=timezone(timedelta(hours=2))),
                                               datetime(2025, 6, 1, tzinfo=UTC)])
        elif kind == "flag":
            kw["flag"] = rng.choice(["spun", "scraped"])
        else:
            kw["q"] = rng.choice([*WORDS, "HARBOUR", "zzz"])
    return ArticleFilter(**kw)


def test_indexed_listings_equal_the_plain_scan(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # small race steps, so the store's 1,500 rows exercise every turn of the race (steps, probes, the top)
    monkeypatch.setattr(queries, "RACE_STEP", 4)
    rng = random.Random(11)
    for _ in range(300):
        flt = random_filter(rng)
        after = rng.choice([0, rng.randint(0, ROWS), rng.randint(ROWS - 60, ROWS + 5)])
        limit = rng.choice([1, 7, 50, 200])
        items, last = queries.list_articles(store, flt, after=after, limit=limit)
        assert ([a["id"] for a in items], last) == reference(store, flt, after, limit), (flt, after, limit)


def test_walking_every_page_of_a_filtered_listing(store: Store) -> None:
    flt = ArticleFilter(canonical=None, published_since=date(2025, 7, 1))
    seen: list[int] = []
    after = 0
    while True:
        items, last = queries.list_articles(store, flt, after=after, limit=37)
        seen += [a["id"] for a in items]
        if last is None:
            break
        after = last
    assert seen == reference(store, flt, 0, 10 * ROWS)[0]


def test_the_flag_and_site_filters_walk_their_indexes(store: Store) -> None:
    """The partial flag indexes only serve a query whose condition is theirs, word for word: check the plans."""
    if store.engine.dialect.name == "sqlite":
        explain, params = "EXPLAIN QUERY PLAN ", {"after": 0, "n": 51, "site": "Site 1"}
    else:
        explain, params = "EXPLAIN ", {"after": 0, "n": 51, "site": "Site 1"}
    for flt, index in ((ArticleFilter(canonical=None, flag="spun"), "ix_articles_flag_spun"),
                       (ArticleFilter(canonical=False, flag="scraped"), "ix_articles_flag_scraped"),
                       (ArticleFilter(canonical=None, site="Site 1"), "ix_articles_site")):
        plan = queries._article_plan(store.engine.dialect.name, queries._shape(flt))
        if store.engine.dialect.name == "postgresql":
            with store.engine.connect() as conn:
                conn.exec_driver_sql("SET enable_seqscan = off")  # a 1,500-row table may be read whole otherwise
                text = " ".join(str(r[0]) for r in conn.exec_driver_sql(explain + plan.walk, params))
        else:
            with store.engine.connect() as conn:
                text = " ".join(str(r[-1]) for r in conn.exec_driver_sql(explain + plan.walk, params))
        assert index in text, (flt, text)


def test_read_connections_survive_dispose_and_a_dropped_connection(store: Store) -> None:
    flt = ArticleFilter()
    first = queries.list_articles(store, flt, limit=5)
    store.engine.dispose()  # what Store.close does: the kept connections go with the pool
    assert queries.list_articles(store, flt, limit=5) == first
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect() as conn:  # the server drops every other connection (a restart, a failover)
            conn.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        time.sleep(0.2)
        assert queries.list_articles(store, flt, limit=5) == first


def test_a_sqlite_store_made_before_the_indexes_gets_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    s = Store(url)
    try:
        with s.engine.begin() as conn:
            for name in ("ix_articles_site", "ix_articles_flag_spun", "ix_articles_published"):
                conn.exec_driver_sql(f"DROP INDEX {name}")
        create_app(s, Settings(database_url=url))
        with s.engine.connect() as conn:
            names = set(conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'").scalars())
        assert {ix.name for ix in ArticleRow.__table__.indexes} <= names
    finally:
        s.close()


# --- the fast path against FastAPI's route --------------------------------------------------------------------------
ARTICLE_QUERIES: list[dict[str, Any] | list[tuple[str, str]]] = [
    {}, {"limit": 1}, {"limit": 200}, {"limit": 7, "canonical": "any"}, {"canonical": "false", "limit": 20},
    {"site": "Site 3"}, {"site": "Nowhere"}, {"flag": "spun", "canonical": "any"}, {"flag": "scraped"},
    {"published_since": "2025-06-01"}, {"published_since": "2025-06-01", "canonical": "any", "limit": 13},
    {"ingested_since": "2025-03-01T00:00:00Z"}, {"ingested_since": "2025-03-01T02:00:00.5+02:00"},
    {"ingested_since": "2025-03-01T00:00:00"}, {"q": "HARBOUR"}, {"q": "100%"}, {"q": "a_b", "canonical": "any"},
    {"site": "Site 2", "flag": "spun", "canonical": "any", "q": "river"},
    # what the fast path hands to FastAPI (it must then be FastAPI's answer, errors included)
    {"limit": 0}, {"limit": 201}, {"limit": "050"}, {"limit": " 5"}, {"limit": "5.0"}, {"limit": "x"},
    {"canonical": "yes"}, {"canonical": "TRUE"}, {"flag": "plagiarised"}, {"flags": "spun"}, {"site": ""},
    {"site": "x" * 501}, {"site": "é" * 500}, {"q": ""}, {"q": "x" * 201}, {"published_since": "2025-6-1"},
    {"published_since": "2025-02-30"}, {"published_since": "yesterday"}, {"published_since": "2025-06-01T00:00:00"},
    {"ingested_since": "2025-03-01"}, {"ingested_since": "2025-03-01 00:00:00"},
    {"ingested_since": "2025-13-01T00:00:00"},
    {"ingested_since": "2999-01-01T00:00:00+02:00"}, {"cursor": "bogus"}, {"cursor": cursors.encode_cursor("e", 5)},
    {"cursor": "x" * 201}, [("limit", "5"), ("limit", "6")], [("site", "Site 1"), ("site", "Site 2")],
]


def _events_cursor(n: int) -> str:
    return cursors.encode_cursor("e", n)


CHANGES_QUERIES: list[dict[str, Any] | list[tuple[str, str]]] = [
    {}, {"limit": 1}, {"limit": 1000}, {"cursor": _events_cursor(100), "limit": 31}, {"cursor": _events_cursor(10**6)},
    {"limit": 0}, {"limit": 1001}, {"limit": "07"}, {"cursor": "bogus"}, {"cursor": cursors.encode_cursor("a", 1)},
    {"since": "x"}, [("limit", "2"), ("limit", "3")], {"cursor": ""},
]


def _answers(base: str, path: str, params: Any, headers: dict[str, str]) -> tuple[int, str, Any]:
    response = httpx.get(f"{base}{path}", params=params, headers=headers, timeout=10)
    return response.status_code, response.headers["content-type"], response.json()


@pytest.mark.parametrize("token", [None, "s3cret"])
def test_the_fast_path_answers_exactly_as_fastapi(store: Store, token: str | None) -> None:
    settings = Settings(database_url=store.url, api_token=token)
    fast = create_app(store, settings)
    slow = create_app(store, settings)
    slow.router.routes[:] = [r for r in slow.router.routes if type(r).__name__ != "_FastRoute"]
    assert len(slow.router.routes) == len(fast.router.routes) - 2
    headers = [{}] if token is None else [{"Authorization": f"Bearer {token}"}, {"Authorization": f"bearer  {token}"},
                                          {"Authorization": "Bearer wrong"}, {}]
    cases = [("/articles", q) for q in ARTICLE_QUERIES] + [("/changes", q) for q in CHANGES_QUERIES]
    with serve_in_thread(fast) as fast_url, serve_in_thread(slow) as slow_url:
        for header in headers:
            for path, params in cases:
                got = _answers(fast_url, path, params, header)
                assert got == _answers(slow_url, path, params, header), (path, params, header)
        # a page of the feed carries the stored event data as they were written
        status, _, body = _answers(fast_url, "/changes", {"limit": 3}, headers[0])
        assert status == 200 and body["events"][0]["data"]["title"] == "Café \u2014 ok"
    assert fast.openapi() == slow.openapi()


def test_reprint_serve_with_workers(store: Store, tmp_path: Path) -> None:
    if store.engine.dialect.name != "sqlite":
        pytest.skip("one backend is enough to start the workers")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "serve", "--db", store.url, "--port", str(port),
                             "--workers", "2", "--log-level", "warning"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/articles", params={"limit": 2}, timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert response.status_code == 200 and len(response.json()["items"]) == 2
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode in (0, -15), out.decode(errors="replace")
    assert json.loads(response.text)["next_cursor"]
