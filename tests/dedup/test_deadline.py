"""Dedup's own deadline (``dedup_deadline``): a page whose matching runs past it gets ``PageTimeout`` (stage dedup),
its article is kept as a cluster of its own and marked unmatched, the run goes on, and ``reprint reprocess`` matches
it again. Embedded (``reprint ingest``), in the library (an update), and through Celery workers on PostgreSQL. A
cluster decision past it keeps the cluster's previous decision, whole, and reprocess decides it again.

The deadline is set far below what matching one candidate takes, so the page that has a candidate is the one cut
short, and a page with none never checks it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.dedup.deadline import Deadline
from pipeline.dedup.deduplicator import Deduplicator
from pipeline.dedup.policy import DecisionPolicy
from pipeline.errors import PageTimeout
from pipeline.extract.extractor import extract
from pipeline.records import Article, Page
from pipeline.settings import Settings
from pipeline.store import Store
from tests.support.cli import cli
from tests.support.pages import news_page, original_page, republished_page, unrelated_page
from tests.support.warc import write_warc
from tests.support.workers import (
    deployment_env,
    pg_database,
    redis_server,
    run_reprint,
    start_worker,
    workers,
    write_corpus,
)

HTML = "text/html; charset=utf-8"
ORIGINAL = "https://wire.example/news/pier"
COPY = "https://coast.example/news/pier"
UNRELATED = "https://echo.example/news/otters"
TINY = "0.000001"


def test_a_deadline_raises_page_timeout_at_stage_dedup_once_its_seconds_are_spent() -> None:
    now = [100.0]
    deadline = Deadline(2.0, "https://a.example/x", clock=lambda: now[0])
    now[0] = 101.9
    deadline.check()  # within its time: nothing
    now[0] = 102.5
    with pytest.raises(PageTimeout) as raised:
        deadline.check("verifying 3 of 16 candidates")
    err = raised.value
    assert (err.stage, err.kind, err.url) == ("dedup", "PageTimeout", "https://a.example/x")
    assert "2 s deadline (dedup_deadline)" in err.message and "verifying 3 of 16" in err.message


def _cluster_urls(store: Store, url: str) -> set[str]:
    article_id = store.article_by_url(url)[0]
    members = store.members(store.cluster_of([article_id])[article_id])
    return set(store.article_urls(members).values())


@pytest.mark.usefixtures("reprint_env")
def test_embedded_ingest_keeps_a_timed_out_article_unmatched_and_reprocess_matches_it(
        sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    warc = tmp_path / "pier.warc.gz"
    write_warc(warc, [(ORIGINAL, original_page(), HTML), (COPY, republished_page(ORIGINAL), HTML),
                      (UNRELATED, unrelated_page(), HTML)])
    monkeypatch.setenv("REPRINT_DEDUP_DEADLINE", TINY)
    first = cli("ingest", str(warc), "--db", sqlite_url, "--no-progress")
    assert first.exit_code == 1 and "PageTimeout" in first.output, first.output
    store = Store(sqlite_url)
    try:
        (error,) = [e for e in store.errors() if e.level == "error"]
        assert (error.url, error.stage, error.kind) == (COPY, "dedup", "PageTimeout")
        assert "dedup_deadline" in error.message
        # the run went on, and the copy's article is stored alone, unmatched, with its HTML for reprocess
        assert store.counts()["articles"] == 3
        copy_id = store.article_by_url(COPY)[0]
        assert store.unmatched([copy_id]) == {copy_id}
        assert _cluster_urls(store, COPY) == {COPY} and _cluster_urls(store, ORIGINAL) == {ORIGINAL}
        assert not store.edges_from([copy_id, store.article_by_url(ORIGINAL)[0]])
        assert store.page_html(store.stored_page(COPY)[0]) == republished_page(ORIGINAL)

        monkeypatch.delenv("REPRINT_DEDUP_DEADLINE")
        again = cli("reprocess", "--db", sqlite_url, "--no-progress")
        assert again.exit_code == 0, again.output
        assert "matched again" in again.output
        assert _cluster_urls(store, COPY) == {ORIGINAL, COPY} and _cluster_urls(store, UNRELATED) == {UNRELATED}
        assert store.unmatched([copy_id]) == set()
    finally:
        store.close()


def _article(url: str, body: str | bytes) -> Article:
    data = body.encode() if isinstance(body, str) else body
    return extract(Page(url, data, headers={"content-type": HTML}))[0]


def test_an_update_past_the_deadline_keeps_the_new_version_unmatched_and_leaves_the_old_cluster(
        sqlite_url: str) -> None:
    from tests.support.pages import ORIGINAL_PARAGRAPHS

    store = Store(sqlite_url)
    try:
        dedup = Deduplicator(store, Settings())
        original = dedup.add(store.add_page(Page(ORIGINAL, original_page()), None), _article(ORIGINAL, original_page()))
        copy = dedup.add(store.add_page(Page(COPY, republished_page(ORIGINAL)), None),
                         _article(COPY, republished_page(ORIGINAL)))
        assert _cluster_urls(store, COPY) == {ORIGINAL, COPY}

        hurried = Deduplicator(store, Settings(dedup_deadline=float(TINY)))
        newer = news_page("Westmere harbour board approves rebuild of the old stone pier",
                          [*ORIGINAL_PARAGRAPHS, "The board will meet again in August to choose a builder."],
                          site="Coast Wire")
        with pytest.raises(PageTimeout) as raised:
            hurried.update(copy.article_id, _article(COPY, newer))
        assert raised.value.stage == "dedup"
        assert "choose a builder" in store.articles([copy.article_id])[copy.article_id].text  # the new version
        assert store.unmatched([copy.article_id]) == {copy.article_id}
        assert _cluster_urls(store, COPY) == {COPY} and _cluster_urls(store, ORIGINAL) == {ORIGINAL}
        assert not store.edges_from([original.article_id, copy.article_id])

        dedup.update(copy.article_id, _article(COPY, newer))  # with time enough: matched, and back together
        assert _cluster_urls(store, COPY) == {ORIGINAL, COPY}
        assert store.unmatched([copy.article_id]) == set()
    finally:
        store.close()


def test_celery_workers_record_a_dedup_timeout_and_reprocess_matches_the_article(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", 2, copies=1)  # two stories, each with one republished copy
    with redis_server(tmp_path) as server, pg_database() as db_url:
        env = deployment_env(server.url, db_url)
        assert run_reprint(env, "migrate").returncode == 0
        with workers(start_worker(env, tmp_path, "w1", extra_env={"REPRINT_DEDUP_DEADLINE": TINY})) as started:
            started[0].wait_ready()
            run = run_reprint(env, "ingest", "--via", "celery", "--no-progress", str(tmp_path / "corpus"))
        assert run.returncode == 1 and "PageTimeout" in run.stdout + run.stderr, run.stdout + run.stderr
        store = Store(db_url, create=False)
        try:
            errors = [e for e in store.errors() if e.level == "error"]
            # in each story the page matched second had a candidate and was cut short; the first had none
            assert len(errors) == 2 and {(e.stage, e.kind) for e in errors} == {("dedup", "PageTimeout")}
            timed_out = {store.article_by_url(e.url)[0] for e in errors}
            assert store.counts()["articles"] == len(corpus) and store.unmatched(timed_out) == timed_out
            assert all(_cluster_urls(store, e.url) == {e.url} for e in errors)

            again = run_reprint(env, "reprocess", "--no-progress")  # embedded, on the same database, in time
            assert again.returncode == 0, again.stdout + again.stderr
            assert store.unmatched(timed_out) == set()
            assert all(len(_cluster_urls(store, e.url)) == 2 for e in errors)
        finally:
            store.close()


class _PastAtDecision(Deadline):
    """Spent once the decision is under way: after the partition, with the new clusters assigned."""

    def check(self, doing: str = "matching") -> None:
        if doing.startswith("deciding"):
            raise PageTimeout("past the deadline while deciding", stage="dedup")


@pytest.mark.usefixtures("reprint_env")
def test_a_decision_past_the_deadline_keeps_the_previous_one_whole_and_reprocess_decides_it(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(sqlite_url)
    try:
        adder = Deduplicator(store, Settings(), policy=DecisionPolicy.batched())  # relations now, decisions later
        for url, body in ((ORIGINAL, original_page()), (COPY, republished_page(ORIGINAL)),
                          (UNRELATED, unrelated_page())):
            adder.add(store.add_page(Page(url, body, headers={"content-type": HTML}), None), _article(url, body))
        assert store.pending() and _cluster_urls(store, COPY) == {COPY}  # related, not decided yet

        hurried = Deduplicator(store, Settings(), policy=DecisionPolicy.batched())
        monkeypatch.setattr(hurried, "_decision_deadline", lambda: _PastAtDecision(30.0))
        hurried.flush()
        (error,) = [e for e in store.errors() if e.level == "error"]
        assert (error.url, error.stage, error.kind) == (COPY, "dedup", "PageTimeout")
        assert "deciding a cluster of 2 related articles" in error.message
        # nothing of the cut decision stays: the copy was assigned to the original's cluster, and is not
        assert _cluster_urls(store, COPY) == {COPY} and _cluster_urls(store, ORIGINAL) == {ORIGINAL}
        assert not store.pending()  # not retried by every later flush

        again = cli("reprocess", "--db", sqlite_url, "--no-progress")
        assert again.exit_code == 0, again.output
        assert _cluster_urls(store, COPY) == {ORIGINAL, COPY}
    finally:
        store.close()
