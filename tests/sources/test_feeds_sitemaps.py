"""Parsers on small self-made documents: feeds, sitemaps, robots.txt, autodiscovery, URL normal form."""

from __future__ import annotations

import asyncio
import gzip
import time

import pytest

from pipeline.errors import FeedError, SitemapError, SourceError
from pipeline.fetch import robots as robots_module
from pipeline.fetch.robots import RobotsCache, agent_token, parse_robots
from pipeline.sources.feeds import find_feed_links, parse_feed
from pipeline.sources.sitemaps import gunzip_capped, parse_sitemap, root_element
from pipeline.urls import host_key, is_http_url, normalize_url
from tests.support.feeds import ATOM, BILLION_LAUGHS, JSON_FEED, sitemap_index, urlset

BASE = "https://news.example.com/feeds/main"

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Example News</title><link>https://news.example.com/</link>
<item><title>First</title><link>https://news.example.com/2026/11/first</link>
  <pubDate>Mon, 23 Nov 2026 09:00:00 +0100</pubDate></item>
<item><title>Relative</title><link>/2026/11/second</link></item>
<item><title>Guid only</title><guid isPermaLink="true">https://news.example.com/2026/11/third</guid></item>
<item><title>No link at all</title><description>nothing</description></item>
</channel></rss>"""


# ------------------------------------------------------------------------------------------ feeds


def test_rss() -> None:
    feed = parse_feed(RSS, BASE, "application/rss+xml")
    assert feed.kind == "rss20" and feed.title == "Example News"
    assert [e.url for e in feed.entries] == [
        "https://news.example.com/2026/11/first",
        "https://news.example.com/2026/11/second",
        "https://news.example.com/2026/11/third",
    ]
    assert feed.entries[0].title == "First"
    assert feed.entries[0].published == "2026-11-23T08:00:00+00:00"
    assert any("without a usable link" in w for w in feed.warnings)


def test_atom() -> None:
    feed = parse_feed(ATOM, "https://atom.example.org/feed", "application/atom+xml")
    assert feed.kind == "atom10"
    assert [e.url for e in feed.entries] == ["https://atom.example.org/a", "https://atom.example.org/b"]
    assert feed.entries[1].published == "2026-11-22T06:30:00+00:00"


def test_json_feed() -> None:
    feed = parse_feed(JSON_FEED, "https://json.example.net/feed.json", "application/feed+json")
    assert feed.kind == "json" and feed.title == "JSON News"
    assert [e.url for e in feed.entries] == ["https://json.example.net/one", "https://elsewhere.example/two"]
    assert feed.entries[0].published == "2026-11-23T08:00:00Z"
    assert feed.warnings


def test_billion_laughs_feed_is_refused_fast() -> None:
    started = time.monotonic()
    with pytest.raises(FeedError, match="refused"):
        parse_feed(BILLION_LAUGHS, BASE)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"this is not a feed",
        b"<html><body>hello</body></html>",
        b'{"version": "https://jsonfeed.org/version/1", "items": 3}',
        b"{broken json",
    ],
)
def test_not_feeds(body: bytes) -> None:
    with pytest.raises(FeedError):
        parse_feed(body, BASE, "application/json" if body.startswith(b"{") else "")


def test_malformed_rss_is_parsed_leniently_with_a_warning() -> None:
    broken = RSS.replace(b"</channel></rss>", b"<item><title>a & b</title><link>https://news.example.com/4</link>")
    feed = parse_feed(broken, BASE)
    assert "https://news.example.com/2026/11/first" in [e.url for e in feed.entries]
    assert any("malformed" in w for w in feed.warnings)


def test_feedparser_never_reads_a_path_or_url() -> None:
    with pytest.raises(FeedError):
        parse_feed(b"/etc/passwd", BASE)


def test_feed_autodiscovery() -> None:
    page = b"""<html><head><link rel="stylesheet" href="/s.css">
    <link rel="alternate" type="application/rss+xml" title="RSS" href="/rss.xml">
    <LINK REL="Alternate" TYPE="application/atom+xml" HREF="https://other.example/atom">
    <link rel="alternate" type="application/rss+xml" href="/rss.xml">
    <link rel="alternate" hreflang="de" href="/de/"></head><body>
    <link rel="alternate" type="application/rss+xml" href="/late.xml"></body></html>"""
    assert find_feed_links(page, "https://site.example/") == [
        "https://site.example/rss.xml",
        "https://other.example/atom",
    ]
    assert find_feed_links(b"<html><body>nothing</body></html>", "https://site.example/") == []


# --------------------------------------------------------------------------------------- sitemaps


def test_urlset_with_lastmod() -> None:
    sitemap = parse_sitemap(urlset("https://a.example/1", "https://a.example/2"), "https://a.example/sitemap.xml")
    assert sitemap.kind == "urlset"
    assert [(e.url, e.lastmod) for e in sitemap.entries] == [
        ("https://a.example/1", "2026-11-20"),
        ("https://a.example/2", "2026-11-21"),
    ]


def test_news_sitemap() -> None:
    (entry,) = parse_sitemap(urlset("https://a.example/story", news=True), "https://a.example/news.xml").entries
    assert entry.news_title == "Title of story"
    assert entry.news_publication_date == "2026-11-23T08:00:00+00:00"
    assert entry.news_publication == "The Example" and entry.news_language == "en"


def test_sitemap_index_and_gzip() -> None:
    index = parse_sitemap(gzip.compress(sitemap_index("https://a.example/s1.xml.gz")), "https://a.example/i.xml")
    assert index.kind == "index" and index.entries[0].url == "https://a.example/s1.xml.gz"
    assert index.entries[0].lastmod == "2026-11-01"


def test_text_sitemap() -> None:
    sitemap = parse_sitemap(b"https://a.example/1\nhttps://a.example/2\nnot a url\n", "https://a.example/s.txt")
    assert sitemap.kind == "text" and len(sitemap.entries) == 2 and sitemap.warnings


def test_malformed_sitemap_recovers_locs_and_warns() -> None:
    body = urlset("https://a.example/1", "https://a.example/2")[:-20]  # cut off: not well-formed
    sitemap = parse_sitemap(body, "https://a.example/s.xml")
    assert [e.url for e in sitemap.entries] == ["https://a.example/1", "https://a.example/2"]
    assert "malformed" in sitemap.warnings[0]


@pytest.mark.parametrize(
    "body", [b"<urlset><url><loc>", b"<rss></rss>", b"garbage", BILLION_LAUGHS.replace(b"ROOT", b"urlset")]
)
def test_unusable_sitemaps(body: bytes) -> None:
    with pytest.raises(SitemapError):
        parse_sitemap(body, "https://a.example/s.xml")


def test_gzip_bomb_sitemap_stops_at_cap() -> None:
    bomb = gzip.compress(b"\0" * (8 << 20), compresslevel=9)
    with pytest.raises(SitemapError, match="cap"):
        gunzip_capped(bomb, 1 << 20)
    with pytest.raises(SourceError, match="truncated"):
        gunzip_capped(gzip.compress(b"x" * 1000)[:-12], 1 << 20, error=SourceError)
    assert gunzip_capped(gzip.compress(b"a") + gzip.compress(b"b"), 10) == b"ab"


def test_root_element() -> None:
    assert (
        root_element(b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- hi --><!DOCTYPE x [<!ENTITY a "b">]><rdf:RDF>') == "RDF"
    )
    assert root_element(urlset()) == "urlset"
    assert root_element(b"plain") is None


# ------------------------------------------------------------------------------------ robots, urls


def test_robots_parsing() -> None:
    rules = parse_robots(
        b"User-agent: reprint\nDisallow: /private\nCrawl-delay: 3\n\nUser-agent: *\nDisallow: /\n"
        b"Sitemap: https://a.example/sitemap.xml\n",
        ttl=60,
    )
    agent = agent_token("reprint/0.1 (news dedup; +https://github.com/reprint)")
    assert agent == "reprint"
    assert rules.can_fetch("https://a.example/story", agent)
    assert not rules.can_fetch("https://a.example/private/x", agent)
    assert not rules.can_fetch("https://a.example/story", "otherbot")
    assert rules.crawl_delay(agent) == 3.0
    assert rules.sitemaps() == ["https://a.example/sitemap.xml"]


def test_normalize_url() -> None:
    assert normalize_url("HTTPS://News.Example.COM:443/a/./b/../c?utm_source=x&b=2&a=1&fbclid=z#top") == (
        "https://news.example.com/a/c?a=1&b=2"
    )
    assert normalize_url("http://example.com") == "http://example.com/"
    assert normalize_url("http://example.com/p?gclid=1&id=7") == normalize_url("http://EXAMPLE.com/p?id=7")
    assert isinstance(normalize_url(" not a url "), str)  # never raises


def test_url_checks() -> None:
    assert is_http_url("https://a.example/x") and not is_http_url("ftp://a.example/x")
    assert not is_http_url("https://a.example/x y") and not is_http_url("http://:80/") and not is_http_url("")
    assert not is_http_url("http://a.example:99999/")
    assert host_key("HTTPS://A.example/x") == "https://a.example:443"
    assert host_key("http://[::1]:8080/") == "http://[::1]:8080"


def test_feed_quirks() -> None:
    escaped = b'{"version":"https:\\/\\/jsonfeed.org\\/version\\/1","items":[{"url":"https:\\/\\/a.example\\/1"}]}'
    assert [e.url for e in parse_feed(escaped, BASE).entries] == ["https://a.example/1"]
    leading_space = parse_feed(b"\n  " + RSS, BASE)
    assert len(leading_space.entries) == 3 and not any("malformed" in w for w in leading_space.warnings)


def test_sitemap_quirks() -> None:
    bare = b'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap>\nhttps://a.example/s1.xml\n</sitemap></sitemapindex>'
    assert [e.url for e in parse_sitemap(bare, "https://a.example/").entries] == ["https://a.example/s1.xml"]
    bom = parse_sitemap(b"\xef\xbb\xbfhttps://a.example/1\r\nhttps://a.example/2\r\n", "https://a.example/s.txt")
    assert [e.url for e in bom.entries] == ["https://a.example/1", "https://a.example/2"] and not bom.warnings


def test_robots_utf16() -> None:
    text = "User-agent: *\nDisallow: /x\nSitemap: https://a.example/s.xml\n"
    for encoded in (b"\xff\xfe" + text.encode("utf-16-le"), b"\xfe\xff" + text.encode("utf-16-be")):
        rules = parse_robots(encoded, ttl=1)
        assert rules.sitemaps() == ["https://a.example/s.xml"] and not rules.can_fetch("https://a.example/x", "r")


def test_robots_cache_ttl_and_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(robots_module, "MAX_HOSTS", 3)
    calls: list[str] = []

    async def fetch(url: str) -> tuple[int, bytes]:
        calls.append(url)
        return (503, b"") if "down" in url else (200, b"User-agent: *\nDisallow: /x\n")

    async def go() -> None:
        cache = RobotsCache(fetch, ttl=60)
        for i in range(5):
            await cache.rules(f"http://h{i}:80")
        await asyncio.gather(*(cache.rules("http://h4:80") for _ in range(3)))  # cached, one fetch
        await cache.rules("http://h0:80")  # evicted: fetched again
        assert not (await cache.rules("http://down:80")).can_fetch("http://down/a", "r")
        expiring = RobotsCache(fetch, ttl=0)
        await expiring.rules("http://e:80")
        await expiring.rules("http://e:80")

    asyncio.run(go())
    assert len(calls) == 5 + 1 + 1 + 2
    assert calls[0] == "http://h0:80/robots.txt"
