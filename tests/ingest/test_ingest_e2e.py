"""End to end through the CLI: a real HTTP server on 127.0.0.1, local files and WARCs, on SQLite and
PostgreSQL. What a downstream system sees (the export) and what an operator sees (exit code, errors
recorded against their source) are the assertions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.serve.export import EXPORT_KEYS
from pipeline.sources.discover import source_kind
from pipeline.store import Store
from tests.support.cli import cli
from tests.support.http import LoopbackServer, Request, Response
from tests.support.pages import news_page, original_page, republished_page, unrelated_page
from tests.support.warc import write_warc

pytestmark = pytest.mark.usefixtures("reprint_env")

COPY_URI = "https://wire.example/Story?id=42&utm_source=feed&x=%7Efoo"


def export(db_url: str, *extra: str) -> list[dict]:
    result = cli("export", "--db", db_url, *extra)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def by_url(records: list[dict]) -> dict[str, dict]:
    return {r["url"]: r for r in records}


def assert_one_article_and_its_copy(records: list[dict], original: str, copy: str, other: str) -> None:
    got = by_url(records)
    assert set(got) == {original, copy, other}
    assert got[original]["cluster_id"] == got[copy]["cluster_id"]
    assert got[other]["cluster_id"] != got[original]["cluster_id"]
    cluster = [r for r in records if r["cluster_id"] == got[original]["cluster_id"]]
    assert sum(r["canonical"] for r in cluster) == 1
    assert got[other]["canonical"] is True


def test_mixed_sources_http_warc_and_file(http_server: LoopbackServer, tmp_path: Path, db_url: str) -> None:
    """An original over HTTP, its republished copy in a WARC, an unrelated local file: one call."""
    http_server.route("/news/2025/pier", original_page())
    original = http_server.url("/news/2025/pier")
    warc = tmp_path / "copies.warc.gz"
    write_warc(warc, [(COPY_URI, republished_page(original), "text/html; charset=utf-8")])
    other = tmp_path / "otters.html"
    other.write_bytes(unrelated_page())

    result = cli("ingest", original, str(warc), str(other), "--db", db_url, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "articles stored" in result.stdout and "errors" in result.stdout

    records = export(db_url)
    assert len(records) == 3
    assert_one_article_and_its_copy(records, original, COPY_URI, other.resolve().as_uri())


def test_url_list_and_feed(http_server: LoopbackServer, tmp_path: Path, db_url: str) -> None:
    """URLs discovered in a URL list and an RSS feed are fetched by the runner."""
    http_server.route("/news/pier", original_page())
    original = http_server.url("/news/pier")
    copy = http_server.url("/wire/copy?id=7&ref=a%20b")
    http_server.route("/wire/copy?id=7&ref=a%20b", republished_page(original))
    http_server.route("/nature/otters", unrelated_page())
    other = http_server.url("/nature/otters")
    rss = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Echo</title><link>{http_server.url("/")}'
           f"</link><description>d</description><item><title>Otters</title><link>{other}</link></item>"
           "</channel></rss>")
    http_server.route("/feed.xml", rss, content_type="application/rss+xml")
    listing = tmp_path / "urls.txt"
    listing.write_text(f"# watched\n{original}\n\n{copy}\n")
    assert source_kind(str(listing)) == "url_list"

    result = cli("ingest", str(listing), http_server.url("/feed.xml"), "--db", db_url)
    assert result.exit_code == 0, result.output
    assert_one_article_and_its_copy(export(db_url), original, copy, other)


def test_broken_inputs_are_recorded_against_their_source(
    http_server: LoopbackServer, tmp_path: Path, db_url: str
) -> None:
    """Each broken source records a clear error; every good page still comes out; exit code 1."""
    good_body = original_page()
    http_server.route("/good", good_body)
    http_server.route("/empty", b"")
    latin = news_page("Otters return to Ashford canal basin", ["Café owners in Ashford say the otters "
                      "are a délight; the canal trust’s ecologists agree."] * 8, site="Ashford Echo",
                      charset=None).encode("cp1252")
    http_server.route("/unknown-charset", latin, content_type="text/html; charset=x-unknown-foo")
    http_server.route("/undeclared", latin.replace(b"canal basin", b"canal docks"), content_type="text/html")
    # /missing is not routed: the server answers 404

    truncated = tmp_path / "truncated.warc.gz"
    data = write_warc(truncated, [("https://a.example/one", unrelated_page(), "text/html"),
                                  ("https://a.example/two", republished_page("https://x.example/"), "text/html")])
    truncated.write_bytes(data[: len(data) - 300])
    mixed = tmp_path / "mixed.warc"
    write_warc(mixed, [("https://b.example/logo.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png"),
                       ("https://b.example/story?p=1", news_page("Harbour", ["Short but fine. " * 40],
                                                                  site="B").encode(), "text/html")],
               gzip_records=False)
    unreadable = tmp_path / "no-such-dir" / "corpus.warc.gz"

    sources = {
        "good": http_server.url("/good"),
        "empty": http_server.url("/empty"),
        "charset": http_server.url("/unknown-charset"),
        "undeclared": http_server.url("/undeclared"),
        "missing": http_server.url("/missing"),
        "truncated": str(truncated),
        "mixed": str(mixed),
        "unreadable": str(unreadable),
    }
    result = cli("ingest", *sources.values(), "--db", db_url, "--no-progress")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for spec in ("empty", "missing", "truncated", "mixed", "unreadable"):
        assert sources[spec] in result.stdout  # the summary names each failing source

    urls = set(by_url(export(db_url)))
    assert sources["good"] in urls
    assert sources["charset"] in urls  # decoded by detection, with a warning
    assert sources["undeclared"] in urls
    assert "https://a.example/one" in urls  # the records before the truncation are kept
    assert "https://b.example/story?p=1" in urls
    assert sources["empty"] not in urls and sources["missing"] not in urls

    store = Store(db_url)
    try:
        ids = {name: store.source_id(spec, source_kind_or_unknown(spec)) for name, spec in sources.items()}
        problems: dict[str, list[tuple[str, str, str]]] = {}
        for row in store.errors():
            name = next(n for n, i in ids.items() if i == row.source_id)
            problems.setdefault(name, []).append((row.level, row.stage, row.kind))
    finally:
        store.close()
    assert ("error", "extract", "EmptyPage") in problems["empty"]
    assert ("error", "fetch", "HTTPStatusError") in problems["missing"]
    assert any(level == "error" and kind == "WarcError" for level, _, kind in problems["truncated"])
    assert ("error", "extract", "NotHTML") in problems["mixed"]
    assert ("error", "discover", "SourceError") in problems["unreadable"]
    for name in ("charset", "undeclared"):
        assert [p for p in problems[name] if p[0] == "warning" and p[2] == "ExtractWarning"], name
        assert not [p for p in problems[name] if p[0] == "error"], name
    assert "good" not in problems


def source_kind_or_unknown(spec: str) -> str:
    try:
        return source_kind(spec)
    except Exception:
        return "unknown"


def test_ingesting_again_changes_nothing(http_server: LoopbackServer, tmp_path: Path, db_url: str) -> None:
    """Same pages again: no second article, no new cluster; fetched URLs are re-fetched conditionally."""
    body = original_page()

    def with_etag(request: Request) -> Response:
        if request.headers.get("if-none-match") == '"v1"':
            return Response(304, b"", {"ETag": '"v1"'})
        return Response(200, body, {"ETag": '"v1"'})

    http_server.handle("/news/pier", with_etag)
    original = http_server.url("/news/pier")
    listing = tmp_path / "urls.txt"
    listing.write_text(original + "\n")
    warc = tmp_path / "copies.warc.gz"
    write_warc(warc, [(COPY_URI, republished_page(original), "text/html")])
    other = tmp_path / "otters.html"
    other.write_bytes(unrelated_page())
    sources = [str(listing), str(warc), str(other)]

    first = cli("ingest", *sources, "--db", db_url, "--no-progress")
    assert first.exit_code == 0, first.output
    before = export(db_url)
    second = cli("ingest", *sources, "--db", db_url, "--no-progress")
    assert second.exit_code == 0, second.output
    after = export(db_url)

    assert len(after) == len(before) == 3
    assert {r["url"]: r["cluster_id"] for r in after} == {r["url"]: r["cluster_id"] for r in before}
    assert {r["url"]: r["canonical"] for r in after} == {r["url"]: r["canonical"] for r in before}
    assert [r.headers.get("if-none-match") for r in http_server.requests if r.path == "/news/pier"] == [None, '"v1"']
    store = Store(db_url)
    try:
        counts = store.counts()
    finally:
        store.close()
    assert counts["articles"] == 3 and counts["clusters"] == 2 and counts["pages"] == 3


def test_export_contract(http_server: LoopbackServer, tmp_path: Path, db_url: str) -> None:
    """Exactly the contract's keys and types; URLs byte for byte; --canonical-only."""
    odd = "/news/pier?id=1&b=%C3%A9&a=x+y"
    http_server.route(odd, original_page())
    original = http_server.url(odd)
    warc = tmp_path / "copies.warc.gz"
    write_warc(warc, [(COPY_URI, republished_page(original), "text/html")])
    result = cli("ingest", original, str(warc), "--db", db_url, "--no-progress")
    assert result.exit_code == 0, result.output

    records = export(db_url)
    assert {r["url"] for r in records} == {original, COPY_URI}
    for record in records:
        assert tuple(record) == EXPORT_KEYS
        assert isinstance(record["cluster_id"], int)
        assert isinstance(record["canonical"], bool)
        assert isinstance(record["flags"], list) and set(record["flags"]) <= {"spun", "scraped"}
        assert isinstance(record["title"], str) and record["title"]
        assert isinstance(record["text"], str) and "stone pier" in record["text"]
        assert record["published"] is None or isinstance(record["published"], str)
        assert record["site"] is None or isinstance(record["site"], str)
        assert record["canonical_url"] is None or isinstance(record["canonical_url"], str)
        assert isinstance(record["evidence"], dict)
        assert isinstance(record["similarity"], float)
    canonical = export(db_url, "--canonical-only")
    assert len(canonical) == 1 and canonical[0]["canonical"] is True
    assert canonical[0]["url"] in {original, COPY_URI}


def test_cluster_report(http_server: LoopbackServer, tmp_path: Path, db_url: str) -> None:
    """The human report shows the cluster with its canonical and the totals."""
    http_server.route("/news/pier", original_page())
    original = http_server.url("/news/pier")
    warc = tmp_path / "copies.warc.gz"
    write_warc(warc, [(COPY_URI, republished_page(original), "text/html")])
    other = tmp_path / "otters.html"
    other.write_bytes(unrelated_page())
    assert cli("ingest", original, str(warc), str(other), "--db", db_url, "--no-progress").exit_code == 0

    result = cli("clusters", "--db", db_url)
    assert result.exit_code == 0, result.output
    assert "canonical:" in result.stdout
    assert "Westmere harbour board approves rebuild" in result.stdout
    assert "1 with copies, 1 singletons" in result.stdout
