"""Ingest benchmark: pages/s, each stage's share of CPU, and the pipeline's CPU per page against
trafilatura extraction alone on the same pages (the ratio is the figure; target ≤ 1.25).

    python benchmarks/ingest_bench.py [WARC] [--repeats N]

Reads ../shared/eval/dev/corpus.warc.gz by default. The figure is ``reprint ingest WARC`` as run (the
runner reading the file, its per-item transactions and checkpoints, the final decisions) against the
baseline, the two taking turns every few pages so that both see the same machine; a second ratio does
the same for the ``ingest_page`` loop alone. Medians over repeats, after one warm-up run.

Extraction runs in worker processes (``pipeline.extract.isolated``): their CPU is counted with the
pipeline's, in the ratios and in the extract stage.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import trafilatura

import pipeline.dedup.canonical as canonical_module
import pipeline.dedup.deduplicator as dedup_module
import pipeline.dedup.rarity as rarity_module
import pipeline.ingest.runner as ingest_module
import pipeline.ingest.steps as steps_module
import pipeline.text as text_module
from pipeline.dedup.deduplicator import Deduplicator
from pipeline.dedup.policy import DecisionPolicy
from pipeline.errors import ReprintError
from pipeline.extract import shared_usage
from pipeline.ingest.runner import run_ingest
from pipeline.ingest.steps import ingest_page
from pipeline.records import Page
from pipeline.settings import Settings
from pipeline.store import Store

#: Pages per turn when the pipeline and the baseline take turns on the CPU.
CHUNK = 25
DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev" / "corpus.warc.gz"


def read_pages(path: Path) -> list[Page]:
    from warcio.archiveiterator import ArchiveIterator

    pages = []
    with path.open("rb") as fh:
        for record in ArchiveIterator(fh):
            if record.rec_type != "response":
                continue
            ctype = record.http_headers.get_header("Content-Type") if record.http_headers else ""
            pages.append(Page(record.rec_headers.get_header("WARC-Target-URI"), record.content_stream().read(),
                              headers={"content-type": ctype or ""}))
    return pages


PATCHES = [
    (steps_module, "extract_isolated", "extract"),
    (Store, "stored_page", "store: known-page check"),
    (Store, "add_page", "store: page (compressed HTML)"),
    (dedup_module, "tokenize", "dedup: tokenize"),
    (dedup_module, "fingerprint_tokens", "dedup: fingerprint (MinHash)"),
    (Store, "add_article_once", "store: article, signature, cluster"),
    (Deduplicator, "_match", "dedup: match (LSH)"),
    (dedup_module, "verify_articles", "dedup: verify"),
    (Store, "add_edges", "store: relations"),
    (Store, "component_edges", "store: component read"),
    (dedup_module, "partition", "cluster: partition"),
    (Store, "assign_clusters", "store: cluster ids"),
    (dedup_module, "decide", "canonicalize"),
    (Store, "apply_decision", "store: decisions and events"),
]


def workers_cpu() -> float:
    """CPU seconds of this process's extraction workers so far."""
    return shared_usage().cpu_seconds


def extraction_alone(pages: list[Page], clock=time.process_time) -> float:
    """CPU seconds for plain trafilatura extraction with metadata, the baseline."""
    start = clock()
    for page in pages:
        trafilatura.bare_extraction(page.body, url=page.url, with_metadata=True, include_comments=False)
    return clock() - start


def forget_texts() -> None:
    """Empty the per-text caches (tokens, trigrams, alignments, word rarity) so that a repeat does not
    reuse what the previous run computed for the same pages; per-process set-up (MinHash permutations,
    wordfreq tables) stays, as in a long-running ingest."""
    for module in (text_module, canonical_module, rarity_module):
        for name in dir(module):
            fn = getattr(module, name)
            if callable(getattr(fn, "cache_clear", None)) and name != "_languages":
                fn.cache_clear()


@contextlib.contextmanager
def stage_timers() -> Iterator[dict[str, float]]:
    """While open, each stage in PATCHES adds its thread's CPU time to the dict it yields (the stages
    run on the store thread, beside the WARC reader and the event loop); extract adds its workers' too."""
    stages: dict[str, float] = defaultdict(float)
    originals = [(owner, name, getattr(owner, name)) for owner, name, _label in PATCHES]

    def timed(fn, label: str):
        def wrapper(*args, **kwargs):
            t, workers = time.thread_time(), workers_cpu()
            try:
                return fn(*args, **kwargs)
            finally:
                stages[label] += time.thread_time() - t + workers_cpu() - workers
        return wrapper

    for (owner, name, label), (_o, _n, fn) in zip(PATCHES, originals, strict=True):
        setattr(owner, name, timed(fn, label))
    try:
        yield stages
    finally:
        for owner, name, fn in originals:
            setattr(owner, name, fn)


