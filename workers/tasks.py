"""The Celery tasks: thin adapters from messages to the ``pipeline`` stages, one queue per stage.

    scheduled_ingest(spec) ─┐
    discover_source(run, i, spec) → fetch_url(run, source, url) → extract_page(run, source, page, url)
                                  └──────────── (pages at hand: WARC, files) ──┘            ↓
                                                                   dedup_article(run, source, page, url, article)

Messages carry ids and URLs; a page's bytes go to the store (``Store.add_page``, compressed) and the
extract task reads them back. Only the extracted article travels to the dedup task, because storing it
is the dedup stage's own first step.

Every task is idempotent, so a redelivery (acks_late after a crash, a Redis restart, a replayed dead
letter) changes nothing twice: pages are upserted by URL, an extract or dedup task for a page that
already has its article does nothing (``Deduplicator.add`` returns the existing one), the shared index
registers each article id once, and a page's outcome in the run state is written once (first wins).
Errors are recorded in the store per page, like the embedded runner does; infrastructure errors (the
database or Redis went away) are retried instead, because they say nothing about the page.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import random
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

import redis
from billiard.exceptions import SoftTimeLimitExceeded
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from pipeline.dedup.deduplicator import Deduplicator
from pipeline.errors import DeadlineExceeded, FetchError, HTTPStatusError, ReprintError, SourceError
from pipeline.extract import extract_isolated
from pipeline.ingest.runner import PAGE_CHANGED, UnexpectedError, stored_verdict
from pipeline.records import Article, Link, Page
from pipeline.settings import Settings, get_settings
from pipeline.store.store import PageRow, Store, url_key

from .app import app
from .deadletter import GuardedTask, redis_client
from .runs import RunState, finish_if_complete, page_key

log = logging.getLogger(__name__)

#: Failures of the deployment itself (not of a page): the task is retried with backoff, never recorded
#: against the page, because the page may be fine.
INFRA_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    redis.ConnectionError,
    redis.TimeoutError,
)

#: HTTP statuses worth another try later.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


# --- per-process resources ------------------------------------------------------------------------
class _Process:
    """What one worker process keeps between tasks: store, Redis client, deduplicator, fetcher loop.

    Created lazily in the pool process (never inherited across fork: keyed by pid), so every process
    has its own database connections and its own event loop.
    """

    def __init__(self, settings: Settings) -> None:
        self.pid = os.getpid()
        self.settings = settings
        self.store = Store(settings.database_url, create=settings.database_url.startswith("sqlite"))
        self.redis = redis_client(settings)
        self._dedup: Deduplicator | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fetcher: Any = None

    @property
    def dedup(self) -> Deduplicator:
        """The deduplicator over the shared Redis index, so every worker sees every article."""
        if self._dedup is None:
            from pipeline.shared.locks import cluster_lock_for, redis_lock
            from pipeline.shared.redis_index import RedisLSHIndex

            index = RedisLSHIndex(self.redis, self.settings.num_perm, self.settings.redis_prefix)
            if self.store.engine.dialect.name == "sqlite":
                # SQLite's lock is per process; workers are several processes, so lock in Redis instead.
                lock = redis_lock(self.redis, f"{self.settings.redis_prefix}:cluster-lock")
            else:
                lock = cluster_lock_for(self.store, self.redis)
            self._dedup = Deduplicator(self.store, self.settings, index=index, lock=lock)
        return self._dedup

    def run(self, coro_fn: Callable[[Any], Any]) -> Any:
        """Run ``coro_fn(fetcher)`` on this process's loop, with one Fetcher kept open (robots cache, pool)."""
        from pipeline.fetch.client import Fetcher
        from pipeline.fetch.politeness import RedisHostGate

        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        if self._fetcher is None:
            fetcher = Fetcher(self.settings, gate=RedisHostGate.from_settings(self.settings))  # limits across workers
            self._loop.run_until_complete(fetcher.__aenter__())
            self._fetcher = fetcher
        return self._loop.run_until_complete(coro_fn(self._fetcher))

    def state(self, run_id: int) -> RunState:
        """The Redis state of one run, on this process's client."""
        return RunState(self.redis, self.settings.redis_prefix, run_id)


