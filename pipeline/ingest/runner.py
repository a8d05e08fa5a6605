"""The embedded runner: sources → discover → fetch → extract → dedup → store, in one process.

Fetches overlap on the event loop; everything that touches the database or the in-process index runs
on one dedicated thread, in discovery order, so SQLite sees a single writer and the results do not
depend on which fetch happened to finish first. One page's failure is recorded against its source and
the run goes on: nothing a single page does can lose or corrupt the work done for the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from pipeline.dedup.deduplicator import Deduplicator, DedupOutcome
from pipeline.errors import HTTPStatusError, ReprintError, SourceError
from pipeline.extract import extract_isolated
from pipeline.records import Page
from pipeline.settings import Settings
from pipeline.store.store import Store, content_hash

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How many discovered items (fetched or in flight) may wait for processing: bounds memory.
QUEUE_SIZE = 64
#: How many items already at hand go over to the store thread at once.
CONSUME_BATCH = 32
_TAKE = object()  # consume(): nothing carried over, take the next entry from the queue
#: How many error lines the summary keeps for printing; every error is in the database anyway.
MAX_NOTES = 500


@dataclass(frozen=True, slots=True)
class ErrorNote:
    """One recorded error or warning, kept for the printed summary."""

    source: str
    url: str | None
    stage: str
    kind: str
    message: str
    level: str = "error"


@dataclass(slots=True)
class IngestSummary:
    """What one run did; the counts are also stored with the run."""

    run_id: int
    sources: list[str]
    pages_seen: int = 0
    articles: int = 0
    unchanged: int = 0
    changed: int = 0
    joined: int = 0
    clusters: int = 0
    multi_clusters: int = 0
    articles_total: int = 0
    flags: dict[str, int] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    notes: list[ErrorNote] = field(default_factory=list)
    failed_sources: set[str] = field(default_factory=set)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no source had an error (warnings do not count)."""
        return not self.errors

    def counts(self) -> dict[str, Any]:
        """The JSON-able counts stored with the run."""
        return {
            "pages_seen": self.pages_seen,
            "articles": self.articles,
            "unchanged": self.unchanged,
            "changed": self.changed,
            "joined": self.joined,
            "clusters": self.clusters,
            "multi_clusters": self.multi_clusters,
            "articles_total": self.articles_total,
            "flags": dict(self.flags),
            "errors": dict(self.errors),
            "warnings": dict(self.warnings),
            "failed_sources": sorted(self.failed_sources),
            "elapsed": round(self.elapsed, 3),
        }


@dataclass(frozen=True, slots=True)
class _Source:
    spec: str
    source_id: int | None


@dataclass(frozen=True, slots=True)
class _Item:
    """A discovered item once its fetch (if any) is over: a page, or the error that replaced it."""

    source: _Source
    url: str | None
    page: Page | None
    error: BaseException | None
    checkpoint: tuple[str, int] | None = None  # WARC: (key, offset) to commit once this item is handled
    lastmod: datetime | None = None  # sitemap URL: its <lastmod>, recorded once the fetched page is handled


class UnexpectedError(ReprintError):
    """Something outside the known failure modes broke one page; recorded with its original type."""

    stage = "ingest"

    def __init__(self, err: BaseException, *, url: str | None = None, stage: str = "ingest") -> None:
        super().__init__(f"{type(err).__name__}: {err}", url=url)
        self.stage = stage
        self.original = type(err).__name__


def _as_reprint_error(err: BaseException, url: str | None, stage: str) -> ReprintError:
    return err if isinstance(err, ReprintError) else UnexpectedError(err, url=url, stage=stage)


@dataclass(slots=True)
class PageResult:
    """What ingesting one page did: ``stored`` a new article, or left it ``unchanged`` / ``changed``."""

    status: str
    article_id: int | None = None
    cluster_id: int | None = None
    related: int = 0
    warnings: list[tuple[str, str, str]] = field(default_factory=list)  # (stage, kind, message)


PAGE_CHANGED = "content changed since the page was stored; the stored article is kept"


def stored_verdict(page: Page, store: Store) -> PageResult | None:
    """What to do with a page already known: ``unchanged`` (304 or same bytes), ``changed`` (kept, with a
    warning), or None when it must be stored and processed. Raises for an HTTP error status."""
    if page.status == 304:
        return PageResult("unchanged")
    if page.status >= 400:
        raise HTTPStatusError(f"HTTP status {page.status}", url=page.url, status=page.status)
    state = store.stored_page(page.url)
    if state is None or state[2] is None:
        return None
    article_id = state[2]
    if state[1] == content_hash(page.body):
        return PageResult("unchanged", article_id)
    # Replacing a stored article would orphan its cluster relations; keep it and say so.
    return PageResult("changed", article_id, warnings=[("ingest", "PageChanged", PAGE_CHANGED)])


