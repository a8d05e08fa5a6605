"""Sitemaps: urlset, sitemap index, gzip, Google News and plain-text sitemaps → entries.

Parsed with defusedxml and DTDs forbidden (a sitemap never needs one), so entity tricks are refused.
A malformed XML sitemap is not thrown away: the ``<loc>`` entries that can still be read are kept
and the fault is reported as a warning, the same way a truncated WARC keeps its good records.

``<lastmod>`` is what lets a re-run skip what has not changed: ``parse_lastmod`` reads it (W3C datetime,
and the common deviations) as the *latest* instant it can stand for, so a date-only value never makes a
page look older than it may be.
"""

from __future__ import annotations

import html
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree

from pipeline.errors import SitemapError, SourceError
from pipeline.urls import is_http_url

GZIP_MAGIC = b"\x1f\x8b"
_LOC = re.compile(rb"<(?:[\w.-]+:)?loc>\s*(.*?)\s*</(?:[\w.-]+:)?loc>", re.S | re.I)
_PROLOG = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>)", re.S | re.I)
_ROOT = re.compile(rb"\s*<(?:[\w.-]+:)?([\w.-]+)")
_YEAR_MONTH = re.compile(r"^(\d{4})(?:-(\d{2}))?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TZ_NO_COLON = re.compile(r"([+-]\d{2})(\d{2})$")


@dataclass(frozen=True, slots=True)
class SitemapEntry:
    """One ``<url>`` (or ``<sitemap>`` of an index) with the metadata a poller uses."""

    url: str
    lastmod: str | None = None
    news_title: str | None = None
    news_publication_date: str | None = None
    news_publication: str | None = None
    news_language: str | None = None


@dataclass(frozen=True, slots=True)
class Sitemap:
    kind: str  # "urlset" | "index" | "text"
    entries: tuple[SitemapEntry, ...]
    warnings: tuple[str, ...] = ()


def parse_lastmod(value: str | None) -> datetime | None:
    """A sitemap ``<lastmod>`` as an aware UTC datetime, or None when missing or unreadable.

    W3C datetime (``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``, ``YYYY-MM-DDThh:mm[:ss[.s]]TZD``) plus what sites
    write instead (a space for ``T``, ``+0000``, no zone: taken as UTC). A value coarser than a time of day
    stands for the whole period, so the result is the period's end (``2024-03-01`` → 2024-03-02T00:00Z):
    a page fetched during that day may still have changed later that day.
    """
    if not value:
        return None
    text = value.strip()
    try:
        if match := _YEAR_MONTH.match(text):
            year, month = int(match.group(1)), int(match.group(2) or 0)
            if month == 0:
                return datetime(year + 1, 1, 1, tzinfo=UTC)
            if month > 12:
                return None
            return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        if _DATE.match(text):
            return datetime.fromisoformat(text).replace(tzinfo=UTC) + timedelta(days=1)
        when = datetime.fromisoformat(_TZ_NO_COLON.sub(r"\1:\2", text.replace(" ", "T", 1)))
    except (ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def gunzip_capped(
    data: bytes, max_bytes: int, *, url: str | None = None, error: type[SourceError] = SitemapError
) -> bytes:
    """Decompress gzip ``data`` (all members) without ever holding more than ``max_bytes + 1`` bytes.

    Raises ``error`` (SitemapError by default) for corrupt data or output over the cap, so a gzip
    bomb stops at the cap.
    """
    out = bytearray()
    pending = data
    try:
        while pending:
            inflater = zlib.decompressobj(31)
            chunk = inflater.decompress(pending, max_bytes + 1 - len(out))
            out += chunk
            while inflater.unconsumed_tail and len(out) <= max_bytes:
                out += inflater.decompress(inflater.unconsumed_tail, max_bytes + 1 - len(out))
            if len(out) > max_bytes:
                raise error(f"gzip content inflates past the {max_bytes}-byte cap", url=url)
            if not inflater.eof:
                raise error("truncated gzip content", url=url)
            pending = inflater.unused_data.lstrip(b"\0")
    except zlib.error as exc:
        raise error(f"corrupt gzip content: {exc}", url=url) from None
    return bytes(out)


def root_element(body: bytes) -> str | None:
    """Local name of the XML root element (``urlset``, ``rss``, ``feed``...), without parsing it all."""
    head = body[:65536].lstrip(b"\xef\xbb\xbf")
    pos = 0
    while True:
        match = _PROLOG.match(head, pos)
        if not match or match.end() == pos:
            break
        pos = match.end()
    root = _ROOT.match(head, pos)
    return root.group(1).decode("ascii", "replace") if root else None


def parse_sitemap(body: bytes, url: str, *, max_bytes: int = 50 * 1024 * 1024) -> Sitemap:
    """Entries of a sitemap (gzip undone here, capped at ``max_bytes``); locations resolved on ``url``.

    Raises SitemapError when nothing usable can be read.
    """
    if body[:2] == GZIP_MAGIC:
        body = gunzip_capped(body, max_bytes, url=url)
    if not body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return _parse_text(body, url)
    try:
        root = defusedxml.ElementTree.fromstring(body, forbid_dtd=True)
    except defusedxml.DefusedXmlException as exc:
        raise SitemapError(f"refused sitemap: {type(exc).__name__} (DTD/entity declarations)", url=url) from None
    except ParseError as exc:
        return _recover(body, url, exc)
    kind = _local(root.tag)
    if kind == "sitemapindex":
        return Sitemap("index", tuple(_entries(root, "sitemap", url)))
    if kind == "urlset":
        return Sitemap("urlset", tuple(_entries(root, "url", url)))
    raise SitemapError(f"not a sitemap: root element <{kind}>", url=url)


def _local(tag: str | object) -> str:
    return str(tag).rsplit("}", 1)[-1].lower()


def _child_text(element: Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            text = (child.text or "").strip()
            return text or None
    return None


def _child(element: Element, name: str) -> Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _entries(root: Element, item_tag: str, base: str) -> list[SitemapEntry]:
    entries: list[SitemapEntry] = []
    for item in root:
        if _local(item.tag) != item_tag:
            continue
        loc = _child_text(item, "loc") or (item.text or "").strip()  # some write the URL bare
        if not loc:
            continue
        absolute = urljoin(base, loc)
        if not is_http_url(absolute):
            continue
        news = _child(item, "news")
        title = published = publication = language = None
        if news is not None:
            title = _child_text(news, "title")
            published = _child_text(news, "publication_date")
            pub = _child(news, "publication")
            if pub is not None:
                publication = _child_text(pub, "name")
                language = _child_text(pub, "language")
        entries.append(SitemapEntry(absolute, _child_text(item, "lastmod"), title, published, publication, language))
    return entries


def _recover(body: bytes, url: str, error: ParseError) -> Sitemap:
    """A malformed sitemap: keep every ``<loc>`` still readable, report the fault."""
    locs = [html.unescape(m.group(1).decode("utf-8", "replace")) for m in _LOC.finditer(body)]
    entries = [SitemapEntry(urljoin(url, loc)) for loc in locs if is_http_url(urljoin(url, loc))]
    if not entries:
        raise SitemapError(f"malformed sitemap XML: {error}", url=url)
    kind = "index" if root_element(body) == "sitemapindex" else "urlset"
    return Sitemap(kind, tuple(entries), (f"malformed sitemap XML ({error}); recovered {len(entries)} <loc>",))


def _parse_text(body: bytes, url: str) -> Sitemap:
    """The plain-text sitemap format: one absolute URL per line."""
    lines = [line.strip() for line in body.decode("utf-8-sig", "replace").splitlines() if line.strip()]
    good = [line for line in lines if is_http_url(line)]
    if not good:
        raise SitemapError("not a sitemap: neither XML nor a list of URLs", url=url)
    warnings = (f"{len(lines) - len(good)} line(s) that are not URLs",) if len(good) < len(lines) else ()
    return Sitemap("text", tuple(SitemapEntry(line) for line in good), warnings)
