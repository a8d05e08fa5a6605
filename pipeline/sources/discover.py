"""Discover stage: a SOURCE spec → work items (URLs to fetch, Pages at hand) and problems.

SOURCE kinds (``reprint ingest SOURCE...``):

- ``url``: an http(s) URL, fetched once and sniffed by content: a feed (RSS, Atom, RDF, JSON Feed)
  gives its entry URLs; a sitemap (urlset, index — followed recursively, newest first, bounded by
  ``discover_max_sitemap_depth`` and ``discover_max_urls`` — gzip, Google News, plain text) gives its
  URLs; a ``/robots.txt`` URL gives the URLs of its ``Sitemap:`` lines; a site's home page (path ``/``)
  that advertises a feed gives that feed's entries; anything else is the Page itself.
- ``warc``: a ``.warc``/``.warc.gz``/``.arc(.gz)`` file: one Page per HTML response record.
- ``html``: an ``.html``/``.htm`` (or ``.html.gz``) file; ``html_dir``: a directory tree of them.
  ``url`` is the file's ``file://`` URI and the content type ``text/html``.
- ``url_list``: any other text file: one URL per line, ``#`` comments and blank lines ignored.

``discover`` never raises for bad input: each problem is a ``SourceItem(error=...)`` and the rest goes
on. URLs are de-duplicated per source by ``normalize_url``; the yielded URL is the one listed. A URL
listed in a sitemap carries its ``<lastmod>`` (``SourceItem.lastmod``), so the caller can skip fetching
it when the store saw it at that version already (``Store.sitemap_unchanged``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import os
import re
import stat
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pipeline.errors import (
    FeedError,
    FetchError,
    ReprintError,
    ResponseTooLarge,
    SitemapError,
    SourceError,
)
from pipeline.fetch.client import Fetcher, media_type
from pipeline.fetch.robots import parse_robots
from pipeline.records import Page, SourceItem
from pipeline.settings import Settings
from pipeline.sources.feeds import find_feed_links, is_json_feed, parse_feed
from pipeline.sources.sitemaps import GZIP_MAGIC, gunzip_capped, parse_lastmod, parse_sitemap, root_element
from pipeline.sources.warc import WarcScope, iter_warc_offsets
from pipeline.urls import is_http_url, normalize_url

HTML_SUFFIXES = (".html", ".htm", ".xhtml", ".html.gz", ".htm.gz")
WARC_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz")
_HTML_SNIFF = re.compile(rb"<\s*(!doctype\s+html|html|head|body)[\s>]", re.I)
_FEED_ROOTS = frozenset({"rss", "feed", "rdf", "channel"})
_SITEMAP_ROOTS = frozenset({"urlset", "sitemapindex"})
_WARC_BATCH = 64


def source_kind(spec: str) -> str:
    """``url`` | ``warc`` | ``html`` | ``html_dir`` | ``url_list``; SourceError for what cannot be read."""
    if re.match(r"^https?://", spec, re.I):
        return "url"
    if "://" in spec and not spec.lower().startswith("file://"):
        raise SourceError(f"unsupported source scheme in {spec!r} (http, https or a local path)", url=spec)
    path = _local_path(spec)
    try:
        info = path.stat()
    except OSError as exc:
        raise SourceError(f"cannot read source: {exc.strerror or exc}", url=spec) from None
    if stat.S_ISDIR(info.st_mode):
        if not os.access(path, os.R_OK | os.X_OK):
            raise SourceError("cannot read source directory: permission denied", url=spec)
        return "html_dir"
    if not stat.S_ISREG(info.st_mode):
        raise SourceError("source is not a regular file or directory", url=spec)
    name = path.name.lower()
    if name.endswith(WARC_SUFFIXES):
        return "warc"
    if name.endswith(HTML_SUFFIXES):
        return "html"
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise SourceError(f"cannot read source: {exc.strerror or exc}", url=spec) from None
    if head[:2] == GZIP_MAGIC:
        try:
            head = gzip.decompress(head) if len(head) < 4096 else _gzip_head(path)
        except (OSError, EOFError, ValueError):
            raise SourceError("unknown source: unreadable gzip file", url=spec) from None
    if head.startswith((b"WARC/", b"filedesc://")):
        return "warc"
    if _HTML_SNIFF.search(head):
        return "html"
    if b"\0" in head:
        raise SourceError("unknown source: a binary file that is neither WARC nor HTML", url=spec)
    return "url_list"


def _gzip_head(path: Path) -> bytes:
    with gzip.open(path, "rb") as handle:
        return handle.read(4096)


def _local_path(spec: str) -> Path:
    if spec.lower().startswith("file://"):
        return Path(unquote(urlsplit(spec).path))
    return Path(spec).expanduser()


def warc_checkpoint_key(spec: str, scope: WarcScope | None = None) -> str:
    """The store key of a WARC source's checkpoint: the resolved file path plus the filters."""
    path = _local_path(spec)
    with contextlib.suppress(OSError, RuntimeError):
        path = path.resolve()
    return f"{path}|{(scope or WarcScope()).filter_key()}"


