"""What happens to one source and to one page, whoever runs it.

The embedded runner (``runner.py``) and the Celery tasks (``workers/tasks.py``) call only these functions
for the work itself; each adds its own scheduling (an event loop and a store thread; queues, retries and
acks) and its own bookkeeping (a summary in memory; a run state in Redis), never a rule about pages:

    open_source(store, spec, settings)   → SourcePlan: the source registered, a WARC's resume offset and filters
    triage(item)                         → Work: what a discovered item asks for (fail, page, fetch)
    skip_unchanged(store, work)          → Work: a sitemap URL whose <lastmod> has not moved needs no fetch
    item_done(store, plan, item)            a WARC item handled: its checkpoint commits with it
    source_done(store, plan)                a source read to its end: the next read of a WARC starts afresh
    fetch_page(fetcher, store, url)      → Page, conditionally (ETag / Last-Modified of a stored article)
    known_page(store, page)              → PageResult for a page known already (304, same bytes, an older
                                           record, taken down) or ``update`` (its stored article must change)
    store_page(store, page, source_id)   → the page's id (safe when two workers store one URL at once)
    extract_stored(store, page_id, ...)  → (Article, warnings) from the stored bytes
    dedup_article(dedup, page_id, ...)   → PageResult: fingerprint, match, verify, and the decision policy
    update_article(dedup, article_id, …) → PageResult: a stored article replaced by a new version (or not, when
                                           the extracted article is the same), its cluster re-decided
    ingest_page(page, store, dedup, ...) → PageResult: known_page, store, extract, dedup (or update) in one unit
    page_unit(store)                        that unit: a dedup ``PageTimeout`` commits what it kept, then is raised
    page_fetched(store, url, lastmod)       a sitemap URL handled: skipped until its <lastmod> moves
    record_error / record_warning        → ErrorNote: the errors table, one kind mapping for every runner
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from pipeline.dedup.deduplicator import Deduplicator
from pipeline.errors import HTTPStatusError, PageTimeout, SourceError, UnexpectedError, as_reprint_error
from pipeline.extract import extract_isolated
from pipeline.records import (
    Article,
    DedupOutcome,
    ErrorNote,
    Page,
    PageResult,
    PageVersion,
    SourceItem,
    SourcePlan,
    Work,
)
from pipeline.settings import Settings
from pipeline.store import Store, content_hash
from pipeline.store.codecs import naive_utc


# --- sources --------------------------------------------------------------------------------------
def open_source(store: Store, spec: str, settings: Settings) -> SourcePlan:
    """Register a source and plan its read; a WARC resumes after the last record a run committed.

    The checkpoint key is the file plus the settings' host / WARC-Date filters, so an embedded run and a
    Celery run of the same file and filters share one checkpoint.
    """
    from pipeline.sources.discover import source_kind, warc_plan

    try:
        kind = source_kind(spec)
    except Exception:  # discover reports the problem as the source's error item
        kind = "unknown"
    source_id = store.source_id(spec, kind)
    if kind != "warc":
        return SourcePlan(spec, kind, source_id)
    key, scope = warc_plan(spec, settings)
    start = store.warc_checkpoint(key)
    return SourcePlan(spec, kind, source_id, key, {"warc_scope": scope.at(start)}, start)


def item_done(store: Store, plan: SourcePlan, item: SourceItem) -> None:
    """A WARC item was handled (stored, or its error recorded): a resumed read starts after it. Call it in
    the unit that stored the item, so the checkpoint commits with what it describes."""
    if plan.checkpoint is not None and item.resume_at is not None:
        store.set_warc_checkpoint(plan.checkpoint, item.resume_at)


def source_done(store: Store, plan: SourcePlan) -> None:
    """The source was read to its end: the next read of the same WARC and filters starts afresh."""
    if plan.checkpoint is not None:
        store.set_warc_checkpoint(plan.checkpoint, 0)


def triage(item: SourceItem) -> Work:
    """What to do with one item ``discover`` yielded (no store access: a runner may call it anywhere)."""
    url = item.url or (item.page.url if item.page is not None else None)
    if item.error is not None:
        error = as_reprint_error(item.error, url or item.source, "discover")
        if url is None or isinstance(item.error, SourceError):
            return Work("source_error", url, error=error)
        return Work("fail", url, error=error)
    if item.page is not None:
        return Work("page", url, page=item.page)
    if url is None:
        return Work("nothing")
    return Work("fetch", url, lastmod=item.lastmod)


def skip_unchanged(store: Store, work: Work) -> Work:
    """A URL to fetch whose sitemap ``<lastmod>`` is not newer than at its last fetch is ``unchanged``, with
    no request; anything else is returned as it is."""
    if work.action == "fetch" and work.url is not None and work.lastmod is not None \
            and store.sitemap_unchanged(work.url, work.lastmod):
        return Work("unchanged", work.url)
    return work


# --- one page -------------------------------------------------------------------------------------
def validators(store: Store, url: str) -> tuple[str | None, str | None]:
    """(ETag, Last-Modified) to send for a URL whose article is stored; (None, None) for anything else."""
    state = store.page_state(url)
    if state is None or store.article_for_page(state[0]) is None:
        return None, None
    return state[2], state[3]


async def fetch_page(fetcher: Any, store: Store, url: str) -> Page:
    """Fetch one URL, conditionally when its article is stored (a 304 then says it is unchanged)."""
    etag, last_modified = validators(store, url)
    return await fetcher.fetch(url, etag=etag, last_modified=last_modified)


def known_page(store: Store, page: Page) -> PageResult | None:
    """What to do with a page already known: ``unchanged`` (304 or the same bytes), ``older`` (a record older
    than the stored version, e.g. an earlier WARC: not applied), ``forgotten`` (taken down, not ingested again
    unless allowed), ``update`` (other content, newer: its stored article must be updated), or None when it is
    new and must be stored and processed. Raises for an HTTP error status."""
    if page.status == 304:
        return PageResult("unchanged")
    if page.status >= 400:
        raise HTTPStatusError(f"HTTP status {page.status}", url=page.url, status=page.status)
    state, forgotten = store.lookup_page(page.url)
    if state is None:
        return PageResult("forgotten") if forgotten else None
    if state[2] is None:
        return None
    article_id, stored_at = state[2], state[3]
    if state[1] == content_hash(page.body):
        return PageResult("unchanged", article_id)
    if page.fetched_at is not None and stored_at is not None and naive_utc(page.fetched_at) < stored_at:
        return PageResult("older", article_id)
    return PageResult("update", article_id)


def store_page(store: Store, page: Page, source_id: int | None) -> int:
    """Store (or refresh) a page's bytes; returns its id. Two workers storing one URL at the same instant
    is an upsert race: the loser's second try is an update."""
    try:
        return store.add_page(page, source_id)
    except IntegrityError:
        return store.add_page(page, source_id)


