"""discover() end to end: every SOURCE kind, served by a real server on 127.0.0.1 or written to tmp_path."""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.errors import (
    FeedError,
    HTTPStatusError,
    NotHTML,
    SitemapError,
    SourceError,
    WarcError,
)
from pipeline.fetch.client import Fetcher
from pipeline.settings import Settings
from pipeline.sources.discover import SourceItem, discover, source_kind
from tests.support.feeds import ATOM, BILLION_LAUGHS, JSON_FEED, rss_of, sitemap_index, urlset
from tests.support.http import LoopbackServer, Request, Response, loopback_settings
from tests.support.warc import ODD_URI, write_sample_warc

ARTICLE = b"<!doctype html><html><head><title>Story</title></head><body><p>Words.</p></body></html>"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as running:
        yield running


def run(spec: str, settings: Settings | None = None) -> list[SourceItem]:
    async def go() -> list[SourceItem]:
        async with Fetcher(settings or loopback_settings()) as fetcher:
            return [item async for item in discover(spec, fetcher)]

    return asyncio.run(go())


def urls(items: list[SourceItem]) -> list[str]:
    return [item.url for item in items if item.error is None and item.page is None and item.url]


def errors(items: list[SourceItem]) -> list[Exception]:
    return [item.error for item in items if item.error is not None]


# ---------------------------------------------------------------------------------- source_kind


def test_source_kind(tmp_path: Path) -> None:
    (tmp_path / "a.warc.gz").write_bytes(b"")
    (tmp_path / "a.html").write_text("<p>x</p>")
    (tmp_path / "list.txt").write_text("https://a.example/\n")
    (tmp_path / "noext").write_bytes(b"WARC/1.0\r\n")
    (tmp_path / "bin").write_bytes(b"\x00\x01\x02")
    assert source_kind("https://a.example/feed") == "url"
    assert source_kind("HTTP://a.example/") == "url"
    assert source_kind(str(tmp_path / "a.warc.gz")) == "warc"
    assert source_kind(str(tmp_path / "noext")) == "warc"
    assert source_kind(str(tmp_path / "a.html")) == "html"
    assert source_kind((tmp_path / "a.html").as_uri()) == "html"
    assert source_kind(str(tmp_path)) == "html_dir"
    assert source_kind(str(tmp_path / "list.txt")) == "url_list"
    for bad in [str(tmp_path / "missing.warc"), "ftp://a.example/x", str(tmp_path / "bin")]:
        with pytest.raises(SourceError):
            source_kind(bad)


# ------------------------------------------------------------------------------------------ URLs


def test_article_url_yields_the_page(server: LoopbackServer) -> None:
    server.route("/story", ARTICLE)
    (item,) = run(server.url("/story"))
    assert item.source == server.url("/story") and item.url == server.url("/story")
    assert item.page is not None and item.page.body == ARTICLE and item.error is None


def test_404_is_an_error_item(server: LoopbackServer) -> None:
    (item,) = run(server.url("/gone"))
    assert isinstance(item.error, HTTPStatusError) and item.error.status == 404 and item.page is None


def test_rss_feed_yields_entry_urls(server: LoopbackServer) -> None:
    server.route("/rss", rss_of("/a", server.url("/b"), "/a?utm_source=x", "/a"), content_type="application/rss+xml")
    items = run(server.url("/rss"))
    assert urls(items) == [server.url("/a"), server.url("/b")]  # deduplicated by normal form
    assert all(item.source == server.url("/rss") for item in items)


def test_atom_and_json_feeds(server: LoopbackServer) -> None:
    server.route("/atom", ATOM, content_type="application/atom+xml")
    server.route("/feed.json", JSON_FEED, content_type="application/feed+json")
    assert urls(run(server.url("/atom"))) == ["https://atom.example.org/a", "https://atom.example.org/b"]
    items = run(server.url("/feed.json"))
    assert urls(items) == ["https://json.example.net/one", "https://elsewhere.example/two"]
    assert [type(e) for e in errors(items)] == [FeedError]  # the item without a URL