def ingest_page(page: Page, store: Store, dedup: Deduplicator, source_id: int | None) -> PageResult:
    """Store, extract and deduplicate one page, unless it is stored already with the same bytes.

    The one code path for a page, whoever runs it (this runner, a worker). Raises ReprintError
    subclasses for pages that hold no article; warnings are returned for the caller to record.
    """
    known = stored_verdict(page, store)
    if known is not None:
        return known
    outcome: DedupOutcome | None = None
    try:
        article, warning = extract_isolated(page, dedup.settings)
        with store.unit():  # the page, its article and its relations: one commit
            outcome = dedup.add(store.add_page(page, source_id), article)
    except Exception:
        if outcome is not None:  # the commit itself failed
            dedup.forget(outcome.article_id)
        # nothing lost: a page without an article is kept (to re-extract later), the error goes to the caller
        with contextlib.suppress(Exception):
            store.add_page(page, source_id)
        raise
    warnings = [("extract", "ExtractWarning", warning)] if warning else []
    return PageResult("stored", outcome.article_id, outcome.cluster_id, outcome.related, warnings)


#: A bulk ingest decides the clusters of related articles in batches: when this many wait, or when the
#: oldest has waited FLUSH_SECONDS (an article with no relation is its own canonical from the start).
FLUSH_EVERY = 200
FLUSH_SECONDS = 60.0


