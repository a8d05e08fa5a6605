"""Sitemap ``<lastmod>``: a re-run does not fetch what has not changed since it was last fetched.

Every test serves its sitemap and pages from a LoopbackServer on 127.0.0.1 and counts the server's hits:
a URL skipped by lastmod must not be requested at all (not even conditionally).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.ingest.runner import run_ingest
from pipeline.records import Page
from pipeline.sources.sitemaps import parse_lastmod
from pipeline.store import Store
from tests.support.http import LoopbackServer, loopback_settings
from tests.support.pages import news_page

TOPICS = ["harbour dredging", "school meals", "bridge repairs", "library hours", "bus timetables"]


def story(name: str, n: int) -> bytes:
    topic = TOPICS[n % len(TOPICS)]
    paragraphs = [f"The council of {name} discussed {topic} again, members said on Monday evening. Residents "
                  f"asked about {topic} costs, the delays so far and who in {name} pays for the {topic}."] * 3
    return news_page(f"{name}: {topic}", paragraphs, site=f"{name} Herald").encode()


def sitemap(entries: dict[str, str | None]) -> bytes:
    items = []
    for loc, lastmod in entries.items():
        when = f"<lastmod>{lastmod}</lastmod>" if lastmod else ""
        items.append(f"<url><loc>{loc}</loc>{when}</url>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            + "".join(items) + "</urlset>").encode()


def settings() -> Any:
    return loopback_settings(fetch_robots=False)


def test_parse_lastmod_reads_w3c_datetimes_as_the_end_of_what_they_name() -> None:
    assert parse_lastmod("2024-03-01T10:00:00+02:00") == datetime(2024, 3, 1, 8, tzinfo=UTC)
    assert parse_lastmod("2024-03-01T10:00Z") == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert parse_lastmod("2024-03-01 10:00:00") == datetime(2024, 3, 1, 10, tzinfo=UTC)  # no zone: UTC
    assert parse_lastmod("2024-03-01T10:00:00.5+0100") == datetime(2024, 3, 1, 9, 0, 0, 500000, tzinfo=UTC)
    # a date stands for the whole day, a month for the whole month: a page fetched that day may change later
    assert parse_lastmod("2024-03-01") == datetime(2024, 3, 2, tzinfo=UTC)
    assert parse_lastmod("2024-12") == datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_lastmod("2024") == datetime(2025, 1, 1, tzinfo=UTC)
    for bad in (None, "", "yesterday", "2024-13", "2024-02-30", "2024-03-01T25:00Z"):
        assert parse_lastmod(bad) is None


def test_second_run_skips_urls_whose_lastmod_has_not_moved(http_server: LoopbackServer, db_url: str) -> None:
    names = ["alpha", "beta", "gamma", "delta"]
    for i, name in enumerate(names):
        http_server.route(f"/{name}", story(name, i))
    lastmods: dict[str, str | None] = {
        http_server.url("/alpha"): "2024-05-01T08:00:00Z",
        http_server.url("/beta"): "2024-05-02",
        http_server.url("/gamma"): "2024-05-03T09:30:00+02:00",
        http_server.url("/delta"): None,  # no lastmod: always asked (conditionally)
    }

    def serve_sitemap() -> None:
        http_server.route("/sitemap.xml", sitemap(lastmods), content_type="application/xml")

    def hits() -> dict[str, int]:
        return {name: http_server.hits(f"/{name}") for name in names}

    serve_sitemap()
    store = Store(db_url)
    try:
        first = run_ingest([http_server.url("/sitemap.xml")], store, settings(), progress=False)
        assert first.ok and first.articles == 4
        assert hits() == {"alpha": 1, "beta": 1, "gamma": 1, "delta": 1}

        second = run_ingest([http_server.url("/sitemap.xml")], store, settings(), progress=False)
        assert second.ok and second.articles == 0
        assert second.pages_seen == 4 and second.unchanged == 4  # skipped ones count as unchanged pages
        assert hits() == {"alpha": 1, "beta": 1, "gamma": 1, "delta": 2}  # only the one without lastmod

        # beta is updated (a newer lastmod, and new content); alpha's lastmod is rewritten in another
        # zone but names the same instant; gamma's goes *back* (not newer): neither is fetched.
        lastmods[http_server.url("/beta")] = "2024-06-01T12:00:00Z"
        lastmods[http_server.url("/alpha")] = "2024-05-01T10:00:00+02:00"
        lastmods[http_server.url("/gamma")] = "2024-04-01"
        http_server.route("/beta", story("beta", 1).replace(b"Monday", b"Tuesday"))
        serve_sitemap()
        third = run_ingest([http_server.url("/sitemap.xml")], store, settings(), progress=False)
        assert hits() == {"alpha": 1, "beta": 2, "gamma": 1, "delta": 3}
        assert third.updated == 1 and third.unchanged == 3
        beta = next(row for row in list(store.export_rows()) if row.url == http_server.url("/beta"))
        assert "Tuesday" in beta.text and len(store.versions(beta.id)) == 1

        # and beta's new lastmod is now the one on record
        fourth = run_ingest([http_server.url("/sitemap.xml")], store, settings(), progress=False)
        assert fourth.ok and fourth.unchanged == 4
        assert hits() == {"alpha": 1, "beta": 2, "gamma": 1, "delta": 4}
    finally:
        store.close()


def test_without_a_recorded_lastmod_the_pages_fetch_time_decides(http_server: LoopbackServer, db_url: str) -> None:
    """A page stored by another source (here: its URL given directly) has no sitemap lastmod on record; a
    lastmod older than its fetch is skipped, a newer one fetched."""
    http_server.route("/old", story("old", 0))
    http_server.route("/fresh", story("fresh", 1))
    http_server.route("/sitemap.xml", sitemap({http_server.url("/old"): "2020-01-01T00:00:00Z",
                                               http_server.url("/fresh"): "2999-01-01T00:00:00Z"}),
                      content_type="application/xml")
    store = Store(db_url)
    try:
        direct = run_ingest([http_server.url("/old"), http_server.url("/fresh")], store, settings(), progress=False)
        assert direct.articles == 2
        run_ingest([http_server.url("/sitemap.xml")], store, settings(), progress=False)
        assert (http_server.hits("/old"), http_server.hits("/fresh")) == (1, 2)
        # the fetch recorded fresh's lastmod: the same value does not bring it back
        run_ingest([http_server.url("/sitemap.xml")], store, settings(), progress=False)
        assert (http_server.hits("/old"), http_server.hits("/fresh")) == (1, 2)
    finally:
        store.close()


def test_a_failed_fetch_is_not_recorded_as_seen(http_server: LoopbackServer, sqlite_url: str) -> None:
    http_server.route("/flaky", b"down", status=500)
    http_server.route("/sitemap.xml", sitemap({http_server.url("/flaky"): "2024-05-01T00:00:00Z"}),
                      content_type="application/xml")
    store = Store(sqlite_url)
    try:
        first = run_ingest([http_server.url("/sitemap.xml")], store, loopback_settings(fetch_robots=False,
                                                                                        fetch_max_retries=0),
                           progress=False)
        assert not first.ok
        http_server.route("/flaky", story("flaky", 2))
        second = run_ingest([http_server.url("/sitemap.xml")], store, settings(), progress=False)
        assert second.ok and second.articles == 1
        assert http_server.hits("/flaky") == 2
    finally:
        store.close()


def test_store_compares_lastmods_in_utc(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    try:
        url = "https://example.org/a"
        when = datetime(2024, 5, 1, 8, tzinfo=UTC)
        assert not store.sitemap_unchanged(url, when)  # not stored: always fetched
        store.add_page(Page(url, b"<html></html>", fetched_at=datetime(2024, 4, 1, tzinfo=UTC)), None)
        assert not store.sitemap_unchanged(url, when)  # fetched before that lastmod
        store.set_sitemap_lastmod(url, when)
        assert store.sitemap_unchanged(url, when)
        assert store.sitemap_unchanged(url, datetime.fromisoformat("2024-05-01T10:00:00+02:00"))  # same instant
        assert store.sitemap_unchanged(url, datetime(2024, 5, 1, 8))  # naive: UTC
        assert not store.sitemap_unchanged(url, datetime(2024, 5, 1, 8, 0, 1, tzinfo=UTC))
    finally:
        store.close()


def test_discover_carries_lastmod_only_for_sitemap_urls(http_server: LoopbackServer) -> None:
    import asyncio

    from pipeline.fetch.client import Fetcher
    from pipeline.sources.discover import discover

    http_server.route("/sitemap.xml", sitemap({http_server.url("/a"): "2024-05-01", http_server.url("/b"): None}),
                      content_type="application/xml")
    http_server.route("/feed", b"<rss version='2.0'><channel><title>t</title><item><link>"
                      + http_server.url("/c").encode() + b"</link><pubDate>Wed, 01 May 2024 00:00:00 GMT</pubDate>"
                      b"</item></channel></rss>", content_type="application/rss+xml")

    async def go(spec: str) -> list[tuple[str | None, datetime | None]]:
        async with Fetcher(settings()) as fetcher:
            return [(item.url, item.lastmod) async for item in discover(spec, fetcher)]

    assert asyncio.run(go(http_server.url("/sitemap.xml"))) == [
        (http_server.url("/a"), datetime(2024, 5, 2, tzinfo=UTC)), (http_server.url("/b"), None)]
    assert asyncio.run(go(http_server.url("/feed"))) == [(http_server.url("/c"), None)]


def test_celery_discovery_skips_unchanged_sitemap_urls_and_fetch_records_lastmod(
    request: pytest.FixtureRequest, http_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same rule under Celery: discover_source sends no fetch for a URL seen at its lastmod, and
    fetch_url records the lastmod it was sent with once the page is accepted."""
    from pipeline.settings import get_settings

    monkeypatch.setenv("REPRINT_FETCH_ALLOW_NETWORKS", "127.0.0.1/32")
    monkeypatch.setenv("REPRINT_FETCH_ROBOTS", "false")
    deployed: dict[str, Any] = request.getfixturevalue("deployment")
    get_settings.cache_clear()
    tasks, sent = deployed["tasks"], deployed["sent"]
    seen, new = http_server.url("/seen"), http_server.url("/new")
    http_server.route("/seen", story("seen", 0))
    http_server.route("/new", story("new", 1))
    http_server.route("/sitemap.xml", sitemap({seen: "2024-05-01T00:00:00Z", new: "2024-05-01T00:00:00Z"}),
                      content_type="application/xml")
    proc = tasks.process()
    proc.store.add_page(Page(seen, story("seen", 0), fetched_at=datetime(2024, 5, 2, tzinfo=UTC)), None)
    proc.store.set_sitemap_lastmod(seen, datetime(2024, 5, 1, tzinfo=UTC))
    run_id = tasks.start_run(proc.store, proc.redis, proc.settings, [http_server.url("/sitemap.xml")])
    tasks.discover_source.run(**sent[0][1])
    fetches = [kw for name, kw in sent if name == "reprint.fetch_url"]
    assert fetches == [{"run_id": run_id, "source_id": fetches[0]["source_id"], "url": new,
                        "lastmod": "2024-05-01T00:00:00+00:00"}]
    assert proc.state(run_id).progress().pages_done == 1  # the unchanged one is done already
    tasks.fetch_url.run(**fetches[0])
    assert (http_server.hits("/seen"), http_server.hits("/new")) == (0, 1)
    assert proc.store.sitemap_unchanged(new, datetime(2024, 5, 1, tzinfo=UTC))
