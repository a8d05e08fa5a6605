"""The embedded runner: sources → discover → fetch → extract → dedup → store, in one process.

Fetches overlap on the event loop; everything that touches the database or the in-process index runs
on one dedicated thread, in discovery order, so SQLite sees a single writer and the results do not
depend on which fetch happened to finish first. What happens to each source and page is
``pipeline.ingest.steps`` (the Celery tasks call the same functions); this module only schedules it and
counts. One page's failure is recorded against its source and the run goes on: nothing a single page
does can lose or corrupt the work done for the others.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from pipeline.dedup.deduplicator import Deduplicator
from pipeline.dedup.policy import DecisionPolicy
from pipeline.errors import ReprintError, as_reprint_error
from pipeline.ingest import steps
from pipeline.records import ErrorNote, IngestSummary, SourceItem, SourcePlan, Work
from pipeline.settings import Settings
from pipeline.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How many discovered items (fetched or in flight) may wait for processing: bounds memory.
QUEUE_SIZE = 64
#: How many items already at hand go over to the store thread at once.
CONSUME_BATCH = 32
_TAKE = object()  # consume(): nothing carried over, take the next entry from the queue


@dataclass(frozen=True, slots=True)
class _Item:
    """A discovered item once its fetch (if any) is over: what it asked for, with the page fetched or the
    error that replaced it."""

    plan: SourcePlan
    work: Work
    item: SourceItem | None = None  # the discovered item (its WARC offset), None for a source's end


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

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store or dedup call on the single store thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, partial(fn, *args, **kwargs))

    # --- bookkeeping (store thread) ------------------------------------------------------------
    def note(self, plan: SourcePlan, note: ErrorNote, err: BaseException | None = None) -> None:
        """Count a recorded error or warning in the summary."""
        assert self.summary is not None
        self.summary.note(note, failed_source=plan.spec)
        if err is not None and not isinstance(err, ReprintError):
            log.debug("unexpected failure on %s", note.url, exc_info=err)

    def record(self, plan: SourcePlan, err: BaseException, url: str | None, stage: str) -> None:
        """Store one error against its source and count it."""
        assert self.summary is not None
        self.note(plan, steps.record_error(self.store, err, source=plan.spec, url=url, stage=stage,
                                           source_id=plan.source_id, run_id=self.summary.run_id), err)

    def process(self, item: _Item) -> None:
        """Handle one item; every failure is recorded here so the next item starts clean.

        Called inside the batch's unit (``process_all``): the item's page, article and relations, or its
        error, commit with the WARC checkpoint that says it is done (written once a batch). A page that
        fails rolls back to its own savepoint (``steps.ingest_page``); only a failing database ends the
        batch, and the run.
        """
        assert self.summary is not None
        work = item.work
        if item.item is None:  # the source was read to its end
            return
        if work.is_page:
            self.summary.pages_seen += 1
        if work.action in ("fail", "source_error"):
            assert work.error is not None
            url = work.url if work.action == "fail" else work.error.url or item.plan.spec
            self.record(item.plan, work.error, url, "discover")
        elif work.action == "unchanged":
            self.summary.unchanged += 1
        elif work.page is not None:
            try:
                self.process_page(item.plan, work)
            except Exception as err:  # one page must never stop the run
                self.record(item.plan, err, work.page.url, "ingest")

    def process_page(self, plan: SourcePlan, work: Work) -> None:
        """One page through the shared steps; its outcome goes into the counters."""
        assert self.summary is not None and self.dedup is not None and work.page is not None
        page = work.page
        result = steps.ingest_page(page, self.store, self.dedup, plan.source_id)
        for stage, kind, message in result.warnings:
            self.note(plan, steps.record_warning(self.store, stage, kind, message, source=plan.spec, url=page.url,
                                                 source_id=plan.source_id, run_id=self.summary.run_id))
        self.summary.count(result)
        if work.url is not None:
            steps.page_fetched(self.store, work.url, work.lastmod)

    def finish(self) -> None:
        """Decide the clusters still pending, fill in the store-wide totals and record the run."""
        assert self.summary is not None
        if self.dedup is not None:
            self.dedup.flush()
            self.dedup.save_index()
        self.summary.take_totals(self.store.totals())
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

    async def fetch(self, plan: SourcePlan, item: SourceItem, work: Work, fetcher: Any) -> _Item:
        """Fetch one URL, conditionally when it is stored with an article already."""
        assert work.url is not None
        try:
            etag, last_modified = await self.call(steps.validators, self.store, work.url)
            page = await fetcher.fetch(work.url, etag=etag, last_modified=last_modified)
            return _Item(plan, Work("page", work.url, page=page, lastmod=work.lastmod), item)
        except Exception as err:
            return _Item(plan, Work("fail", work.url, error=as_reprint_error(err, work.url, "fetch")), item)
        finally:
            self.fetch_slots.release()

    async def discover_source(self, spec: str, fetcher: Any, pending: asyncio.Queue[Awaitable[_Item] | None],
                              discover: Callable[..., Any]) -> None:
        """Register a source and queue its items (fetch tasks for bare URLs) in discovery order."""
        loop = asyncio.get_running_loop()

        def ready(item: _Item) -> asyncio.Future[_Item]:
            fut: asyncio.Future[_Item] = loop.create_future()
            fut.set_result(item)
            return fut

        plan = await self.call(steps.open_source, self.store, spec, self.settings)
        self.show(spec)
        try:
            async for item in discover(spec, fetcher, **plan.options):
                work = steps.triage(item)
                if work.action == "fetch" and work.lastmod is not None:
                    work = await self.call(steps.skip_unchanged, self.store, work)
                if work.action == "fetch":
                    await self.fetch_slots.acquire()
                    await pending.put(asyncio.ensure_future(self.fetch(plan, item, work, fetcher)))
                else:
                    await pending.put(ready(_Item(plan, work, item)))
        except Exception as err:  # discover should not raise; if it does, the source fails alone
            error = as_reprint_error(err, spec, "discover")
            await pending.put(ready(_Item(plan, Work("source_error", None, error=error), SourceItem(spec))))
        else:
            await pending.put(ready(_Item(plan, Work("nothing"))))  # read to the end

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
            last: dict[int, _Item] = {}  # per source, the last item that moves its checkpoint
            for item in items:
                self.process(item)
                if item.item is None or item.item.resume_at is not None:
                    last[id(item.plan)] = item
            for item in last.values():  # one checkpoint write a source and batch, not one a page
                if item.item is None:
                    steps.source_done(self.store, item.plan)
                else:
                    steps.item_done(self.store, item.plan, item.item)


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
    from pipeline.fetch.lazy import LazyFetcher  # httpx starts only if a URL is fetched
    from pipeline.sources.discover import discover

    started = time.perf_counter()
    bar = _progress(progress)
    runner = _Runner(store, settings, bar)
    # What lives before the run (modules, word tables, parsers) is never garbage: frozen, the collector
    # stops walking it on every full pass, which had cost a thirtieth of the run's CPU.
    gc.freeze()
    try:
        # bulk ingest: relations are stored as pages arrive, clusters are decided in batches. Made before the run
        # is recorded: a store it refuses (``StaleSignatures``) ends the command with no run left open.
        runner.dedup = await runner.call(Deduplicator, store, settings, policy=DecisionPolicy.batched())
        run_id = await runner.call(store.start_run, list(sources))
        runner.summary = IngestSummary(run_id=run_id, sources=list(sources))
        if bar is not None:
            bar.start()
        pending: asyncio.Queue[Awaitable[_Item] | None] = asyncio.Queue(maxsize=QUEUE_SIZE)
        try:
            async with LazyFetcher(settings) as fetcher:

                async def produce() -> None:
                    for spec in sources:
                        await runner.discover_source(spec, fetcher, pending, discover)
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