class _Runner:
    """State of one ingest call: the store thread, the deduplicator, the counters, the progress bar."""

    def __init__(self, store: Store, settings: Settings, progress: Progress | None) -> None:
        self.store = store
        self.settings = settings
        self.progress = progress
        self.task = progress.add_task("starting", total=None, stats="") if progress else None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reprint-store")
        self.summary: IngestSummary | None = None
        self.dedup: Deduplicator | None = None
        self.fetch_slots = asyncio.Semaphore(max(1, settings.fetch_concurrency))
        self.pending_since: float | None = None  # when the oldest undecided related article arrived

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store or dedup call on the single store thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, partial(fn, *args, **kwargs))

    # --- bookkeeping (store thread) ------------------------------------------------------------
    def record(self, source: _Source, err: BaseException, url: str | None, *, level: str = "error",
               stage: str = "ingest") -> None:
        """Store one error or warning against its source and count it in the summary."""
        assert self.summary is not None
        rerr = _as_reprint_error(err, url, stage)
        kind = rerr.original if isinstance(rerr, UnexpectedError) else rerr.kind
        where = rerr.url or url
        self.store.record_error(stage=rerr.stage, kind=kind, message=rerr.message, url=where,
                                source_id=source.source_id, run_id=self.summary.run_id, level=level)
        if level == "error":
            self.summary.errors[kind] += 1
            self.summary.failed_sources.add(source.spec)
            if isinstance(rerr, UnexpectedError):
                log.debug("unexpected failure on %s", where, exc_info=err)
        else:
            self.summary.warnings[kind] += 1
        if len(self.summary.notes) < MAX_NOTES:
            self.summary.notes.append(ErrorNote(source.spec, where, rerr.stage, kind, rerr.message, level))

    def warn(self, source: _Source, url: str, stage: str, kind: str, message: str) -> None:
        """Store a warning that is not an exception (extraction notes, changed pages)."""
        assert self.summary is not None
        self.store.record_error(stage=stage, kind=kind, message=message, url=url, source_id=source.source_id,
                                run_id=self.summary.run_id, level="warning")
        self.summary.warnings[kind] += 1
        if len(self.summary.notes) < MAX_NOTES:
            self.summary.notes.append(ErrorNote(source.spec, url, stage, kind, message, "warning"))

    def process(self, item: _Item) -> None:
        """Handle one item; every failure is recorded here so the next item starts clean.

        Called inside the batch's unit (``process_all``): the item's page, article and relations, or its
        error, commit with the WARC checkpoint that says it is done. A page that fails rolls back to its
        own savepoint (``ingest_page``); only a failing database ends the batch, and the run.
        """
        assert self.summary is not None
        self.handle(item)
        if item.checkpoint is not None:  # handled (stored or recorded): a resumed run starts after it
            self.store.set_warc_checkpoint(*item.checkpoint)
        if item.lastmod is not None and item.page is not None and item.url is not None:
            self.store.set_sitemap_lastmod(item.url, item.lastmod)  # seen at this version: skipped until it moves

    def handle(self, item: _Item) -> None:
        """Count the item, then record its error or ingest its page."""
        assert self.summary is not None
        if item.page is not None or (item.url is not None and not isinstance(item.error, SourceError)):
            self.summary.pages_seen += 1  # a source that cannot be read is not a page
        if item.error is not None:
            self.record(item.source, item.error, item.url, stage="discover")
            return
        if item.page is None:
            return
        try:
            self.process_page(item.source, item.page)
        except Exception as err:  # one page must never stop the run
            self.record(item.source, err, item.page.url, stage="ingest")

    def process_page(self, source: _Source, page: Page) -> None:
        """One page through the shared code path; its outcome goes into the counters."""
        assert self.summary is not None and self.dedup is not None
        result = ingest_page(page, self.store, self.dedup, source.source_id)
        for stage, kind, message in result.warnings:
            self.warn(source, page.url, stage, kind, message)
        if result.status == "stored":
            self.summary.articles += 1
            self.summary.joined += result.related > 0
            waiting = self.dedup.pending
            if not waiting:
                self.pending_since = None
            elif self.pending_since is None:
                self.pending_since = time.monotonic()
            if waiting >= FLUSH_EVERY or (
                self.pending_since is not None and time.monotonic() - self.pending_since >= FLUSH_SECONDS
            ):
                self.dedup.flush()
                self.pending_since = None
        elif result.status == "changed":
            self.summary.changed += 1
        else:
            self.summary.unchanged += 1

    def finish(self) -> None:
        """Decide the clusters still pending, fill in the store-wide totals and record the run."""
        assert self.summary is not None
        if self.dedup is not None:
            self.dedup.flush()
        sizes = self.store.cluster_sizes()
        self.summary.clusters = len(sizes)
        self.summary.multi_clusters = sum(1 for _, n in sizes if n > 1)
        self.summary.articles_total = sum(n for _, n in sizes)
        self.summary.flags = self.store.flag_counts()
        self.store.finish_run(self.summary.run_id, self.summary.counts())

    # --- the event loop side -------------------------------------------------------------------
    def show(self, source: str | None = None) -> None:
        if self.progress is None or self.task is None or self.summary is None:
            return
        s = self.summary
        stats = (f"pages {s.pages_seen} · new {s.articles} · unchanged {s.unchanged} · "
                 f"errors {sum(s.errors.values())}")
        if source is not None:
            self.progress.update(self.task, description=_short(source), stats=stats)
        else:
            self.progress.update(self.task, stats=stats)

    async def fetch(self, source: _Source, url: str, fetcher: Any, lastmod: datetime | None = None) -> _Item:
        """Fetch one URL, conditionally when it is stored with an article already."""
        try:
            etag = last_modified = None
            state = await self.call(self.store.page_state, url)
            if state is not None and await self.call(self.store.article_for_page, state[0]) is not None:
                etag, last_modified = state[2], state[3]
            page = await fetcher.fetch(url, etag=etag, last_modified=last_modified)
            return _Item(source, url, page, None, lastmod=lastmod)
        except Exception as err:
            return _Item(source, url, None, _as_reprint_error(err, url, "fetch"))
        finally:
            self.fetch_slots.release()

    async def discover_source(self, spec: str, fetcher: Any, pending: asyncio.Queue[Awaitable[_Item] | None],
                              discover: Callable[..., Any], source_kind: Callable[[str], str]) -> None:
        """Register a source and queue its items (fetch tasks for bare URLs) in discovery order."""
        loop = asyncio.get_running_loop()

        def ready(item: _Item) -> asyncio.Future[_Item]:
            fut: asyncio.Future[_Item] = loop.create_future()
            fut.set_result(item)
            return fut

        try:
            kind = source_kind(spec)
        except Exception:
            kind = "unknown"
        source = _Source(spec, await self.call(self.store.source_id, spec, kind))
        self.show(spec)
        options: dict[str, Any] = {}
        key = None
        if kind == "warc":  # resumable: continue after the last record a crashed run committed
            from pipeline.sources.discover import warc_plan

            key, scope = warc_plan(spec, self.settings)  # the settings' host / WARC-Date filters
            options["warc_scope"] = scope.at(await self.call(self.store.warc_checkpoint, key))
        try:
            async for item in discover(spec, fetcher, **options):
                mark = (key, item.resume_at) if key is not None and item.resume_at is not None else None
                if item.error is not None:
                    await pending.put(ready(_Item(source, item.url, None, item.error, mark)))
                elif item.page is not None:
                    await pending.put(ready(_Item(source, item.url or item.page.url, item.page, None, mark)))
                elif item.url and item.lastmod is not None and await self.call(
                    self.store.sitemap_unchanged, item.url, item.lastmod
                ):  # the sitemap says it has not changed since it was fetched: counted as unchanged, no request
                    await pending.put(ready(_Item(source, item.url, Page(item.url, b"", status=304), None)))
                elif item.url:
                    await self.fetch_slots.acquire()
                    await pending.put(asyncio.ensure_future(self.fetch(source, item.url, fetcher, item.lastmod)))
        except Exception as err:  # discover should not raise; if it does, the source fails alone
            await pending.put(ready(_Item(source, None, None, _as_reprint_error(err, spec, "discover"))))
        else:
            if key is not None:  # read to the end: the next run of this file starts afresh (re-ingest)
                await pending.put(ready(_Item(source, None, None, None, (key, 0))))

    async def consume(self, pending: asyncio.Queue[Awaitable[_Item] | None]) -> None:
        """Process items on the store thread, in the order they were discovered.

        Items already at hand (WARC records, fetches that are done) go over to the store thread together,
        up to CONSUME_BATCH, as one transaction (``process_all``): one hand-over per item cost more CPU
        than reading the WARC.
        """
        entry: Awaitable[_Item] | None | object = await pending.get()
        while entry is not None:
            batch = [await entry]  # type: ignore[misc]
            entry = _TAKE
            while len(batch) < CONSUME_BATCH:
                try:
                    queued = pending.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if isinstance(queued, asyncio.Future) and queued.done():
                    batch.append(queued.result())
                    continue
                entry = queued  # the end (None), or an item still in flight: after this batch
                break
            await self.call(self.process_all, batch)
            if self.progress is not None and self.task is not None:
                self.progress.advance(self.task, len(batch))
            self.show()
            if entry is _TAKE:
                entry = await pending.get()

    def process_all(self, items: list[_Item]) -> None:
        """Process a batch of items in one transaction (see ``process``): one commit per batch, and a
        crash loses at most the batch, which the WARC checkpoint (committed with it) or the stored
        pages make the next run redo or skip."""
        with self.store.unit():
            for item in items:
                self.process(item)