def warc_plan(spec: str, settings: Settings) -> tuple[str, WarcScope]:
    """How to read WARC source ``spec``: its checkpoint key and its scope (the host / WARC-Date filters
    of ``settings``, from offset 0; ``scope.at(checkpoint)`` resumes). Used by every runner, so an
    embedded run and a Celery run of the same file and filters share one checkpoint."""
    scope = WarcScope.build(hosts=settings.warc_hosts or None, since=settings.warc_since, until=settings.warc_until)
    return warc_checkpoint_key(spec, scope), scope


async def discover(spec: str, fetcher: Fetcher, *, warc_scope: WarcScope | None = None) -> AsyncIterator[SourceItem]:
    """Everything ``spec`` holds, as SourceItems. Never raises for bad input.

    ``warc_scope`` (WARC sources only): where to resume and which hosts / dates to keep; WARC items
    carry ``resume_at`` so the caller can checkpoint what it has committed.
    """
    try:
        kind = source_kind(spec)
    except SourceError as exc:
        yield SourceItem(spec, error=exc)
        return
    walk = _Walk(spec, fetcher)
    if kind == "url":
        gen = walk.url(spec)
    elif kind == "warc":
        gen = walk.warc(_local_path(spec), warc_scope)
    elif kind == "html":
        gen = walk.html_files([_local_path(spec)])
    elif kind == "html_dir":
        gen = walk.html_dir(_local_path(spec))
    else:
        gen = walk.url_list(_local_path(spec))
    async for item in gen:
        yield item


