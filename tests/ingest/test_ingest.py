"""The embedded runner on its own: failures stay with their page, order is discovery order, runs are
recorded, changed pages keep their article."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

import pipeline.dedup.policy
import pipeline.ingest.runner
import pipeline.ingest.steps
import pipeline.sources.discover
from pipeline.ingest.runner import run_ingest
from pipeline.records import Page
from pipeline.settings import Settings
from pipeline.store import ArticleRow, RunRow, Store
from tests.support.http import LoopbackServer, Request, Response
from tests.support.pages import news_page, original_page, unrelated_page

pytestmark = pytest.mark.usefixtures("reprint_env")


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    s = Store(sqlite_url)
    yield s
    s.close()


def pages_dir(tmp_path: Path, n: int = 3) -> Path:
    folder = tmp_path / "pages"
    folder.mkdir()
    topics = ["harbour pier rebuild", "otters in the canal", "library opening hours", "night bus route"]
    for i in range(n):
        words = " ".join(f"{topics[i % len(topics)]} detail{i}x{j}" for j in range(40))
        (folder / f"p{i}.html").write_text(news_page(f"Story {i}", [words], site=f"Site {i}"))
    return folder


def test_an_unexpected_failure_stays_with_its_page(tmp_path: Path, store: Store,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    folder = pages_dir(tmp_path)
    real_extract = pipeline.ingest.steps.extract_isolated

    def flaky(page: Page, settings: Settings):
        if page.url.endswith("p1.html"):
            raise RuntimeError("boom")
        return real_extract(page, settings)

    monkeypatch.setattr(pipeline.ingest.steps, "extract_isolated", flaky)
    summary = run_ingest([str(folder)], store, Settings(), progress=False)
    assert summary.articles == 2 and summary.pages_seen == 3
    assert dict(summary.errors) == {"RuntimeError": 1}
    assert summary.failed_sources == {str(folder)}
    (error,) = store.errors(summary.run_id)
    assert (error.stage, error.kind, error.level) == ("ingest", "RuntimeError", "error")
    assert "boom" in error.message and error.url.endswith("p1.html")
    assert store.counts()["articles"] == 2


def test_a_discover_crash_fails_only_its_source(tmp_path: Path, store: Store,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    good = pages_dir(tmp_path, 2)
    real = pipeline.sources.discover.discover

    async def broken(spec: str, fetcher) -> AsyncIterator:
        if spec == "broken-source.txt":
            raise ValueError("parser exploded")
        async for item in real(spec, fetcher):
            yield item

    monkeypatch.setattr(pipeline.sources.discover, "discover", broken)
    summary = run_ingest(["broken-source.txt", str(good)], store, Settings(), progress=False)
    assert summary.articles == 2
    assert dict(summary.errors) == {"ValueError": 1}
    assert summary.failed_sources == {"broken-source.txt"}


def test_pages_are_processed_in_discovery_order(http_server: LoopbackServer, tmp_path: Path,
                                                store: Store) -> None:
    """Fetches overlap, but the slow first URL still gets the first article id."""
    bodies = {"/slow": original_page(), "/fast": unrelated_page()}

    def answer(request: Request) -> Response:
        if request.path == "/slow":
            time.sleep(0.4)
        return Response(200, bodies[request.path])

    http_server.handle("/slow", answer)
    http_server.handle("/fast", answer)
    listing = tmp_path / "urls.txt"
    listing.write_text(f"{http_server.url('/slow')}\n{http_server.url('/fast')}\n")
    settings = Settings(fetch_allow_networks=["127.0.0.1/32"], fetch_max_retries=0)
    summary = run_ingest([str(listing)], store, settings, progress=False)
    assert summary.ok and summary.articles == 2
    with store.session() as s:
        urls = list(s.scalars(select(ArticleRow.url).order_by(ArticleRow.id)))
    assert urls == [http_server.url("/slow"), http_server.url("/fast")]


def test_the_run_is_recorded_with_its_counts(tmp_path: Path, store: Store) -> None:
    folder = pages_dir(tmp_path, 2)
    summary = run_ingest([str(folder), str(tmp_path / "missing.warc")], store, Settings(), progress=False)
    assert not summary.ok
    with store.session() as s:
        run = s.get(RunRow, summary.run_id)
        assert run is not None and run.finished_at is not None
        assert run.sources == [str(folder), str(tmp_path / "missing.warc")]
        assert run.counts["articles"] == 2 and run.counts["errors"] == {"SourceError": 1}


def test_a_changed_page_updates_its_article_and_keeps_the_old_version(tmp_path: Path, store: Store) -> None:
    page = tmp_path / "story.html"
    page.write_bytes(original_page())
    first = run_ingest([str(page)], store, Settings(), progress=False)
    assert first.articles == 1
    (article_id,) = [row.id for row in store.export_rows()]
    old_text = store.articles([article_id])[article_id].text
    page.write_bytes(original_page().replace(b"four million", b"five million"))
    second = run_ingest([str(page)], store, Settings(), progress=False)
    assert second.ok and second.articles == 0 and second.updated == 1 and not second.warnings
    assert store.counts()["articles"] == 1
    assert "five million" in store.articles([article_id])[article_id].text
    (version,) = store.versions(article_id)
    assert version["version"] == 1 and version["text_length"] == len(old_text) and version["reason"] == "update"
    # the same bytes again: a no-op, no second version
    third = run_ingest([str(page)], store, Settings(), progress=False)
    assert third.unchanged == 1 and third.updated == 0 and len(store.versions(article_id)) == 1


def test_a_database_failure_aborts_cleanly_without_hanging(tmp_path: Path, store: Store,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """When the database itself fails, the run stops with that error (the CLI prints one line)."""
    import signal

    from sqlalchemy.exc import OperationalError

    folder = pages_dir(tmp_path, 4)

    def gone(*_args, **_kwargs):
        raise OperationalError("INSERT", {}, Exception("database is gone"))

    monkeypatch.setattr(pipeline.ingest.runner, "QUEUE_SIZE", 1)  # the producer blocks on a full queue
    monkeypatch.setattr(store, "add_page", gone)
    monkeypatch.setattr(store, "record_error", gone)
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("ingest hung after a database failure"))
    signal.alarm(30)
    try:
        with pytest.raises(OperationalError):
            run_ingest([str(folder)], store, Settings(), progress=False)
    finally:
        signal.alarm(0)


def _copies_dir(tmp_path: Path, stories: int, copies: int) -> Path:
    """``stories`` unrelated stories, each followed by ``copies`` republished copies of it."""
    folder = tmp_path / "copies"
    folder.mkdir()
    topics = ["harbour pier rebuild", "otters in the canal", "library opening hours", "night bus route"]
    for i in range(stories):
        words = " ".join(f"{topics[i % len(topics)]} detail{i}x{j}" for j in range(60))
        for c in range(copies + 1):
            (folder / f"s{i}c{c}.html").write_text(news_page(f"Story {i}", [words], site=f"Site {c}"))
    return folder


@pytest.mark.parametrize(("every", "seconds", "expected"),
                         [(2, 3600.0, [2, 2]), (10_000, 0.0, [1, 1, 1, 1]), (10_000, 3600.0, [])])
def test_related_articles_are_decided_in_batches_by_count_or_age(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch, every: int, seconds: float, expected: list[int]
) -> None:
    """Decisions wait for BATCH_EVERY related articles or BATCH_SECONDS, whichever comes first; the rest
    is decided at the end of the run. Articles without relations never wait."""
    folder = _copies_dir(tmp_path, stories=2, copies=2)  # 4 copies relate to an earlier page
    monkeypatch.setattr(pipeline.dedup.policy, "BATCH_EVERY", every)
    monkeypatch.setattr(pipeline.dedup.policy, "BATCH_SECONDS", seconds)
    mid_run: list[int] = []
    real_flush = pipeline.ingest.runner.Deduplicator.flush

    def counting(self, *args, **kwargs):
        mid_run.append(self.pending)
        return real_flush(self, *args, **kwargs)

    monkeypatch.setattr(pipeline.ingest.runner.Deduplicator, "flush", counting)
    summary = run_ingest([str(folder)], store, Settings(), progress=False)
    assert summary.articles == 6 and summary.multi_clusters == 2
    assert mid_run[:-1] == expected  # how many waited at each decision during the run; the last is the end
    assert store.pending() == set()
