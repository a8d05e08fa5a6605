"""Feeds: RSS (0.9x/1.0/2.0), Atom and JSON Feed → entry URLs; and feed autodiscovery in HTML.

feedparser only ever sees bytes reprint fetched itself, wrapped in a BytesIO (given a bare ``bytes``
or ``str`` feedparser would try it as a URL or a file name). XML is first run through defusedxml so a
document declaring entities (billion laughs, external entities) is refused before feedparser's own
parser can expand anything; a merely malformed document still goes to feedparser, which is lenient.
"""

from __future__ import annotations

import calendar
import io
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin
from xml.etree.ElementTree import ParseError

import defusedxml
import defusedxml.ElementTree
import feedparser

from pipeline.errors import FeedError
from pipeline.urls import is_http_url

FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/feed+json",
        "application/json",
        "application/x.atom+xml",
    }
)


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One feed item: the article URL and what the feed says about it."""

    url: str
    title: str | None = None
    published: str | None = None  # ISO 8601, UTC


@dataclass(frozen=True, slots=True)
class Feed:
    kind: str  # feedparser's version ("rss20", "atom10", ...) or "json"
    title: str | None
    entries: tuple[FeedEntry, ...]
    warnings: tuple[str, ...] = ()


def is_json_feed(body: bytes) -> bool:
    """A JSON object whose ``version`` names jsonfeed.org (``"https:\\/\\/jsonfeed.org"`` too)."""
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"{") or b"jsonfeed.org" not in body:
        return False
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and str(doc.get("version", "")).startswith("https://jsonfeed.org/")


def parse_feed(body: bytes, url: str, content_type: str = "") -> Feed:
    """Entries of an RSS / Atom / RDF / JSON feed; relative links resolved against ``url``.

    Raises FeedError for a refused (entity-declaring) or unparseable document, or one with no
    entries that is not recognisably a feed.
    """
    if is_json_feed(body) or "json" in content_type.lower():
        return _parse_json_feed(body, url)
    return _parse_xml_feed(body, url, content_type)


def _parse_json_feed(body: bytes, url: str) -> Feed:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise FeedError(f"malformed JSON Feed: {exc}", url=url) from None
    if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith("https://jsonfeed.org/"):
        raise FeedError("JSON document is not a JSON Feed (no jsonfeed.org version)", url=url)
    items = doc.get("items")
    if not isinstance(items, list):
        raise FeedError("JSON Feed without an items list", url=url)
    entries: list[FeedEntry] = []
    skipped = 0
    for item in items:
        link = item.get("url") or item.get("external_url") if isinstance(item, dict) else None
        if not isinstance(link, str) or not is_http_url(urljoin(url, link.strip())):
            skipped += 1
            continue
        title = item.get("title")
        published = item.get("date_published") or item.get("date_modified")
        entries.append(
            FeedEntry(
                urljoin(url, link.strip()),
                title if isinstance(title, str) else None,
                published if isinstance(published, str) else None,
            )
        )
    warnings = (f"{skipped} item(s) without a usable url",) if skipped else ()
    title = doc.get("title")
    return Feed("json", title if isinstance(title, str) else None, tuple(entries), warnings)


def _parse_xml_feed(body: bytes, url: str, content_type: str) -> Feed:
    warnings: list[str] = []
    body = body.lstrip(b" \t\r\n")  # whitespace before <?xml ...?> is a common, harmless fault
    try:
        defusedxml.ElementTree.fromstring(body)
    except defusedxml.DefusedXmlException as exc:
        raise FeedError(f"refused feed: {type(exc).__name__} (entity/DTD declarations)", url=url) from None
    except ParseError as exc:
        warnings.append(f"malformed XML, parsed leniently: {exc}")
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    parsed = feedparser.parse(io.BytesIO(body), response_headers=headers, sanitize_html=False)
    version = parsed.get("version") or ""
    if not version and not parsed.entries:
        detail = parsed.get("bozo_exception") or "no RSS/Atom root element"
        raise FeedError(f"not a parseable feed: {detail}", url=url)
    entries: list[FeedEntry] = []
    skipped = 0
    for entry in parsed.entries:
        link = _entry_link(entry)
        absolute = urljoin(url, link) if link else ""
        if not is_http_url(absolute):
            skipped += 1
            continue
        entries.append(FeedEntry(absolute, entry.get("title") or None, _iso(entry)))
    if skipped:
        warnings.append(f"{skipped} entr(y/ies) without a usable link")
    title = parsed.feed.get("title") if parsed.get("feed") else None
    return Feed(version or "unknown", title or None, tuple(entries), tuple(warnings))


def _entry_link(entry: Any) -> str | None:
    link = entry.get("link")
    if link:
        return str(link).strip()
    for candidate in entry.get("links", []):
        if candidate.get("rel", "alternate") == "alternate" and candidate.get("href"):
            return str(candidate["href"]).strip()
    guid = entry.get("id")
    if guid and is_http_url(str(guid).strip()) and entry.get("guidislink", True):
        return str(guid).strip()
    return None


def _iso(entry: Any) -> str | None:
    stamp: time.struct_time | None = entry.get("published_parsed") or entry.get("updated_parsed")
    if not stamp:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(stamp), UTC).isoformat()
    except (OverflowError, ValueError, OSError):
        return None


# ----------------------------------------------------------------------------------- autodiscovery


class _FeedLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.done = True
        if tag not in ("link", "a") or self.done and tag == "link":
            return
        values = {name.lower(): (value or "") for name, value in attrs}
        rels = values.get("rel", "").lower().split()
        kind = values.get("type", "").split(";", 1)[0].strip().lower()
        if "alternate" in rels and kind in FEED_TYPES and values.get("href", "").strip():
            self.links.append(values["href"].strip())


def find_feed_links(html: bytes, base_url: str) -> list[str]:
    """Feed URLs an HTML page advertises with ``<link rel="alternate" type="application/rss+xml">``
    (Atom, RDF and JSON Feed types too), absolute, in document order, without duplicates."""
    parser = _FeedLinks()
    try:
        parser.feed(html[: 512 * 1024].decode("utf-8", "replace"))
        parser.close()
    except (AssertionError, ValueError):  # HTMLParser on hostile markup
        pass
    seen: dict[str, None] = {}
    for href in parser.links:
        absolute = urljoin(base_url, href)
        if is_http_url(absolute):
            seen.setdefault(absolute, None)
    return list(seen)