def runner_run(warc: Path, pages: list[Page], chunk: int = CHUNK) -> tuple[float, float, float, int, dict[str, float]]:
    """What ``reprint ingest WARC`` does once the interpreter is up, taking turns with the baseline.

    Returns the runner's CPU seconds (every thread: WARC reading, the event loop, the store thread),
    the baseline's CPU seconds on the same pages, the runner's wall seconds, the items it handled and
    its CPU by stage. Every ``chunk`` items the store thread extracts the next ``chunk`` pages with
    trafilatura alone; that time, measured on the thread, is taken out of the runner's figures.
    """
    process = ingest_module._Runner.process
    turns = {"items": 0, "next": 0, "cpu": 0.0, "wall": 0.0}

    def baseline_turn(upto: int) -> None:
        part = pages[turns["next"] : upto]
        turns["next"] = max(turns["next"], upto)
        wall = time.perf_counter()
        turns["cpu"] += extraction_alone(part, clock=time.thread_time)
        turns["wall"] += time.perf_counter() - wall

    def taking_turns(self, item):
        try:
            return process(self, item)
        finally:
            turns["items"] += 1
            if turns["items"] % chunk == 0:
                baseline_turn(turns["items"])

    forget_texts()
    ingest_module._Runner.process = taking_turns
    try:
        with stage_timers() as stages, tempfile.TemporaryDirectory() as tmp:
            store = Store(f"sqlite:///{tmp}/bench.db")
            wall, cpu = time.perf_counter(), time.process_time() + workers_cpu()
            summary = run_ingest([str(warc)], store, Settings(), progress=False)
            cpu, wall = time.process_time() + workers_cpu() - cpu, time.perf_counter() - wall
            store.close()
    finally:
        ingest_module._Runner.process = process
    cpu -= turns["cpu"]
    wall -= turns["wall"]
    baseline_turn(len(pages))  # the pages after the last full turn
    return cpu, turns["cpu"], wall, summary.pages_seen, dict(stages)


def pipeline_run(pages: list[Page], chunk: int = CHUNK) -> tuple[float, float, float, dict[str, float]]:
    """CPU seconds of the whole embedded pipeline and of extraction alone, pipeline wall seconds, and
    the pipeline's CPU by stage.

    Each page goes through ``ingest_page``, the one code path ``reprint ingest`` and the workers run
    (stored check, page store, extract, dedup), with batched cluster decisions as the runner makes them.
    The baseline extracts the same pages chunk by chunk between the pipeline's chunks, so that both
    see the same machine: on a shared VM the speed drifts by a tenth within seconds.
    """
    forget_texts()
    cpu = wall = base = 0.0
    with stage_timers() as stages, tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/bench.db")
        dedup = Deduplicator(store, Settings(), policy=DecisionPolicy.batched())  # as `reprint ingest` runs it
        for i in range(0, len(pages), chunk):
            part = pages[i : i + chunk]
            base += extraction_alone(part)  # trafilatura alone: no stage of ours runs, none is timed
            started, start_cpu = time.perf_counter(), time.process_time() + workers_cpu()
            for page in part:
                with contextlib.suppress(ReprintError):
                    ingest_page(page, store, dedup, None)
            if i + chunk >= len(pages):
                dedup.flush()
            cpu += time.process_time() + workers_cpu() - start_cpu
            wall += time.perf_counter() - started
        store.close()
    return cpu, base, wall, dict(stages)


def _stage_table(shares: dict[str, list[float]]) -> None:
    for name, values in sorted(shares.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"  {statistics.median(values) * 100:5.1f}%  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warc", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    pages = read_pages(args.warc)
    n = len(pages)
    print(f"{n} pages from {args.warc}")
    cold, _base, _wall, _seen, _stages = runner_run(args.warc, pages)  # first use: lazy imports, tables
    print(f"first run in this process (one-time set-up included): {cold / n * 1000:.1f} ms CPU/page")
    whole, core, rates, shares = [], [], [], defaultdict(list)
    for i in range(args.repeats):
        cpu, base, wall, seen, stages = runner_run(args.warc, pages)
        whole.append(cpu / base)
        rates.append(seen / wall)
        for name, seconds in stages.items():
            shares[name].append(seconds / cpu)
        core_cpu, core_base, _core_wall, _ = pipeline_run(pages)
        core.append(core_cpu / core_base)
        print(f"run {i + 1}: reprint ingest {cpu / n * 1000:.1f} ms CPU/page, extraction alone "
              f"{base / n * 1000:.1f} ms/page, ratio {cpu / base:.2f}, {seen / wall:.1f} pages/s; "
              f"ingest_page alone, interleaved with the baseline: ratio {core_cpu / core_base:.2f}")
    print(f"\nmedian pages/s: {statistics.median(rates):.1f}")
    print(f"median CPU ratio, reprint ingest / extraction alone: {statistics.median(whole):.2f} (target ≤ 1.25)")
    print(f"median CPU ratio, ingest_page loop / extraction alone (interleaved): {statistics.median(core):.2f}")
    print("median share of reprint ingest's CPU by stage:")
    _stage_table(shares)
    print("  (the rest: WARC reading, the event loop, per-item transactions and checkpoints, the summary)")


if __name__ == "__main__":
    main()