async def _together(producer: Awaitable[None], consumer: Awaitable[None]) -> None:
    """Run both to the end; if either fails (the database went away), cancel the other and raise."""
    tasks = [asyncio.ensure_future(producer), asyncio.ensure_future(consumer)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            failure = task.exception()
            if failure is not None:
                raise failure
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _short(spec: str, width: int = 60) -> str:
    return spec if len(spec) <= width else "…" + spec[-(width - 1):]


def _progress(enabled: bool) -> Progress | None:
    if not enabled:
        return None
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=None),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )


async def ingest(sources: list[str], store: Store, settings: Settings, *, progress: bool = True) -> IngestSummary:
    """Ingest every source into the store; errors are recorded per source and never stop the run."""
    from pipeline.fetch.client import Fetcher
    from pipeline.sources.discover import (  # the fetch/discover stages load httpx, feedparser, warcio
        discover,
        source_kind,
    )

    started = time.perf_counter()
    bar = _progress(progress)
    runner = _Runner(store, settings, bar)
    # What lives before the run (modules, word tables, parsers) is never garbage: frozen, the collector
    # stops walking it on every full pass, which had cost a thirtieth of the run's CPU.
    gc.freeze()
    try:
        run_id = await runner.call(store.start_run, list(sources))
        runner.summary = IngestSummary(run_id=run_id, sources=list(sources))
        # bulk ingest: relations are stored as pages arrive, clusters are decided in batches
        runner.dedup = await runner.call(Deduplicator, store, settings, defer=True)
        if bar is not None:
            bar.start()
        pending: asyncio.Queue[Awaitable[_Item] | None] = asyncio.Queue(maxsize=QUEUE_SIZE)
        try:
            async with Fetcher(settings) as fetcher:

                async def produce() -> None:
                    for spec in sources:
                        await runner.discover_source(spec, fetcher, pending, discover, source_kind)
                    await pending.put(None)  # (if either side fails, _together cancels the other)

                await _together(produce(), runner.consume(pending))
        finally:
            if bar is not None:
                bar.stop()
        runner.summary.elapsed = time.perf_counter() - started
        await runner.call(runner.finish)
        return runner.summary
    finally:
        runner.executor.shutdown(wait=True)
        gc.unfreeze()


def run_ingest(sources: list[str], store: Store, settings: Settings, *, progress: bool = True) -> IngestSummary:
    """Synchronous entry point for the CLI and scripts."""
    return asyncio.run(ingest(sources, store, settings, progress=progress))