_process: _Process | None = None


def process() -> _Process:
    """This process's resources (created on first use after a fork)."""
    global _process
    if _process is None or _process.pid != os.getpid():
        _process = _Process(get_settings())
    return _process


# --- small adapters -------------------------------------------------------------------------------
def article_to_json(article: Article) -> dict[str, Any]:
    """The Article as a JSON-able dict (the only payload that travels between tasks)."""
    return dataclasses.asdict(article)


def article_from_json(data: dict[str, Any]) -> Article:
    """The Article back from ``article_to_json`` output (tuples and Links restored)."""
    fields = dict(data)
    fields["paragraphs"] = tuple(fields.get("paragraphs") or ())
    fields["links"] = tuple(Link(**link) if isinstance(link, dict) else Link(*link) for link in fields.get("links")
                            or ())
    fields["attribution"] = tuple(fields.get("attribution") or ())
    fields["attribution_urls"] = tuple(fields.get("attribution_urls") or ())
    return Article(**fields)


def load_page(store: Store, page_id: int) -> Page | None:
    """The stored page (bytes decompressed, headers as fetched), or None if it is gone."""
    with store.session() as s:
        row = s.execute(select(PageRow.url, PageRow.status, PageRow.headers, PageRow.fetched_at)
                        .where(PageRow.id == page_id)).first()
    if row is None:
        return None
    return Page(row.url, store.page_html(page_id), status=row.status, headers=dict(row.headers or {}),
                fetched_at=row.fetched_at)


def is_transient(err: BaseException) -> bool:
    """Worth retrying later: connection failures, timeouts, 408/425/429 and 5xx. Never other 4xx,
    robots refusals, blocked addresses, size caps or unsupported types (a retry would answer the same)."""
    if isinstance(err, HTTPStatusError):
        return err.status in TRANSIENT_STATUSES or err.status >= 500
    return type(err) is FetchError or isinstance(err, DeadlineExceeded)


def retry_delay(task: Any, err: BaseException, settings: Settings) -> float:
    """The server's Retry-After if the error carries one (capped), else exponential backoff with full jitter."""
    after = getattr(err, "retry_after", None)
    if after is not None:
        return min(float(after), settings.fetch_max_retry_after)
    ceiling = min(settings.task_retry_backoff * 2 ** task.request.retries, settings.task_retry_backoff_max)
    return random.uniform(0, ceiling)  # full jitter: retries of many pages of one host do not arrive together


def _error_kind(err: BaseException, stage: str, url: str | None) -> ReprintError:
    return err if isinstance(err, ReprintError) else UnexpectedError(err, url=url, stage=stage)