@dataclass
class _Walk:
    """The state of discovering one source: URLs seen, sitemaps visited, the URL budget."""

    source: str
    fetcher: Fetcher
    seen: set[str] = field(default_factory=set)
    sitemaps: set[str] = field(default_factory=set)
    full: bool = False

    @property
    def max_urls(self) -> int:
        return self.fetcher.settings.discover_max_urls

    @property
    def max_bytes(self) -> int:
        return self.fetcher.settings.fetch_max_bytes

    def error(self, error: ReprintError) -> SourceItem:
        return SourceItem(self.source, url=error.url, error=error)

    def take(self, url: str, lastmod: datetime | None = None) -> SourceItem | None:
        """A work item for ``url`` unless seen already or over the budget (then ``full`` is set)."""
        key = normalize_url(url)
        if key in self.seen:
            return None
        if len(self.seen) >= self.max_urls:
            self.full = True
            return None
        self.seen.add(key)
        return SourceItem(self.source, url=url, lastmod=lastmod)

    def urls(self, urls: Iterable[tuple[str, datetime | None]], what: str) -> Iterator[SourceItem]:
        """Work items for ``(url, lastmod)`` pairs, in order, until the URL budget runs out."""
        for url, lastmod in urls:
            item = self.take(url, lastmod)
            if item is not None:
                yield item
            elif self.full:
                yield self.error(SourceError(f"{what}: stopped at discover_max_urls={self.max_urls}"))
                return

    # ------------------------------------------------------------------- remote

    async def url(self, url: str) -> AsyncIterator[SourceItem]:
        try:
            page = await self.fetcher.fetch(url)
        except FetchError as exc:
            yield self.error(exc)
            return
        async for item in self.page(url, page, depth=0):
            yield item

    async def page(self, url: str, page: Page, depth: int) -> AsyncIterator[SourceItem]:
        """Sniff a fetched document and yield what it stands for."""
        body = page.body
        if body[:2] == GZIP_MAGIC:
            try:
                body = gunzip_capped(body, self.max_bytes, url=url, error=SourceError)
            except SourceError as exc:
                yield self.error(exc)
                return
        kind = sniff(body, page.content_type, page.final_url or url)
        if kind == "feed":
            async for item in self.feed(url, body, page.content_type):
                yield item
        elif kind == "sitemap":
            async for item in self.sitemap(url, body, depth):
                yield item
        elif kind == "robots":
            try:
                listed = [entry for entry in parse_robots(body, ttl=0).sitemaps() if is_http_url(entry)]
            except Exception as exc:  # noqa: BLE001 - a parser bug on hostile input must not stop ingest
                yield self.error(SitemapError(f"robots.txt parser failed: {exc!r}", url=url))
                return
            if not listed:
                yield self.error(SitemapError("robots.txt lists no Sitemap", url=url))
            for sitemap_url in listed:
                async for item in self.fetch_sitemap(sitemap_url, depth):
                    yield item
        elif kind == "html" and depth == 0 and urlsplit(page.final_url or url).path in ("", "/"):
            feeds = find_feed_links(body, page.final_url or url)
            if not feeds:
                yield SourceItem(self.source, url=url, page=page)
                return
            try:
                feed_page = await self.fetcher.fetch(feeds[0])
            except FetchError as exc:
                yield self.error(exc)
                return
            async for item in self.feed(feeds[0], feed_page.body, feed_page.content_type):
                yield item
        else:
            yield SourceItem(self.source, url=url, page=page)

    async def feed(self, url: str, body: bytes, content_type: str) -> AsyncIterator[SourceItem]:
        try:
            feed = parse_feed(body, url, content_type)
        except FeedError as exc:
            yield self.error(exc)
            return
        except Exception as exc:  # noqa: BLE001 - a parser bug on hostile input must not stop ingest
            yield self.error(FeedError(f"feed parser failed: {exc!r}", url=url))
            return
        for warning in feed.warnings:
            yield self.error(FeedError(warning, url=url))
        if not feed.entries:
            yield self.error(FeedError("feed has no entries with links", url=url))
        for item in self.urls(((entry.url, None) for entry in feed.entries), f"feed {url}"):
            yield item

    async def fetch_sitemap(self, url: str, depth: int) -> AsyncIterator[SourceItem]:
        """Fetch one listed sitemap (robots.txt ``Sitemap:`` lines) and walk it."""
        if url in self.sitemaps or self.full:
            return
        self.sitemaps.add(url)
        result = await self._get(url)
        async for item in self.sitemap_page(url, result, depth):
            yield item

    async def _get(self, url: str) -> Page | FetchError:
        try:
            return await self.fetcher.fetch(url)
        except FetchError as exc:
            return exc

    async def sitemap_page(self, url: str, result: Page | FetchError, depth: int) -> AsyncIterator[SourceItem]:
        """A fetched sitemap (or the error fetching it): gzip undone, a feed in its place accepted."""
        if isinstance(result, FetchError):
            yield self.error(result)
            return
        body = result.body
        if body[:2] == GZIP_MAGIC:
            try:
                body = gunzip_capped(body, self.max_bytes, url=url)
            except SitemapError as exc:
                yield self.error(exc)
                return
        # The sitemaps protocol also accepts RSS 2.0 and Atom feeds in place of a sitemap.
        if sniff(body, result.content_type, result.final_url or url) == "feed":
            async for item in self.feed(url, body, result.content_type):
                yield item
            return
        async for item in self.sitemap(url, body, depth):
            yield item

    async def sitemap(self, url: str, body: bytes, depth: int) -> AsyncIterator[SourceItem]:
        self.sitemaps.add(url)
        try:
            sitemap = parse_sitemap(body, url, max_bytes=self.max_bytes)
        except SitemapError as exc:
            yield self.error(exc)
            return
        except Exception as exc:  # noqa: BLE001 - a parser bug on hostile input must not stop ingest
            yield self.error(SitemapError(f"sitemap parser failed: {exc!r}", url=url))
            return
        for warning in sitemap.warnings:
            yield self.error(SitemapError(warning, url=url))
        if sitemap.kind != "index":
            pairs = ((entry.url, parse_lastmod(entry.lastmod)) for entry in sitemap.entries)
            for item in self.urls(pairs, f"sitemap {url}"):
                yield item
            return
        limit = self.fetcher.settings.discover_max_sitemap_depth
        if depth >= limit:
            yield self.error(SitemapError(f"sitemap index nested deeper than {limit}; not followed", url=url))
            return
        # Newest first: with a URL budget, the recent articles are the ones worth having.
        children = sorted(sitemap.entries, key=lambda entry: entry.lastmod or "", reverse=True)
        todo = deque(entry.url for entry in children)
        window = max(1, self.fetcher.settings.fetch_per_host)
        fetching: deque[tuple[str, asyncio.Task[Page | FetchError]]] = deque()
        try:  # fetch a few children ahead (the Fetcher's caps still apply), walk them in order
            while todo or fetching:
                while todo and len(fetching) < window:
                    child = todo.popleft()
                    if child not in self.sitemaps:
                        self.sitemaps.add(child)
                        fetching.append((child, asyncio.ensure_future(self._get(child))))
                if not fetching:
                    continue
                child, task = fetching.popleft()
                async for item in self.sitemap_page(child, await task, depth + 1):
                    yield item
                if self.full:
                    return
        finally:
            for _, task in fetching:
                task.cancel()

    # ------------------------------------------------------------------- local

    async def warc(self, path: Path, scope: WarcScope | None = None) -> AsyncIterator[SourceItem]:
        records = iter_warc_offsets(path, max_bytes=self.max_bytes, scope=scope)
        try:
            while True:  # read in a worker thread, so a large WARC does not stall the event loop
                batch = await asyncio.to_thread(lambda: list(islice(records, _WARC_BATCH)))
                if not batch:
                    return
                for record, offset in batch:
                    if isinstance(record, Page):
                        yield SourceItem(self.source, url=record.url, page=record, resume_at=offset)
                    else:
                        yield dataclasses.replace(self.error(record), resume_at=offset)
        finally:
            with contextlib.suppress(ValueError):  # still running in the worker thread if cancelled
                records.close()

    async def html_dir(self, root: Path) -> AsyncIterator[SourceItem]:
        files: list[Path] = []
        problems: list[OSError] = []
        for folder, dirs, names in os.walk(root, onerror=problems.append):
            dirs.sort()
            files.extend(Path(folder) / name for name in sorted(names) if name.lower().endswith(HTML_SUFFIXES))
        for problem in problems:
            yield self.error(SourceError(f"cannot read directory: {problem.strerror}", url=problem.filename))
        if not files:
            yield self.error(SourceError("directory holds no .html files", url=str(root)))
        async for item in self.html_files(files):
            yield item

    async def html_files(self, paths: list[Path]) -> AsyncIterator[SourceItem]:
        for path in paths:
            try:
                page = read_html_file(path, self.max_bytes)
            except ReprintError as exc:
                yield self.error(exc)
                continue
            yield SourceItem(self.source, url=page.url, page=page)

    async def url_list(self, path: Path) -> AsyncIterator[SourceItem]:
        try:
            handle = open(path, encoding="utf-8-sig", errors="replace")  # noqa: SIM115
        except OSError as exc:
            yield self.error(SourceError(f"cannot read URL list: {exc.strerror or exc}", url=str(path)))
            return
        with handle:
            for number, raw in enumerate(handle, 1):
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                if not is_http_url(line):
                    shown = line if len(line) <= 200 else line[:200] + "..."
                    yield self.error(SourceError(f"line {number}: not an http(s) URL: {shown!r}", url=str(path)))
                    continue
                item = self.take(line)
                if item is not None:
                    yield item
                elif self.full:
                    yield self.error(SourceError(f"stopped at discover_max_urls={self.max_urls}", url=str(path)))
                    return