def test_feed_served_as_xml_or_html_is_still_sniffed(server: LoopbackServer) -> None:
    server.route("/feed", rss_of("/x"), content_type="text/html")
    assert urls(run(server.url("/feed"))) == [server.url("/x")]


def test_malformed_and_hostile_feeds(server: LoopbackServer) -> None:
    server.route(
        "/broken", b'<?xml version="1.0"?><rss version="2.0"><channel><item><link>', content_type="application/rss+xml"
    )
    server.route("/bomb", BILLION_LAUGHS.replace(b"ROOT", b"rss"), content_type="application/rss+xml")
    broken = run(server.url("/broken"))
    assert broken and all(isinstance(e, FeedError) for e in errors(broken)) and not urls(broken)
    (bomb,) = run(server.url("/bomb"))
    assert isinstance(bomb.error, FeedError) and "refused" in bomb.error.message


def test_sitemap_index_gzip_and_news(server: LoopbackServer) -> None:
    server.route(
        "/sitemap.xml", sitemap_index(server.url("/s1.xml.gz"), server.url("/news.xml"), server.url("/missing.xml"))
    )
    server.route(
        "/s1.xml.gz", gzip.compress(urlset(server.url("/1"), server.url("/2"))), content_type="application/x-gzip"
    )
    server.route("/news.xml", urlset(server.url("/n1"), server.url("/2"), news=True), content_type="application/xml")
    items = run(server.url("/sitemap.xml"))
    # children newest lastmod first: missing (11-03), news (11-02), s1 (11-01)
    assert urls(items) == [server.url("/n1"), server.url("/2"), server.url("/1")]
    (error,) = errors(items)
    assert isinstance(error, HTTPStatusError) and error.url == server.url("/missing.xml")


def test_sitemap_recursion_is_bounded(server: LoopbackServer) -> None:
    server.route("/loop.xml", sitemap_index(server.url("/loop.xml"), server.url("/deeper.xml")))
    server.route("/deeper.xml", sitemap_index(server.url("/deepest.xml")))
    server.route("/deepest.xml", urlset(server.url("/x")))
    items = run(server.url("/loop.xml"), loopback_settings(discover_max_sitemap_depth=1))
    assert server.hits("/loop.xml") == 1 and server.hits("/deepest.xml") == 0
    assert not urls(items) and any("deeper than 1" in str(e) for e in errors(items))


def test_url_budget(server: LoopbackServer) -> None:
    server.route("/big.xml", urlset(*(server.url(f"/{n}") for n in range(10))))
    items = run(server.url("/big.xml"), loopback_settings(discover_max_urls=3))
    assert len(urls(items)) == 3 and "discover_max_urls" in str(errors(items)[0])


def test_malformed_sitemap_keeps_what_it_can(server: LoopbackServer) -> None:
    server.route("/cut.xml", urlset(server.url("/1"), server.url("/2"))[:-20], content_type="application/xml")
    server.route("/junk.xml", b"<urlset><url><loc>", content_type="application/xml")
    items = run(server.url("/cut.xml"))
    assert urls(items) == [server.url("/1"), server.url("/2")]
    assert [type(e) for e in errors(items)] == [SitemapError]
    (junk,) = run(server.url("/junk.xml"))
    assert isinstance(junk.error, SitemapError)


def test_robots_txt_sitemap_lines(server: LoopbackServer) -> None:
    server.route(
        "/robots.txt", f"User-agent: *\nAllow: /\nSitemap: {server.url('/s.xml')}\n", content_type="text/plain"
    )
    server.route("/s.xml", urlset(server.url("/r1")))
    assert urls(run(server.url("/robots.txt"))) == [server.url("/r1")]


def test_homepage_feed_autodiscovery(server: LoopbackServer) -> None:
    home = (
        b'<html><head><link rel="alternate" type="application/rss+xml" href="/feed.xml"></head><body>Hi</body></html>'
    )
    server.route("/", home)
    server.route("/feed.xml", rss_of("/latest"), content_type="application/rss+xml")
    server.route("/section/", home)  # not a home page: an article page that also links the feed
    assert urls(run(server.url("/"))) == [server.url("/latest")]
    (page,) = run(server.url("/section/"))
    assert page.page is not None


