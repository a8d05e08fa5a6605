"""The Celery tasks: thin adapters from messages to the ``pipeline`` stages, one queue per stage.

    scheduled_ingest(spec) ─┐
    discover_source(run, i, spec) → fetch_url(run, source, url) → extract_page(run, source, page, url)
                                  └──────────── (pages at hand: WARC, files) ──┘            ↓
                                                                   dedup_article(run, source, page, url, article)
    reprocess_batch(job, index, page_ids)   (``reprint reprocess --via celery``: one batch of stored pages)

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
import json
import logging
import os
import random
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

import redis
from billiard.exceptions import SoftTimeLimitExceeded
from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy.exc import OperationalError

from pipeline.dedup.deduplicator import Deduplicator
from pipeline.dedup.policy import DecisionPolicy
from pipeline.errors import DeadlineExceeded, FetchError, HTTPStatusError, UnexpectedError
from pipeline.ingest import steps
from pipeline.records import Article, Link, Page, PageVersion
from pipeline.settings import Settings, get_settings
from pipeline.shared import keys
from pipeline.store import Store, url_key

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
    KombuOperationalError,  # a publish to the broker failed past its retry policy (a broker restart)
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
            from pipeline.shared.locks import workers_cluster_lock
            from pipeline.shared.redis_index import RedisLSHIndex

            index = RedisLSHIndex(self.redis, self.settings.num_perm, self.settings.redis_prefix)
            lock = workers_cluster_lock(self.store, self.redis, self.settings.redis_prefix)
            # the same decision policy as the embedded runner: relations at once, clusters in batches (and at
            # the end of every run, ``runs.finish_if_complete``)
            self._dedup = Deduplicator(self.store, self.settings, index=index, lock=lock,
                                       policy=DecisionPolicy.batched())
        return self._dedup

    def run(self, coro_fn: Callable[[Any], Any]) -> Any:
        """Run ``coro_fn(fetcher)`` on this process's loop, with one Fetcher kept open (robots cache, pool)."""
        from pipeline.fetch.client import Fetcher
        from pipeline.shared.host_gate import RedisHostGate

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
        note = steps.record_error(proc.store, err, source="", url=url, stage=stage, source_id=source_id,
                                  run_id=run_id)
        state.mark_done(key, "error", kind=note.kind)
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
                steps.record_error(proc.store, err, source=kwargs["spec"], url=kwargs["spec"], stage="discover",
                                   source_id=None, run_id=kwargs["run_id"])
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
    lock_key = keys.source_lock(settings.redis_prefix, url_key(spec))
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

    A WARC source is read from its checkpoint in the store (``steps.open_source``, the one the embedded
    runner keeps too), which advances after each record has been handed on. So a discovery that dies
    mid-file (a killed worker: the message comes back; a dead-lettered or timed-out task: the next run)
    continues from the last record committed instead of reading the file again from the start. Reading
    to the end resets it, so the next run reads the file afresh. A sitemap URL whose ``<lastmod>`` has not
    moved since it was fetched is not fetched again.
    """
    from pipeline.sources.discover import discover

    from .deadletter import run_test_hook

    proc = process()
    store, state = proc.store, proc.state(run_id)
    redelivered = getattr(discover_source.request, "delivery_count", 1) > 1
    plan = steps.open_source(store, spec, proc.settings)
    source_id = plan.source_id
    state.set_source_id(spec, source_id)
    if plan.resume_at:
        log.info("resuming WARC %s at offset %d (records before it were committed)", spec, plan.resume_at)

    def handle(work: steps.Work) -> None:
        if work.action == "source_error":
            assert work.error is not None
            if state.once(f"source-error:{index}:{work.error}"):
                steps.record_error(store, work.error, source=spec, url=work.error.url or spec, stage="discover",
                                   source_id=source_id, run_id=run_id)
            return
        if work.url is None:
            return
        key = page_key(source_id, work.url)
        if work.action == "fail":
            state.discovered(key)
            discover_source.fail_page(run_id, source_id, work.url, work.error, "discover")
            return
        if not state.discovered(key) and (not redelivered or state.is_done(key)):
            return  # already sent on by an earlier delivery of this task
        if work.page is not None:
            try:
                accept_page(run_id, source_id, work.page)
            except INFRA_ERRORS:
                raise
            except Exception as err:  # one page must never stop its source
                discover_source.fail_page(run_id, source_id, work.url, err, "ingest")
            return
        work = steps.skip_unchanged(store, work)
        if work.action == "unchanged":
            state.mark_done(key, "unchanged")  # the sitemap says it has not changed since it was fetched
            finish_if_complete(store, state)
            return
        kwargs: dict[str, Any] = {"run_id": run_id, "source_id": source_id, "url": work.url}
        if work.lastmod is not None:
            kwargs["lastmod"] = work.lastmod.isoformat()
        fetch_url.apply_async(kwargs=kwargs)

    async def walk(fetcher: Any) -> None:
        async for item in discover(spec, fetcher, **plan.options):
            if plan.checkpoint is not None:
                run_test_hook("reprint.discover_source:record", discover_source.request.id or "", (),
                              {"spec": spec, "url": item.url})
            handle(steps.triage(item))
            steps.item_done(store, plan, item)  # handed on: never read again

    try:
        proc.run(walk)
        steps.source_done(store, plan)
    except INFRA_ERRORS:
        raise
    except Exception as err:  # discover should not raise; if it does, the source fails alone
        if state.once(f"source-error:{index}:{err}"):
            steps.record_error(store, err, source=spec, url=spec, stage="discover", source_id=source_id,
                               run_id=run_id)
    state.source_finished(index)
    finish_if_complete(store, state)
    return source_id


def accept_page(run_id: int, source_id: int | None, page: Page) -> None:
    """A page in hand (fetched, or read from a WARC or file): store it and send it to extract.

    As in the embedded runner (``steps.known_page``): same bytes are unchanged, an older record or a page taken
    down is not applied, and other, newer content is stored and sent on as an update of its article (with the
    stored version's content hash and fetch time, which the article's version history keeps).
    """
    proc = process()
    store, state = proc.store, proc.state(run_id)
    key = page_key(source_id, page.url)
    known = steps.known_page(store, page)
    kwargs: dict[str, Any] = {}
    if known is not None and known.status == "update":
        previous = store.page_version(page.url)
        kwargs = {"update_of": known.article_id,
                  "previous": [previous.content_hash, previous.fetched_at.isoformat() if previous.fetched_at else None]
                  if previous else None}
    elif known is not None:
        state.mark_done(key, known.status)
        finish_if_complete(store, state)
        return
    page_id = steps.store_page(store, page, source_id)
    extract_page.apply_async(kwargs={"run_id": run_id, "source_id": source_id, "page_id": page_id,
                                     "url": page.url, **kwargs})


@app.task(name="reprint.fetch_url", base=PageTask, bind=True, stage="fetch")
def fetch_url(self: PageTask, run_id: int, source_id: int | None, url: str, lastmod: str | None = None) -> None:
    """Fetch one URL (conditionally if its article is stored); transient failures retry with backoff.

    ``lastmod``: the sitemap's ``<lastmod>`` of the URL (ISO), recorded once the page is accepted, so
    the next run skips the URL until the sitemap shows a newer one.
    """
    proc = process()
    try:
        page = proc.run(lambda fetcher: steps.fetch_page(fetcher, proc.store, url))
        accept_page(run_id, source_id, page)
        steps.page_fetched(proc.store, url, datetime.fromisoformat(lastmod) if lastmod else None)
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
def extract_page(self: PageTask, run_id: int, source_id: int | None, page_id: int, url: str,
                 update_of: int | None = None, previous: list[str | None] | None = None) -> None:
    """Extract the stored page's article and hand it to the dedup queue (``update_of``: as a new version of
    that stored article)."""
    proc = process()
    if update_of is None and proc.store.article_for_page(page_id) is not None:
        return  # a redelivery after the dedup task already stored it
    try:
        article, warnings = steps.extract_stored(proc.store, page_id, proc.settings, url)
    except INFRA_ERRORS:
        raise
    except (Exception, SoftTimeLimitExceeded) as err:
        self.fail_page(run_id, source_id, url, err, "extract")
        return
    extra = {"update_of": update_of, "previous": previous} if update_of is not None else {}
    dedup_article.apply_async(kwargs={"run_id": run_id, "source_id": source_id, "page_id": page_id, "url": url,
                                      "article": article_to_json(article), "warnings": warnings, **extra})


@app.task(name="reprint.dedup_article", base=PageTask, bind=True, stage="dedup")
def dedup_article(self: PageTask, run_id: int, source_id: int | None, page_id: int, url: str,
                  article: dict[str, Any], warnings: list[list[str]] | None = None, update_of: int | None = None,
                  previous: list[str | None] | None = None) -> int | None:
    """Fingerprint, match, verify and relate one article (``steps.dedup_article``); its cluster is decided
    by the shared decision policy. An update (``update_of``) replaces the stored article and re-decides its
    cluster at once (``steps.update_article``)."""
    proc = process()
    state = proc.state(run_id)
    key = page_key(source_id, url)
    notes = [tuple(w) for w in warnings or []]
    try:
        if update_of is not None:
            result = steps.update_article(proc.dedup, update_of, article_from_json(article), notes,  # type: ignore[arg-type]
                                          previous=_version(previous))
        else:
            result = steps.dedup_article(proc.dedup, page_id, article_from_json(article), notes)  # type: ignore[arg-type]
    except INFRA_ERRORS:
        raise
    except (Exception, SoftTimeLimitExceeded) as err:
        self.fail_page(run_id, source_id, url, err, "dedup")
        return None
    if result.warnings and state.once(f"warning:{key}"):
        for stage, kind, message in result.warnings:
            steps.record_warning(proc.store, stage, kind, message, source="", url=url, source_id=source_id,
                                 run_id=run_id)
    outcome = {"stored": "article"}.get(result.status, result.status)
    self.finish_page(run_id, source_id, url, outcome, joined=bool(result.related), verified=result.verified)
    return result.article_id


def _version(previous: list[str | None] | None) -> PageVersion | None:
    """The stored version an update replaces, as ``accept_page`` sent it ([content hash, fetched at ISO])."""
    if not previous:
        return None
    fetched = datetime.fromisoformat(previous[1]) if previous[1] else None
    return PageVersion(previous[0], fetched)

@app.task(name="reprint.reprocess_batch", base=GuardedTask, autoretry_for=INFRA_ERRORS, retry_backoff=True,
          retry_jitter=True, max_retries=None)
def reprocess_batch(job: str, index: int, page_ids: list[int], run_id: int | None = None) -> None:
    """Re-process one batch of stored pages (``pipeline.ingest.reprocess.reprocess_pages``, the embedded runner's
    step) with this worker's deduplicator (the shared index, the workers' lock), and record the batch's report
    in Redis for ``reprint reprocess --via celery``. A redelivered batch finds its pages done and changes
    nothing; its report is written once (the first wins)."""
    from pipeline.ingest.reprocess import reprocess_pages

    proc = process()
    report = reprocess_pages(proc.store, proc.dedup, list(page_ids), run_id=run_id)
    key = keys.reprocess(proc.settings.redis_prefix, job)
    pipe = proc.redis.pipeline(transaction=True)
    pipe.hsetnx(key, str(index), json.dumps(report.as_dict(touched=True)))
    pipe.expire(key, 7 * 24 * 3600)
    pipe.execute()


__all__ = ["dedup_article", "discover_source", "extract_page", "fetch_url", "reprocess_batch", "scheduled_ingest",
           "start_run"]