def sniff(body: bytes, content_type: str, url: str) -> str:
    """What a fetched document is: ``feed`` | ``sitemap`` | ``robots`` | ``html`` | ``other``."""
    if is_json_feed(body):
        return "feed"
    head = body[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        root = (root_element(body) or "").lower()
        if root in _SITEMAP_ROOTS:
            return "sitemap"
        if root in _FEED_ROOTS:
            return "feed"
        if root == "html" or _HTML_SNIFF.search(head):
            return "html"
        return "other"
    path = urlsplit(url).path
    if path == "/robots.txt":
        return "robots"
    kind = media_type(content_type)
    if kind == "text/plain" or path.endswith(".txt"):
        lines = [line.strip() for line in head.decode("utf-8", "replace").splitlines()[:20] if line.strip()]
        # every line a URL (the last may be cut at 4 KiB)
        if lines and is_http_url(lines[0]) and all(is_http_url(line) for line in lines[:-1]):
            return "sitemap"
    return "other"


def read_html_file(path: Path, max_bytes: int) -> Page:
    """A local HTML file as a Page (``file://`` URI, text/html); gzip undone; SourceError if unreadable."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            body = handle.read(max_bytes + 1)
    except OSError as exc:
        raise SourceError(f"cannot read HTML file: {exc.strerror or exc}", url=str(path)) from None
    uri = path.resolve().as_uri()
    if path.name.lower().endswith(".gz") or body[:2] == GZIP_MAGIC:
        if size > max_bytes:
            raise ResponseTooLarge(f"file is over the {max_bytes}-byte cap", url=uri)
        body = gunzip_capped(body, max_bytes, url=uri, error=SourceError)
    elif len(body) > max_bytes:
        raise ResponseTooLarge(f"file is over the {max_bytes}-byte cap", url=uri)
    mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return Page(url=uri, body=body, headers={"content-type": "text/html"}, fetched_at=mtime)
