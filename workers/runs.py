"""The state of one distributed ingest run, in Redis: which pages were discovered, which are finished.

Every record is a set member or a hash field keyed by page, so writing it again changes nothing: a
redelivered task can mark its page twice and the counts stay right. A page key is ``source_id:url_key``
(a URL listed by two sources is two pages, as in the embedded runner). The run is complete when every
source finished discovery and every discovered page has an outcome; whoever sees that first (the last
task, or the waiting ``ingest --via celery``) claims the finish, writes the run's counts to the
database and releases the source lock of a scheduled run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis

from pipeline.records import ErrorNote, IngestSummary
from pipeline.shared import keys
from pipeline.store import Store, url_key

#: Run state is kept this long after the last write (a week): enough for anyone to look at it.
RUN_TTL = 7 * 24 * 3600

#: Compare-and-delete: release a lock only if it still holds our token (it may have expired and moved on).
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class RunProgress:
    """A snapshot of one run for the progress bar."""

    sources: int
    sources_done: int
    pages: int
    pages_done: int
    finished: bool

    @property
    def complete(self) -> bool:
        return self.sources_done >= self.sources and self.pages_done >= self.pages


def page_key(source_id: int | None, url: str) -> str:
    """The key of one discovered page within a run."""
    return f"{source_id if source_id is not None else '-'}:{url_key(url)}"


class RunState:
    """Redis keys of one run: ``<prefix>:run:<id>`` (meta hash), ``…:pages`` (set), ``…:done`` (hash)."""

    def __init__(self, client: redis.Redis, prefix: str, run_id: int) -> None:
        self.client = client
        self.prefix = prefix
        self.run_id = run_id
        self.meta = keys.run(prefix, run_id)
        self.pages = f"{self.meta}:pages"
        self.done_key = f"{self.meta}:done"
        self.sources_done = f"{self.meta}:sources-done"

    def _touch(self, pipe: Any) -> None:
        for key in (self.meta, self.pages, self.done_key, self.sources_done):
            pipe.expire(key, RUN_TTL)

    def create(self, sources: list[str], *, lock_key: str | None = None, lock_token: str | None = None) -> None:
        """Record the run's sources before any task for it is sent."""
        pipe = self.client.pipeline(transaction=True)
        mapping = {"sources": json.dumps(sources), "n_sources": len(sources), "started_at": f"{time.time():.3f}"}
        if lock_key and lock_token:
            mapping.update({"lock_key": lock_key, "lock_token": lock_token})
        pipe.hset(self.meta, mapping=mapping)
        self._touch(pipe)
        pipe.execute()

    def sources(self) -> list[str]:
        """The run's SOURCE specs, in the order given."""
        raw = self.client.hget(self.meta, "sources")
        return json.loads(raw) if raw else []

    def set_source_id(self, spec: str, source_id: int) -> None:
        """Remember which store source id a spec got, so errors can be reported per source."""
        self.client.hset(self.meta, f"source:{source_id}", spec)

    def source_specs(self) -> dict[int, str]:
        """source id → spec, for the summary's per-source error notes."""
        out = {}
        for field, value in self.client.hgetall(self.meta).items():
            name = field.decode()
            if name.startswith("source:"):
                out[int(name.split(":", 1)[1])] = value.decode()
        return out

    def discovered(self, key: str) -> bool:
        """Add a page to the run; True if it was not there yet."""
        return bool(self.client.sadd(self.pages, key))

    def is_done(self, key: str) -> bool:
        """Whether the page already has its outcome (so a redelivery records nothing again)."""
        return bool(self.client.hexists(self.done_key, key))

    def mark_done(self, key: str, outcome: str, **extra: Any) -> bool:
        """Give a page its outcome (``article``, ``unchanged``, ``changed``, ``error``); the first one wins."""
        pipe = self.client.pipeline(transaction=True)
        pipe.sadd(self.pages, key)  # an outcome always belongs to a discovered page
        pipe.hsetnx(self.done_key, key, json.dumps({"outcome": outcome, **extra}))
        self._touch(pipe)
        return bool(pipe.execute()[1])

    def once(self, token: str) -> bool:
        """True the first time ``token`` is seen in this run: records a warning once across redeliveries."""
        pipe = self.client.pipeline(transaction=True)
        pipe.sadd(f"{self.meta}:once", token)
        pipe.expire(f"{self.meta}:once", RUN_TTL)
        return bool(pipe.execute()[0])

    def source_finished(self, spec_index: int) -> None:
        """Discovery of one source is over: its pages are all in the pages set."""
        pipe = self.client.pipeline(transaction=True)
        pipe.sadd(self.sources_done, str(spec_index))
        self._touch(pipe)
        pipe.execute()

    def progress(self) -> RunProgress:
        """Counts for the progress bar and the completion check, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(self.meta, "n_sources")
        pipe.scard(self.sources_done)
        pipe.scard(self.pages)
        pipe.hlen(self.done_key)
        pipe.hexists(self.meta, "finished_at")
        n_sources, sources_done, pages, done, finished = pipe.execute()
        return RunProgress(int(n_sources or 0), int(sources_done), int(pages), int(done), bool(finished))

    def outcomes(self) -> list[dict[str, Any]]:
        """Every page's outcome record (for the summary)."""
        return [json.loads(v) for v in self.client.hvals(self.done_key)]

    def times(self) -> tuple[float, float | None]:
        """(started, finished or None) as Unix times."""
        started, finished = self.client.hmget(self.meta, "started_at", "finished_at")
        return float(started or time.time()), float(finished) if finished else None

    def claim_finish(self) -> bool:
        """True for exactly one caller once the run is complete."""
        return bool(self.client.hsetnx(self.meta, "finishing", f"{time.time():.3f}"))

    def mark_finished(self) -> None:
        """Record the finish time; the progress snapshot reports the run finished from now on."""
        self.client.hset(self.meta, "finished_at", f"{time.time():.3f}")

    def release_lock(self) -> None:
        """Free the scheduled source this run held (only if the lock is still ours)."""
        lock_key, token = self.client.hmget(self.meta, "lock_key", "lock_token")
        if lock_key and token:
            self.client.eval(_RELEASE, 1, lock_key, token)


