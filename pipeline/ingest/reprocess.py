"""Re-processing: every stored page re-extracted from its stored HTML (no refetch), and its clusters re-decided.

A better extractor or detector ships; ``reprint reprocess`` brings the store up to it. For each page:

1. its stored HTML is extracted again (a page whose HTML was pruned is skipped and counted);
2. an article that comes out different is updated (``steps.update_article``: version kept, re-fingerprinted,
   index entries and relations replaced, ``article_updated`` then its consequences); a page that had no article
   gets one; an article that comes out the same keeps its candidates, and its stored relations are verified
   again (a changed verifier changes them); an article whose matching was cut short by ``dedup_deadline``
   (``Store.unmatched``) is matched again;
3. the component of every article of the batch is re-decided (partition, canonical, flags, reviews in force),
   once per run.

Unchanged code therefore changes nothing and logs no event: the same HTML gives the same article, the same pairs
the same verdicts, and a decision that changes nothing writes nothing. ``reprocess_pages`` is the step both
runners call (a Celery worker runs it per batch, ``workers/tasks.reprocess_batch``); ``run_reprocess`` is the
embedded runner: pages are streamed in id order, a batch per transaction, with a checkpoint (the table
``reprocess_checkpoints``, keyed by the run's options) committed with each batch, so a run that stops is resumed by
the next one with the same options, and progress on stderr. It ends with a ``ReprocessReport``: pages whose text
changed, cluster moves, canonical changes, flags gained and lost.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import orjson

from pipeline.dedup.deduplicator import Deduplicator
from pipeline.dedup.policy import DecisionPolicy
from pipeline.dedup.verify import verify_articles
from pipeline.errors import as_reprint_error
from pipeline.ingest.steps import extract_page, page_unit, update_article
from pipeline.records import PairVerdict, ReprocessReport
from pipeline.settings import Settings
from pipeline.store import Store
from pipeline.store.codecs import json_text

#: Pages per batch: one transaction, one checkpoint.
BATCH = 100


def options_key(options: dict[str, Any]) -> str:
    """The checkpoint key of a re-processing: its options (source, since), so a run resumes only its own kind."""
    return hashlib.sha1(json.dumps(options, sort_keys=True).encode()).hexdigest()


def _same(stored: PairVerdict, fresh: PairVerdict) -> bool:
    """Whether a re-verified pair says exactly what is stored (the evidence compared as it is stored: JSON)."""
    return (stored.relation, stored.similarity, stored.coverage_a, stored.coverage_b, stored.substitution_rate) == (
        fresh.relation, fresh.similarity, fresh.coverage_a, fresh.coverage_b, fresh.substitution_rate) and (
        stored.evidence == orjson.loads(json_text(fresh.evidence)))


def reverify(dedup: Deduplicator, article_ids: Iterable[int]) -> set[int]:
    """Verify again every stored relation whose smaller article is one of ``article_ids`` (each pair once in a
    run) and store those whose verdict changed; returns the articles whose relations changed."""
    stored = dedup.store.edges_from(article_ids)
    if not stored:
        return set()
    dedup.refresh()  # a worker's cached articles may predate an update another worker made
    loaded = dedup.articles({x for pair in stored for x in pair})
    changed: dict[tuple[int, int], PairVerdict | None] = {}
    for (a, b), verdict in stored.items():
        if a not in loaded or b not in loaded:
            continue
        (x, xt), (y, yt) = loaded[a], loaded[b]
        language = min(filter(None, [x.language, y.language]), default=None)
        fresh = verify_articles(x.url, xt, y.url, yt, language)
        if not _same(verdict, fresh):
            changed[(a, b)] = fresh if fresh.related else None
    if changed:
        dedup.store.set_edges(changed)
    return {x for pair in changed for x in pair}


def reprocess_pages(store: Store, dedup: Deduplicator, page_ids: list[int], *, done: set[int] | None = None,
                    run_id: int | None = None) -> ReprocessReport:
    """Re-extract these stored pages and re-decide their components (see the module docstring). ``done``: the
    articles whose component was already re-decided in this run. A page that fails is recorded as an error
    (stage ``reprocess``) against ``run_id`` and keeps its stored article; the others go on."""
    report = ReprocessReport()
    done = set() if done is None else done
    kept: list[int] = []
    rematched: list[int] = []
    for page_id in page_ids:
        report.pages += 1
        page = store.load_page(page_id)
        if page is None:
            continue
        if not page.body:
            report.pruned += 1
            continue
        try:
            with page_unit(store):
                article, warnings = extract_page(page, dedup.settings)
                existing = store.article_for_page(page_id)
                if existing is None:
                    dedup.add(page_id, article)
                    report.added += 1
                    continue
                if store.unmatched([existing]) and store.same_article(existing, article):
                    dedup.add(page_id, article)  # its matching was cut short: match it again
                    report.rematched += 1
                    rematched.append(existing)
                    continue
                result = update_article(dedup, existing, article, warnings, reason="reprocess",
                                        previous=store.page_version_of(page_id))
        except Exception as err:  # one page must never stop the run
            report.failed += 1
            rerr = as_reprint_error(err, page.url, "reprocess")
            store.record_error(stage="reprocess", kind=rerr.kind, message=rerr.message, url=page.url,
                               run_id=run_id)
            continue
        if result.status == "updated":
            report.text_changed += 1
            if len(report.changed_urls) < 500:
                report.changed_urls.append(page.url)
            report.count_changes(result.changes)
            done.add(existing)
        else:
            report.unchanged += 1
            kept.append(existing)
    with store.unit():
        touched = reverify(dedup, kept)
    report.relations_changed += len(touched)
    report.count_changes(dedup.redecide_each(set(kept) | touched | set(rematched), done))
    return report


class Resume:
    """One re-processing run's bookkeeping, whoever does the pages: the options and their checkpoint, the report so
    far (restored from an unfinished run with the same options), the run row, and the page batches still to do."""

    def __init__(self, store: Store, source: str | None, source_id: int | None, since: datetime | None,
                 label: str = "") -> None:
        self.store, self.source_id, self.since = store, source_id, since
        self.options = {"source": source, "since": since.isoformat() if since else None}
        self.key = options_key(self.options)
        resume = store.reprocess_checkpoint(self.key)
        self.after, self.report = (resume[0], ReprocessReport.from_dict(resume[1])) if resume else (
            0, ReprocessReport())
        self.report.resumed_at = self.after
        self.earlier, self.started = self.report.elapsed, time.perf_counter()
        self.total = store.count_pages(after=self.after, source_id=source_id, since=since)
        name = " ".join(filter(None, ["reprocess", source, label]))
        self.run_id = store.start_run([name])

    @classmethod
    def open(cls, store: Store, source: str | None, since: datetime | None, label: str = "") -> Resume:
        """``LookupError`` when ``source`` was never ingested."""
        source_id = None
        if source is not None:
            source_id = store.source_of_spec(source)
            if source_id is None:
                raise LookupError(f"no source {source!r} was ever ingested (give it as it was given to ingest)")
        return cls(store, source, source_id, since, label)

    def batches(self, size: int) -> Iterator[list[int]]:
        return self.store.page_batches(after=self.after, source_id=self.source_id, since=self.since, batch=size)

    def commit(self, last_page_id: int, part: ReprocessReport) -> None:
        """A batch is done: its report joins the run's and the checkpoint moves past it (call in the batch's unit
        when the batch was done here, so both commit with it)."""
        self.report.take(part)
        self.report.elapsed = self.earlier + time.perf_counter() - self.started
        self.store.set_reprocess_checkpoint(self.key, self.options, last_page_id, self.report.as_dict(touched=True))

    def close(self) -> ReprocessReport:
        """The run reached the end: the checkpoint goes (the next run starts afresh), the run row gets the report."""
        self.store.clear_reprocess_checkpoint(self.key)
        self.report.elapsed = self.earlier + time.perf_counter() - self.started
        self.store.finish_run(self.run_id, {"reprocess": self.report.as_dict()})
        return self.report


def run_reprocess(store: Store, settings: Settings, *, source: str | None = None, since: datetime | None = None,
                  progress: bool = True, batch: int = BATCH) -> ReprocessReport:
    """Re-process the stored pages (of ``source``, fetched since ``since``) in this process; resumes an unfinished
    run with the same options. ``LookupError`` when ``source`` was never ingested."""
    run = Resume.open(store, source, since)
    dedup = Deduplicator(store, settings, policy=DecisionPolicy.batched())
    done: set[int] = set()
    with _Bar(progress, run.total, run.after) as bar:
        for ids in run.batches(batch):
            with store.unit():
                run.commit(ids[-1], reprocess_pages(store, dedup, ids, done=done, run_id=run.run_id))
            bar.advance(len(ids), run.report)
        run.report.count_changes(dedup.flush())
    finish(store, run.report)
    return run.close()


def finish(store: Store, report: ReprocessReport) -> None:
    """The report's net counts (moves, canonical changes, flags gained and lost) from the store as it ends."""
    report.settle(*store.current_state(*report.touched_ids()))


class _Bar:
    """The progress line on stderr (rich), or nothing."""

    def __init__(self, enabled: bool, total: int, after: int) -> None:
        self.progress = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("[bold]reprocess"), BarColumn(bar_width=None), MofNCompleteColumn(),
                                     TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
                                     console=Console(stderr=True), transient=True)
            what = f"resuming after page {after}" if after else ""
            self.task = self.progress.add_task("pages", total=total, stats=what)

    def __enter__(self) -> _Bar:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def advance(self, n: int, report: ReprocessReport) -> None:
        if self.progress is not None:
            touched = report.touched_ids()
            self.progress.update(self.task, advance=n, stats=f"text changed {report.text_changed} · "
                                 f"articles touched {len(touched[0])} · clusters {len(touched[1])}")


__all__ = ["BATCH", "Resume", "finish", "options_key", "reprocess_pages", "reverify", "run_reprocess"]
