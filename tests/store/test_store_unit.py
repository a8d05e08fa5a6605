"""One transaction per page: Store.unit() on SQLite and PostgreSQL, and what ingest_page does when the
unit fails (the page is kept, the in-process index and cache forget the article that was rolled back)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

import pipeline.dedup.deduplicator
from pipeline.dedup.deduplicator import Deduplicator
from pipeline.dedup.fingerprint import fingerprint
from pipeline.dedup.index import screen
from pipeline.dedup.policy import DecisionPolicy
from pipeline.errors import EmptyPage
from pipeline.extract.extractor import extract
from pipeline.ingest.steps import ingest_page
from pipeline.records import Article, Page
from pipeline.settings import Settings
from pipeline.store import ArticleRow, PageRow, Store
from tests.support.pages import original_page, republished_page, unrelated_page


def _count(store: Store, row: type) -> int:
    with store.engine.connect() as c:
        return int(c.scalar(select(func.count()).select_from(row)))


def test_a_unit_commits_its_writes_together(store: Store) -> None:
    with store.unit():
        page_id = store.add_page(Page("https://a.example/1", original_page()), None)
        with store.unit():  # a nested unit joins the open one
            store.add_page(Page("https://a.example/2", original_page()), None)
        assert store.stored_page("https://a.example/2") is not None  # reads inside see the unit's writes
        assert page_id in {r.id for r in _session_pages(store)}
        with store.engine.connect() as other:  # another connection does not, until the commit
            assert other.scalar(select(func.count()).select_from(PageRow)) == 0
    assert _count(store, PageRow) == 2


def _session_pages(store: Store) -> list[PageRow]:
    with store.session() as s:
        return list(s.scalars(select(PageRow)))


def test_a_failed_unit_leaves_nothing_behind(store: Store) -> None:
    with pytest.raises(RuntimeError), store.unit():
        store.add_page(Page("https://a.example/1", original_page()), None)
        store.record_error(stage="ingest", kind="X", message="inside the unit")
        raise RuntimeError("boom")
    assert _count(store, PageRow) == 0
    assert store.errors() == []
    store.add_page(Page("https://a.example/1", original_page()), None)  # the store is usable afterwards
    assert _count(store, PageRow) == 1


def test_a_second_article_for_a_page_inside_a_unit_returns_the_first(store: Store) -> None:
    """The unique page id turns the second insert into a look-up; on PostgreSQL a savepoint keeps the
    unit's transaction alive through that failed statement."""
    dedup = Deduplicator(store, Settings())
    with store.unit():
        page_id = store.add_page(Page("https://a.example/1", original_page()), None)
        first = dedup.add(page_id, _article("https://a.example/1", original_page()))
        again = store.add_article_once(page_id, _article("https://a.example/1", original_page()),
                                       fingerprint(_article("https://a.example/1", original_page())))
        later = store.add_page(Page("https://b.example/1", unrelated_page()), None)
    assert again == (first.article_id, first.cluster_id, False)
    assert later and _count(store, ArticleRow) == 1 and _count(store, PageRow) == 2


def _article(url: str, body: bytes):
    from pipeline.extract.extractor import extract

    return extract(Page(url, body))[0]