def extract_page(page: Page, settings: Settings) -> tuple[Article, list[tuple[str, str, str]]]:
    """The page's article and the warnings extraction raised, as (stage, kind, message). Extraction runs in a
    worker process a deadline or a memory cap can stop (``pipeline.extract.isolated``), bounded either way."""
    article, warning = extract_isolated(page, settings)
    return article, ([("extract", "ExtractWarning", warning)] if warning else [])


def extract_stored(store: Store, page_id: int, settings: Settings,
                   url: str | None = None) -> tuple[Article, list[tuple[str, str, str]]]:
    """Extract a stored page from its stored bytes (no refetch)."""
    page = store.load_page(page_id)
    if page is None:
        raise UnexpectedError(LookupError(f"page {page_id} is not in the store"), url=url, stage="extract")
    return extract_page(page, settings)


def dedup_article(dedup: Deduplicator, page_id: int, article: Article,
                  warnings: list[tuple[str, str, str]] | None = None) -> PageResult:
    """Fingerprint, match and verify the article of a stored page; its cluster is decided when the
    deduplicator's policy says so. A second delivery of the same page finds its article stored."""
    try:
        outcome: DedupOutcome = dedup.add(page_id, article)
    except IntegrityError:
        # two deliveries of this page raced and the other stored the article first: it is done
        existing = dedup.store.article_for_page(page_id)
        if existing is None:
            raise
        return PageResult("stored", existing, warnings=list(warnings or []))
    return PageResult("stored", outcome.article_id, outcome.cluster_id, outcome.related, list(warnings or []),
                      verified=outcome.candidates)


