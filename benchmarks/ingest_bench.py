"""Ingest benchmark: pages/s, each stage's share of CPU, and the pipeline's CPU per page against
trafilatura extraction alone on the same pages (the ratio is the figure; target ≤ 1.25).

    python benchmarks/ingest_bench.py [WARC] [--repeats N]

Reads ../shared/eval/dev/corpus.warc.gz by default. Medians over repeats; one process, one run, so the
ratio is measured on the same noisy machine at the same moment.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import trafilatura

import pipeline.dedup as dedup_module
from pipeline.dedup import Deduplicator
from pipeline.extract import extract
from pipeline.records import Page
from pipeline.settings import Settings
from pipeline.store import Store

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


def extraction_alone(pages: list[Page]) -> float:
    """CPU seconds for plain trafilatura extraction with metadata, the baseline."""
    start = time.process_time()
    for page in pages:
        trafilatura.bare_extraction(page.body, url=page.url, with_metadata=True, include_comments=False)
    return time.process_time() - start


def pipeline_run(pages: list[Page]) -> tuple[float, float, dict[str, float]]:
    """CPU seconds and wall seconds of the whole embedded pipeline, with per-stage CPU."""
    stages: dict[str, float] = defaultdict(float)
    real_verify = dedup_module.verify_articles

    def timed_verify(*args, **kwargs):
        t = time.process_time()
        try:
            return real_verify(*args, **kwargs)
        finally:
            stages["verify"] += time.process_time() - t

    dedup_module.verify_articles = timed_verify
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(f"sqlite:///{tmp}/bench.db")
            dedup = Deduplicator(store, Settings(), defer=True)  # as `reprint ingest` runs it
            wall, cpu = time.perf_counter(), time.process_time()
            for page in pages:
                t = time.process_time()
                page_id = store.add_page(page, None)
                stages["store page"] += time.process_time() - t
                t = time.process_time()
                try:
                    article, _warning = extract(page)
                except Exception:
                    stages["extract"] += time.process_time() - t
                    continue
                stages["extract"] += time.process_time() - t
                t = time.process_time()
                dedup.add(page_id, article)
                if len(dedup._dirty) >= 200:
                    dedup.flush()
                stages["dedup (fingerprint, match, verify, cluster, canonicalize, store)"] += time.process_time() - t
            t = time.process_time()
            dedup.flush()
            stages["dedup (fingerprint, match, verify, cluster, canonicalize, store)"] += time.process_time() - t
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            store.close()
    finally:
        dedup_module.verify_articles = real_verify
    return cpu, wall, dict(stages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warc", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    pages = read_pages(args.warc)
    print(f"{len(pages)} pages from {args.warc}")
    ratios, rates, shares = [], [], defaultdict(list)
    for i in range(args.repeats):
        base = extraction_alone(pages)
        cpu, wall, stages = pipeline_run(pages)
        ratios.append(cpu / base)
        rates.append(len(pages) / wall)
        for name, seconds in stages.items():
            shares[name].append(seconds / cpu)
        print(f"run {i + 1}: pipeline {cpu / len(pages) * 1000:.1f} ms CPU/page, extraction alone "
              f"{base / len(pages) * 1000:.1f} ms/page, ratio {cpu / base:.2f}, {len(pages) / wall:.1f} pages/s")
    print(f"\nmedian pages/s: {statistics.median(rates):.1f}")
    print(f"median CPU ratio pipeline / extraction alone: {statistics.median(ratios):.2f} (target ≤ 1.25)")
    print("median share of pipeline CPU by stage:")
    for name, values in sorted(shares.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"  {statistics.median(values) * 100:5.1f}%  {name}")
    print("  (verify is inside dedup; match + verify share target < 25%)")


if __name__ == "__main__":
    main()