def test_when_dedup_fails_the_page_stays_and_the_article_is_forgotten(store: Store,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    dedup = Deduplicator(store, Settings())
    ingest_page(Page("https://herald.example/pier", original_page()), store, dedup, None)

    def broken(*_args, **_kwargs):
        raise RuntimeError("verification broke")

    monkeypatch.setattr(pipeline.dedup.deduplicator, "verify_articles", broken)
    copy = Page("https://wire.example/pier", republished_page("https://herald.example/pier"))
    with pytest.raises(RuntimeError, match="verification broke"):
        ingest_page(copy, store, dedup, None)
    # the page is kept (to re-extract later), its article was rolled back with the unit...
    assert store.stored_page(copy.url) is not None and store.stored_page(copy.url)[2] is None
    assert _count(store, ArticleRow) == 1
    # ...and neither the index nor the cache holds the id it had
    assert len(dedup.index) == 1 and len(dedup._articles) == 1
    monkeypatch.undo()
    result = ingest_page(copy, store, dedup, None)  # a retry stores it and relates it
    assert result.status == "stored" and result.related == 1
    assert _count(store, ArticleRow) == 2


def test_a_page_without_an_article_is_still_stored(store: Store) -> None:
    dedup = Deduplicator(store, Settings())
    with pytest.raises(EmptyPage):
        ingest_page(Page("https://a.example/empty", b"<html><body></body></html>"), store, dedup, None)
    state = store.stored_page("https://a.example/empty")
    assert state is not None and state[2] is None


def test_a_batch_flush_decides_in_one_transaction(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """With deferred decisions, a failing flush leaves the pending articles pending, to be decided again."""
    dedup = Deduplicator(store, Settings(), policy=DecisionPolicy.batched())
    ingest_page(Page("https://herald.example/pier", original_page()), store, dedup, None)
    ingest_page(Page("https://wire.example/pier", republished_page("https://herald.example/pier")), store, dedup,
                None)
    assert dedup._dirty and store.pending() == dedup._dirty
    real_decide = pipeline.dedup.deduplicator.decide
    monkeypatch.setattr(pipeline.dedup.deduplicator, "decide",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("decide")))
    with pytest.raises(RuntimeError):
        dedup.flush()
    assert store.pending() == dedup._dirty != set()  # nothing was half-decided
    monkeypatch.setattr(pipeline.dedup.deduplicator, "decide", real_decide)
    dedup.flush()
    assert store.pending() == set()
    clusters = {r.cluster_id for r in store.export_rows()}
    assert len(clusters) == 1


def test_the_run_summary_counts_flags_through_their_partial_indexes(sqlite_url: str) -> None:
    """``Store.totals`` (every run's summary) costs the same at a million articles as at a hundred: each flag count
    walks that flag's partial index. A bound LIKE pattern made SQLite read every article instead."""
    from sqlalchemy import event, text, update

    store = Store(sqlite_url)
    try:
        dedup = Deduplicator(store, Settings())
        for n, body in enumerate((original_page(), unrelated_page())):
            url = f"https://a.example/{n}"
            dedup.add(store.add_page(Page(url, body), None), extract_article(url, body))
        with store.engine.begin() as c:
            c.execute(update(ArticleRow).where(ArticleRow.id == 1).values(flags=["spun"]))
        seen: list[str] = []
        event.listen(store.engine, "before_cursor_execute", lambda _c, _cur, sql, *_a: seen.append(sql))
        assert store.totals()["flags"] == {"spun": 1}
        counts = [sql for sql in seen if "LIKE" in sql]
        assert len(counts) == 2
        with store.engine.connect() as c:
            for sql in counts:
                assert "?" not in sql, f"a bound pattern cannot match the partial index's predicate: {sql}"
                plan = " ".join(str(row[-1]) for row in c.execute(text("EXPLAIN QUERY PLAN " + sql)))
                assert "INDEX ix_articles_flag_" in plan, plan
    finally:
        store.close()


def test_metrics_totals_read_indexes_not_rows(sqlite_url: str) -> None:
    """``/metrics``' store totals read no article text and no page HTML: every query over pages, articles or
    events walks an index (``SCAN t`` alone in a plan would read every row of t)."""
    from sqlalchemy import event, update

    from pipeline.serve.queries import store_totals

    store = Store(sqlite_url)
    try:
        dedup = Deduplicator(store, Settings())
        source = store.source_id("https://a.example/feed", "url")
        for n, body in enumerate((original_page(), unrelated_page())):
            url = f"https://a.example/{n}"
            dedup.add(store.add_page(Page(url, body), source), extract_article(url, body))
        store.add_page(Page("https://a.example/empty", b"<html></html>"), source)  # a page with no article
        with store.engine.begin() as c:
            c.execute(update(ArticleRow).where(ArticleRow.id == 1).values(flags=["spun"]))
        seen: list[tuple[str, Any]] = []
        event.listen(store.engine, "before_cursor_execute",
                     lambda _c, _cur, sql, params, *_a: seen.append((sql, params)))
        totals = store_totals(store)
        assert totals["pages_fetched"] == {"https://a.example/feed": 3}
        assert totals["pages_extracted"] == {"https://a.example/feed": 2}
        assert totals["articles"] == 2 and totals["flags"] == {"spun": 1, "scraped": 0}
        assert totals["events"]["article_added"] == 2
        with store.engine.connect() as c:
            for sql, params in seen:
                if not sql.lstrip().upper().startswith("SELECT"):
                    continue
                plan = [str(row[-1]) for row in c.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, tuple(params))]
                for step in plan:
                    for table in ("articles", "pages", "events"):
                        assert not step.startswith(f"SCAN {table}") or "INDEX" in step, (sql, plan)
    finally:
        store.close()