class PageTask(GuardedTask):
    """A task about one page of one run: failures end the page with a recorded error, exactly once."""

    #: The pipeline stage a failure of this task is recorded under.
    stage = "worker"

    #: Infrastructure failures are retried with backoff (the deployment, not the page, is at fault).
    autoretry_for = INFRA_ERRORS
    retry_backoff = True
    retry_backoff_max = int(get_settings().task_retry_backoff_max)
    retry_jitter = True
    max_retries = None  # the deployment will come back; the poison guard handles what never finishes

    def fail_page(self, run_id: int, source_id: int | None, url: str | None, err: BaseException,
                  stage: str) -> None:
        """Record the page's error (once) and close the page in the run."""
        proc = process()
        state = proc.state(run_id)
        key = page_key(source_id, url or "")
        if state.is_done(key):
            return
        rerr = _error_kind(err, stage, url)
        kind = rerr.original if isinstance(rerr, UnexpectedError) else rerr.kind
        proc.store.record_error(stage=rerr.stage, kind=kind, message=rerr.message, url=rerr.url or url,
                                source_id=source_id, run_id=run_id)
        state.mark_done(key, "error", kind=kind)
        finish_if_complete(proc.store, state)

    def finish_page(self, run_id: int, source_id: int | None, url: str, outcome: str, **extra: Any) -> None:
        """Give the page its outcome and finish the run if it was the last one."""
        proc = process()
        state = proc.state(run_id)
        state.mark_done(page_key(source_id, url), outcome, **extra)
        finish_if_complete(proc.store, state)

    def close_work(self, kwargs: dict[str, Any], err: BaseException) -> None:
        """End what a task stood for when the task itself cannot: its page fails, or its source ends.

        Without this a dead-lettered or crashed task would leave its run waiting forever.
        """
        if "run_id" not in kwargs:
            return
        if "url" in kwargs:
            self.fail_page(kwargs["run_id"], kwargs.get("source_id"), kwargs["url"], err, self.stage)
        elif "index" in kwargs and "spec" in kwargs:
            proc = process()
            state = proc.state(kwargs["run_id"])
            if state.once(f"source-failed:{kwargs['index']}"):
                rerr = _error_kind(err, "discover", kwargs["spec"])
                kind = rerr.original if isinstance(rerr, UnexpectedError) else rerr.kind
                proc.store.record_error(stage="discover", kind=kind, message=rerr.message, url=kwargs["spec"],
                                        run_id=kwargs["run_id"])
            state.source_finished(kwargs["index"])
            finish_if_complete(proc.store, state)

    def on_dead_letter(self, entry: dict[str, Any]) -> None:
        err = UnexpectedError(RuntimeError(f"dead-lettered after {entry['deliveries']} deliveries: "
                                           f"{entry['last_error']}"), stage="worker")
        err.original = "DeadLettered"
        self.close_work(entry.get("kwargs") or {}, err)

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """An exception no handler took (a hard time limit, reported in the worker's main process, or a
        bug in an adapter) ends the task's page or source like any error, so its run can finish."""
        try:
            self.close_work(dict(kwargs or {}), exc)
        except Exception:
            log.exception("could not record the failure of task %s", task_id)


# --- the tasks ------------------------------------------------------------------------------------
def start_run(store: Store, client: redis.Redis, settings: Settings, sources: list[str], *,
              lock_key: str | None = None, lock_token: str | None = None) -> int:
    """Open a run in the store and in Redis, and enqueue discovery of every source; returns the run id.

    The run state exists before the first task is sent, so no task can finish a run it does not know.
    """
    run_id = store.start_run(list(sources))
    RunState(client, settings.redis_prefix, run_id).create(list(sources), lock_key=lock_key, lock_token=lock_token)
    for index, spec in enumerate(sources):
        discover_source.apply_async(kwargs={"run_id": run_id, "index": index, "spec": spec})
    return run_id


@app.task(name="reprint.scheduled_ingest", base=GuardedTask)
def scheduled_ingest(spec: str, name: str | None = None) -> int | None:
    """Beat's entry point: start a run of one source unless its previous run is still going."""
    proc = process()
    settings = proc.settings
    lock_key = f"{settings.redis_prefix}:source-lock:{url_key(spec)}"
    token = secrets.token_hex(8)
    # NX: only if free. The TTL frees a source whose run can never finish (lost messages), eventually.
    if not proc.redis.set(lock_key, token, nx=True, ex=int(settings.source_lock_ttl)):
        log.info("source %s (%s) is still being ingested; not enqueued again", name or spec, spec)
        return None
    try:
        return start_run(proc.store, proc.redis, settings, [spec], lock_key=lock_key, lock_token=token)
    except BaseException:
        proc.redis.delete(lock_key)
        raise