def build_summary(store: Store, state: RunState) -> IngestSummary:
    """The same summary the embedded runner prints, from the run state and the errors table."""
    summary = IngestSummary(run_id=state.run_id, sources=state.sources())
    progress = state.progress()
    summary.pages_seen = progress.pages
    for outcome in state.outcomes():
        kind = outcome.get("outcome")
        if kind == "article":
            summary.articles += 1
            if outcome.get("joined"):
                summary.joined += 1
            summary.verified += int(outcome.get("verified") or 0)
        elif kind == "unchanged":
            summary.unchanged += 1
        elif kind in ("updated", "older", "forgotten"):
            setattr(summary, kind, getattr(summary, kind) + 1)
            summary.verified += int(outcome.get("verified") or 0)
    specs = state.source_specs()
    for row in store.errors(state.run_id):
        source = specs.get(row.source_id, "") if row.source_id is not None else ""
        summary.note(ErrorNote(source, row.url, row.stage, row.kind, row.message, row.level),
                     failed_source=source or None)
    summary.take_totals(store.totals())
    started, finished = state.times()
    summary.elapsed = (finished or time.time()) - started
    return summary


def decide_pending(store: Store, state: RunState) -> None:
    """Decide every cluster still waiting (the decision policy batches them), under the workers' lock."""
    from pipeline.dedup.deduplicator import Deduplicator
    from pipeline.dedup.policy import DecisionPolicy
    from pipeline.settings import get_settings
    from pipeline.shared.locks import workers_cluster_lock

    settings = get_settings()
    lock = workers_cluster_lock(store, state.client, state.prefix)
    Deduplicator(store, settings, lock=lock, policy=DecisionPolicy.batched()).flush()


def finish_if_complete(store: Store, state: RunState) -> bool:
    """Write the run's counts and release its source lock, once, when every page has an outcome.

    A run is over when its clusters are decided too: whoever sees every page done decides what waits
    first (a second process doing the same finds nothing left), then one of them claims the finish.
    """
    progress = state.progress()
    if progress.finished or not progress.complete:
        return progress.finished
    decide_pending(store, state)
    if not state.claim_finish():
        return False
    state.mark_finished()
    summary = build_summary(store, state)
    store.finish_run(state.run_id, summary.counts())
    state.release_lock()
    return True