def test_a_run_summary_counts_through_indexes(sqlite_url: str) -> None:
    """``Store.totals`` (the end of every ``reprint ingest``) reads no article and no cluster row: each count walks
    an index, so a run into a store of a million articles does not read its clusters table."""
    from sqlalchemy import event

    store = Store(sqlite_url)
    try:
        dedup = Deduplicator(store, Settings())
        source = store.source_id("https://a.example/feed", "url")
        pages = (original_page(), republished_page("https://a.example/0"), unrelated_page())
        for n, body in enumerate(pages):
            url = f"https://{'abc'[n]}.example/{n}"
            dedup.add(store.add_page(Page(url, body), source), extract_article(url, body))
        dedup.flush()
        seen: list[tuple[str, Any]] = []
        event.listen(store.engine, "before_cursor_execute",
                     lambda _c, _cur, sql, params, *_a: seen.append((sql, params)))
        totals = store.totals()
        assert (totals["articles"], totals["clusters"], totals["multi_clusters"]) == (3, 2, 1)
        selects = [(sql, params) for sql, params in seen if sql.lstrip().upper().startswith("SELECT")]
        assert len(selects) >= 3
        with store.engine.connect() as c:
            for sql, params in selects:
                plan = [str(row[-1]) for row in c.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, tuple(params))]
                for step in plan:
                    for table in ("articles", "clusters"):
                        assert not step.startswith((f"SCAN {table}", f"SEARCH {table}")) or "INDEX" in step, \
                            (sql, plan)
    finally:
        store.close()


def test_an_older_sqlite_store_gets_the_indexes_declared_since(sqlite_url: str) -> None:
    from sqlalchemy import text

    Store(sqlite_url).close()
    with Store(sqlite_url).engine.begin() as c:
        c.execute(text("DROP INDEX ix_pages_source_id"))
        c.execute(text("DROP INDEX ix_events_type"))
        c.execute(text("DROP INDEX ix_clusters_size"))
    store = Store(sqlite_url)
    try:
        with store.engine.connect() as c:
            names = {r[0] for r in c.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'"))}
        assert {"ix_pages_source_id", "ix_events_type", "ix_clusters_size"} <= names
    finally:
        store.close()


def extract_article(url: str, body: bytes) -> Article:
    return extract(Page(url, body, headers={"content-type": "text/html"}))[0]


def test_the_candidate_filter_reads_one_kind_of_many_signatures_at_once(store: Store) -> None:
    pages = [original_page(), republished_page("https://site0.example/story"), unrelated_page()]
    ids = []
    for n, body in enumerate(pages):
        article, _ = extract(Page(f"https://site{n}.example/story", body))
        ids.append(store.add_article(store.add_page(Page(article.url, body), None), article, fingerprint(article)))
    sigs = store.signatures_of(ids)
    found, values = store.signature_values([ids[2], 10**9, ids[0]] + list(range(10**6, 10**6 + 1000)), "w3", 128)
    assert found == [ids[0], ids[2]] or found == [ids[2], ids[0]]  # the unknown ids are left out, 1,000 of them
    assert values.shape == (2, 128)
    for row, article_id in enumerate(found):
        assert (values[row] == sigs[article_id].values["w3"]).all()
    assert store.signature_values(ids, "w3", 64)[0] == []  # another width: nothing of it is stored
    assert store.signature_values(ids, "w9", 128)[0] == []
    # the filter itself: the republished copy is close to the original, the unrelated page is not
    original = sigs[ids[0]]
    kept = screen(original, *store.signature_values(ids[1:], "w3", 128))
    assert kept == [ids[1]]