# ------------------------------------------------------------------------------------- local files


def test_url_list(tmp_path: Path) -> None:
    listing = tmp_path / "urls.txt"
    listing.write_text(
        "# morning run\nhttps://a.example/1\n\n  https://a.example/2  \nnot a url\nftp://a.example/3\n"
        "https://a.example/1#dup\n",
        encoding="utf-8",
    )
    items = run(str(listing))
    assert urls(items) == ["https://a.example/1", "https://a.example/2"]
    messages = [str(e) for e in errors(items)]
    assert len(messages) == 2 and "line 5" in messages[0] and "line 6" in messages[1]


def test_html_file_and_directory(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.html").write_bytes(ARTICLE)
    (tmp_path / "sub" / "a.htm").write_bytes(ARTICLE.replace(b"Words", b"Other"))
    (tmp_path / "sub" / "c.html.gz").write_bytes(gzip.compress(ARTICLE))
    (tmp_path / "notes.txt").write_text("ignored")
    (item,) = run(str(tmp_path / "b.html"))
    assert item.page is not None and item.url == (tmp_path / "b.html").resolve().as_uri()
    assert item.page.headers == {"content-type": "text/html"} and item.page.body == ARTICLE
    items = run(str(tmp_path))
    assert [i.url for i in items] == [
        (tmp_path / p).resolve().as_uri() for p in ("b.html", "sub/a.htm", "sub/c.html.gz")
    ]
    assert items[2].page is not None and items[2].page.body == ARTICLE
    empty = tmp_path / "empty"
    empty.mkdir()
    (only,) = run(str(empty))
    assert isinstance(only.error, SourceError)


def test_warc_source(tmp_path: Path) -> None:
    write_sample_warc(tmp_path / "crawl.warc.gz")
    items = run(str(tmp_path / "crawl.warc.gz"))
    pages = [item for item in items if item.page is not None]
    assert [p.url for p in pages] == [ODD_URI, "http://example.com/story/1"]
    assert all(p.source == str(tmp_path / "crawl.warc.gz") for p in pages)
    assert [type(e) for e in errors(items)] == [NotHTML, HTTPStatusError]


def test_truncated_warc_source(tmp_path: Path) -> None:
    data = write_sample_warc(tmp_path / "full.warc", gzip_records=False, pages=4, noise=False)
    (tmp_path / "cut.warc").write_bytes(data[: len(data) * 3 // 4])
    items = run(str(tmp_path / "cut.warc"))
    assert items[0].page is not None and isinstance(items[-1].error, WarcError)


def test_unreadable_sources_are_error_items(tmp_path: Path) -> None:
    for spec in [str(tmp_path / "nope.warc.gz"), str(tmp_path / "nope.txt"), "gopher://x/"]:
        (item,) = run(spec)
        assert isinstance(item.error, SourceError) and item.source == spec


def test_feed_in_place_of_a_sitemap(server: LoopbackServer) -> None:
    server.route("/index.xml", sitemap_index(server.url("/feed.rss")))
    server.route("/feed.rss", rss_of("/from-feed"), content_type="application/rss+xml")
    assert urls(run(server.url("/index.xml"))) == [server.url("/from-feed")]


def test_sitemap_children_fetched_ahead_in_parallel_but_yielded_in_order(server: LoopbackServer) -> None:
    state, lock = {"now": 0, "max": 0}, threading.Lock()

    def slow(path: str) -> Callable[[Request], Response]:
        def answer(_request: Request) -> Response:
            with lock:
                state["now"] += 1
                state["max"] = max(state["max"], state["now"])
            time.sleep(0.15)
            with lock:
                state["now"] -= 1
            return Response(200, urlset(server.url(f"/from{path}")), content_type="application/xml")

        return answer

    children = [f"/c{i}.xml" for i in range(4)]
    for child in children:
        server.handle(child, slow(child))
    server.route("/index.xml", sitemap_index(*(server.url(c) for c in reversed(children))))  # c0 newest
    items = run(server.url("/index.xml"), loopback_settings(fetch_per_host=2))
    assert urls(items) == [server.url(f"/from{c}") for c in children]
    assert state["max"] == 2