@app.task(name="reprint.discover_source", base=PageTask, stage="discover")
def discover_source(run_id: int, index: int, spec: str) -> int:
    """Discover one source: pages at hand are stored and sent to extract, URLs are sent to fetch.

    A WARC source is read from its checkpoint in the store (the one the embedded runner keeps too,
    same key: file plus the REPRINT_WARC_* filters), which advances after each record has been handed
    on. So a discovery that dies mid-file (a killed worker: the message comes back; a dead-lettered or
    timed-out task: the next run) continues from the last record committed instead of reading the file
    again from the start. Reading to the end resets it, so the next run reads the file afresh.
    A sitemap URL whose ``<lastmod>`` has not moved since it was fetched is not fetched again.
    """
    from pipeline.sources.discover import discover, source_kind, warc_plan

    from .deadletter import run_test_hook

    proc = process()
    store, state = proc.store, proc.state(run_id)
    redelivered = getattr(discover_source.request, "delivery_count", 1) > 1
    try:
        kind = source_kind(spec)
    except Exception:
        kind = "unknown"
    source_id = store.source_id(spec, kind)
    state.set_source_id(spec, source_id)
    options: dict[str, Any] = {}
    checkpoint: str | None = None
    if kind == "warc":
        checkpoint, scope = warc_plan(spec, proc.settings)
        start = store.warc_checkpoint(checkpoint)
        if start:
            log.info("resuming WARC %s at offset %d (records before it were committed)", spec, start)
        options["warc_scope"] = scope.at(start)

    def handle(item: Any) -> None:
        url = item.url or (item.page.url if item.page is not None else None)
        if item.error is not None:
            if url is not None and not isinstance(item.error, SourceError):
                state.discovered(page_key(source_id, url))
                discover_source.fail_page(run_id, source_id, url, item.error, "discover")
            elif state.once(f"source-error:{index}:{item.error}"):
                err = _error_kind(item.error, "discover", spec)
                store.record_error(stage=err.stage, kind=err.kind, message=err.message, url=err.url or spec,
                                   source_id=source_id, run_id=run_id)
            return
        if url is None:
            return
        key = page_key(source_id, url)
        if not state.discovered(key) and (not redelivered or state.is_done(key)):
            return  # already sent on by an earlier delivery of this task
        if item.page is not None:
            try:
                accept_page(run_id, source_id, item.page)
            except INFRA_ERRORS:
                raise
            except Exception as err:  # one page must never stop its source
                discover_source.fail_page(run_id, source_id, url, err, "ingest")
        elif item.lastmod is not None and store.sitemap_unchanged(url, item.lastmod):
            state.mark_done(key, "unchanged")  # the sitemap says it has not changed since it was fetched
            finish_if_complete(store, state)
        else:
            kwargs: dict[str, Any] = {"run_id": run_id, "source_id": source_id, "url": url}
            if item.lastmod is not None:
                kwargs["lastmod"] = item.lastmod.isoformat()
            fetch_url.apply_async(kwargs=kwargs)

    async def walk(fetcher: Any) -> None:
        async for item in discover(spec, fetcher, **options):
            if checkpoint is not None:
                run_test_hook("reprint.discover_source:record", discover_source.request.id or "", (),
                              {"spec": spec, "url": item.url})
            handle(item)
            if checkpoint is not None and item.resume_at is not None:
                store.set_warc_checkpoint(checkpoint, item.resume_at)  # handed on: never read again

    try:
        proc.run(walk)
        if checkpoint is not None:  # read to the end: the next run of this file starts afresh
            store.set_warc_checkpoint(checkpoint, 0)
    except INFRA_ERRORS:
        raise
    except Exception as err:  # discover should not raise; if it does, the source fails alone
        if state.once(f"source-error:{index}:{err}"):
            rerr = _error_kind(err, "discover", spec)
            store.record_error(stage=rerr.stage, kind=rerr.kind if not isinstance(rerr, UnexpectedError)
                               else rerr.original, message=rerr.message, url=spec, source_id=source_id,
                               run_id=run_id)
    state.source_finished(index)
    finish_if_complete(store, state)
    return source_id


def accept_page(run_id: int, source_id: int | None, page: Page) -> None:
    """A page in hand (fetched, or read from a WARC or file): store it and send it to extract.

    As in the embedded runner, a URL whose article is stored already is not replaced: same bytes count
    as unchanged, other bytes as changed (with a warning), and the stored article is kept.
    """
    proc = process()
    store, state = proc.store, proc.state(run_id)
    key = page_key(source_id, page.url)
    known = stored_verdict(page, store)
    if known is not None:
        if known.status == "unchanged":
            state.mark_done(key, "unchanged")
        elif state.once(f"changed:{key}"):
            store.record_error(stage="ingest", kind="PageChanged", level="warning", url=page.url,
                               source_id=source_id, run_id=run_id, message=PAGE_CHANGED)
            state.mark_done(key, "changed")
        finish_if_complete(store, state)
        return
    try:
        page_id = store.add_page(page, source_id)
    except IntegrityError:  # the same URL stored at the same instant by another task: now it is an update
        page_id = store.add_page(page, source_id)
    extract_page.apply_async(kwargs={"run_id": run_id, "source_id": source_id, "page_id": page_id,
                                     "url": page.url})