def update_article(dedup: Deduplicator, article_id: int, article: Article,
                   warnings: list[tuple[str, str, str]] | None = None, *, previous: PageVersion | None = None,
                   reason: str = "update") -> PageResult:
    """Replace a stored article by a new version (``Deduplicator.update``): ``updated``, or ``unchanged`` when the
    new content gives exactly the stored article (a page whose markup changed around the same text). A second
    delivery of the same update finds the new version stored and is ``unchanged``."""
    if dedup.store.same_article(article_id, article):
        return PageResult("unchanged", article_id, warnings=list(warnings or []))
    outcome = dedup.update(article_id, article, reason=reason, previous=previous)
    return PageResult("updated", article_id, outcome.cluster_id, outcome.related, list(warnings or []),
                      verified=outcome.candidates, changes=outcome.changes)


@contextlib.contextmanager
def page_unit(store: Store) -> Iterator[None]:
    """One page's unit (``Store.unit``): its writes commit together or not at all, except that dedup cut short by
    its deadline (``PageTimeout``, stage dedup) commits what the deduplicator kept (the article, unmatched, for
    ``reprocess``) and is raised after the commit."""
    cut: PageTimeout | None = None
    with store.unit():
        try:
            yield
        except PageTimeout as err:
            if err.stage != "dedup":
                raise
            cut = err
    if cut is not None:
        raise cut


def update_page(page: Page, store: Store, dedup: Deduplicator, source_id: int | None, article_id: int) -> PageResult:
    """A stored page came back with other, newer content: store it, re-extract, and update its article. A new
    version that holds no article keeps the new bytes and the stored article, and the error is raised."""
    previous = store.page_version(page.url)
    try:
        article, warnings = extract_page(page, dedup.settings)
    except Exception:
        with contextlib.suppress(Exception):
            store.add_page(page, source_id)
        raise
    with page_unit(store):
        store.add_page(page, source_id)
        result = update_article(dedup, article_id, article, warnings, previous=previous)
    return result


def ingest_page(page: Page, store: Store, dedup: Deduplicator, source_id: int | None) -> PageResult:
    """Store, extract and deduplicate one page, unless it is stored already with the same bytes; a stored page
    with newer content updates its article (``update_page``).

    One unit (a savepoint inside a runner's batch): the page, its article and its relations commit
    together. A page that holds no article is kept (to re-extract later) and the error is raised for the
    caller to record; so is a page whose dedup ran past its deadline, with its article kept unmatched
    (``page_unit``). Warnings are returned for the caller to record.
    """
    known = known_page(store, page)
    if known is not None:
        if known.status == "update" and known.article_id is not None:
            return update_page(page, store, dedup, source_id, known.article_id)
        return known
    result: PageResult | None = None
    try:
        article, warnings = extract_page(page, dedup.settings)
        with page_unit(store):
            result = dedup_article(dedup, store.add_page(page, source_id), article, warnings)
    except Exception:
        if result is not None and result.article_id is not None:  # the commit itself failed
            dedup.forget(result.article_id)
        with contextlib.suppress(Exception):
            store.add_page(page, source_id)
        raise
    return result


def page_fetched(store: Store, url: str, lastmod: datetime | None) -> None:
    """A sitemap URL was fetched and handled at this ``<lastmod>``: skipped until the sitemap shows a newer one."""
    if lastmod is not None:
        store.set_sitemap_lastmod(url, lastmod)


# --- what went wrong ------------------------------------------------------------------------------
def record_error(store: Store, err: BaseException, *, source: str, url: str | None, stage: str,
                 source_id: int | None, run_id: int | None, level: str = "error") -> ErrorNote:
    """Store one error against its source and run; the same kind and stage whoever recorded it."""
    rerr = as_reprint_error(err, url, stage)
    where = rerr.url or url
    store.record_error(stage=rerr.stage, kind=rerr.kind, message=rerr.message, url=where, source_id=source_id,
                       run_id=run_id, level=level)
    return ErrorNote(source, where, rerr.stage, rerr.kind, rerr.message, level)


def record_warning(store: Store, stage: str, kind: str, message: str, *, source: str, url: str | None,
                   source_id: int | None, run_id: int | None) -> ErrorNote:
    """Store a warning that is not an exception (extraction notes, changed pages)."""
    store.record_error(stage=stage, kind=kind, message=message, url=url, source_id=source_id, run_id=run_id,
                       level="warning")
    return ErrorNote(source, url, stage, kind, message, "warning")