@app.task(name="reprint.fetch_url", base=PageTask, bind=True, stage="fetch")
def fetch_url(self: PageTask, run_id: int, source_id: int | None, url: str, lastmod: str | None = None) -> None:
    """Fetch one URL (conditionally if its article is stored); transient failures retry with backoff.

    ``lastmod``: the sitemap's ``<lastmod>`` of the URL (ISO), recorded once the page is accepted, so
    the next run skips the URL until the sitemap shows a newer one.
    """
    proc = process()
    etag = last_modified = None
    stored = proc.store.page_state(url)
    if stored is not None and proc.store.article_for_page(stored[0]) is not None:
        etag, last_modified = stored[2], stored[3]
    try:
        page = proc.run(lambda fetcher: fetcher.fetch(url, etag=etag, last_modified=last_modified))
        accept_page(run_id, source_id, page)
        if lastmod is not None:
            proc.store.set_sitemap_lastmod(url, datetime.fromisoformat(lastmod))
    except INFRA_ERRORS:
        raise
    except FetchError as err:
        if is_transient(err) and self.request.retries < proc.settings.task_max_retries:
            raise self.retry(exc=err, countdown=retry_delay(self, err, proc.settings),
                             max_retries=proc.settings.task_max_retries) from None
        self.fail_page(run_id, source_id, url, err, "fetch")
    except (Exception, SoftTimeLimitExceeded) as err:
        self.fail_page(run_id, source_id, url, err, "fetch")


@app.task(name="reprint.extract_page", base=PageTask, bind=True, stage="extract")
def extract_page(self: PageTask, run_id: int, source_id: int | None, page_id: int, url: str) -> None:
    """Extract the stored page's article and hand it to the dedup queue."""
    proc = process()
    if proc.store.article_for_page(page_id) is not None:
        return  # a redelivery after the dedup task already stored it
    try:
        page = load_page(proc.store, page_id)
        if page is None:
            raise UnexpectedError(LookupError(f"page {page_id} is not in the store"), url=url, stage="extract")
        article, warning = extract_isolated(page, proc.settings)
    except INFRA_ERRORS:
        raise
    except (Exception, SoftTimeLimitExceeded) as err:
        self.fail_page(run_id, source_id, url, err, "extract")
        return
    dedup_article.apply_async(kwargs={"run_id": run_id, "source_id": source_id, "page_id": page_id, "url": url,
                                      "article": article_to_json(article), "warning": warning})


@app.task(name="reprint.dedup_article", base=PageTask, bind=True, stage="dedup")
def dedup_article(self: PageTask, run_id: int, source_id: int | None, page_id: int, url: str,
                  article: dict[str, Any], warning: str | None = None) -> int | None:
    """Fingerprint, match, verify, cluster and canonicalize one article (``Deduplicator.add``)."""
    proc = process()
    state = proc.state(run_id)
    key = page_key(source_id, url)
    try:
        try:
            outcome = proc.dedup.add(page_id, article_from_json(article))
        except IntegrityError:
            # Two deliveries of this page raced and the other stored the article first: it is done.
            existing = proc.store.article_for_page(page_id)
            if existing is None:
                raise
            outcome = None
    except INFRA_ERRORS:
        raise
    except (Exception, SoftTimeLimitExceeded) as err:
        self.fail_page(run_id, source_id, url, err, "dedup")
        return None
    if warning and state.once(f"warning:{key}"):
        proc.store.record_error(stage="extract", kind="ExtractWarning", message=warning, url=url,
                                source_id=source_id, run_id=run_id, level="warning")
    self.finish_page(run_id, source_id, url, "article", joined=bool(outcome and outcome.related))
    return outcome.article_id if outcome else None

__all__ = ["dedup_article", "discover_source", "extract_page", "fetch_url", "scheduled_ingest", "start_run"]
