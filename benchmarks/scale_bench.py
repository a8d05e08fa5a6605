#!/usr/bin/env python3
"""Cost at scale: a big store, a story on thousands of sites, a million stored articles, the constant factor.

    python benchmarks/scale_bench.py corpus   [--store 100000] [--new 1000] [--repeats 3]
    python benchmarks/scale_bench.py cluster  [--copies 50,2000] [--repeats 3]
    python benchmarks/scale_bench.py celery   [--copies 50,2000]
    python benchmarks/scale_bench.py startup  [--rows 1000000]
    python benchmarks/scale_bench.py constant [--repeats 3]
    python benchmarks/scale_bench.py parallel [--pages 10000]
    python benchmarks/scale_bench.py all

Every figure is measured as ``reprint ingest`` runs for a user: a child process, its whole CPU (user + system,
start-up included) and peak RSS from ``wait4``; corpora are WARC files (``benchmarks/synth.py`` makes them), so
every page keeps its own URL. Ratios compare two runs made side by side in one invocation, medians over repeats,
because this machine's speed drifts by a tenth within seconds.

- **corpus**: 1,000 new unrelated pages into an empty store and into a store of 100,000 articles (made through
  the store's own API: real signatures and index rows, no HTML fetched), per-page CPU ratio (target ≤ 1.3), and
  the mean number of candidate pairs that reached alignment per new article (it should stay near the true
  relatives, here 0, whatever the store size).
- **cluster**: one wire story with N copies (verbatim with other boilerplate, trimmed, attributed, lightly spun)
  in random order: per-page CPU beyond start-up (target: 2,000 copies ≤ 1.5× 50 copies), peak RSS (≤ 600 MB),
  database bytes per page (≤ 1.5× the 50-copy story's), and that the story is one cluster with the original as
  canonical and its spun copies flagged.
- **celery**: the same stories through ``--via celery`` with 2 worker processes on PostgreSQL and a private Redis.
- **startup**: ``reprint ingest one.html`` against an empty store and against 1,000,000 stored articles (synthetic
  rows through the store's API): wall time and peak RSS (targets: ≤ 2 s slower, ≤ 1 GB).
- **constant**: whole-process CPU of ``reprint ingest`` over trafilatura extraction alone (a process that reads
  the same WARC and extracts every record), on the dev WARC and on a corpus of short pages (target ≤ 1.25).
- **parallel**: 10,000 pages mixing big stories with unrelated pages through 2 Celery workers and through 1
  (target ≥ 1.8×).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import synth  # noqa: E402

DEV_WARC = ROOT.parent / "shared" / "eval" / "dev" / "corpus.warc.gz"


# --- running reprint as a user does ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Run:
    """One child process: wall and CPU seconds, peak RSS (bytes), exit code, output."""

    wall: float
    cpu: float
    rss: int
    code: int
    out: str


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Run a command to its end, measuring the child's own CPU and peak RSS (``wait4``)."""
    started = time.perf_counter()
    proc = subprocess.Popen(list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                            text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(time.perf_counter() - started, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024,
               proc.returncode, out)


def reprint(*args: str, env: dict[str, str] | None = None) -> Run:
    return run(sys.executable, "-m", "pipeline.cli", *args, env=env or clean_env(), cwd=ROOT)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPRINT_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def write_warc(path: Path, pages: Iterable[tuple[str, str]]) -> int:
    """A WARC of HTTP 200 text/html responses; returns how many records."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    n = 0
    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for url, body in pages:
            data = body.encode()
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                                  ("Content-Length", str(len(data)))], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(data),
                                                          http_headers=headers))
            n += 1
    return n


def last_run_counts(db: Path) -> dict:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT counts FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    return json.loads(row[0]) if row else {}


def median(values: list[float]) -> float:
    return statistics.median(values)


def startup_cpu(work: Path) -> float:
    """CPU of ``reprint ingest`` of one small page into an empty store: what every run pays before a page."""
    warc = work / "one.warc.gz"
    write_warc(warc, synth.unrelated_pages(1, seed=99))
    db = work / "startup.db"
    db.unlink(missing_ok=True)
    return reprint("ingest", "--no-progress", "--db", f"sqlite:///{db}", str(warc)).cpu


# --- cluster ----------------------------------------------------------------------------------------
def story_quality(db: Path, kinds: dict[str, str], original: str) -> dict[str, object]:
    """Clusters of the story's pages, whether the original is the canonical, precision/recall of ``spun``."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT url, cluster_id, is_canonical, flags FROM articles").fetchall()
    clusters = {r[1] for r in rows if r[0] in kinds}
    canonical = [r[0] for r in rows if r[2]]
    flagged = {r[0] for r in rows if "spun" in json.loads(r[3] or "[]")}
    truth = {u for u, k in kinds.items() if k == "spun"}
    return {"clusters": len(clusters), "original_canonical": canonical == [original],
            "spun_precision": round(len(flagged & truth) / len(flagged), 3) if flagged else None,
            "spun_recall": round(len(flagged & truth) / len(truth), 3) if truth else None}


def cluster(args: argparse.Namespace) -> None:
    sizes = [int(n) for n in args.copies.split(",")]
    with tempfile.TemporaryDirectory(prefix="reprint-scale-") as tmp:
        work = Path(tmp)
        warcs = {}
        for n in sizes:
            pages, original = synth.wire_story(n)
            warcs[n] = (work / f"story-{n}.warc.gz", {u: k for u, _h, k in pages}, original)
            write_warc(warcs[n][0], ((u, h) for u, h, _k in pages))
        rows: dict[int, list[tuple[float, int, float, dict]]] = {n: [] for n in sizes}
        for rep in range(args.repeats):
            base = startup_cpu(work)
            for n in sizes:
                warc, kinds, original = warcs[n]
                db = work / f"story-{n}.db"
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{db}{suffix}").unlink(missing_ok=True)
                done = reprint("ingest", "--no-progress", "--db", f"sqlite:///{db}", str(warc))
                if done.code not in (0, 1):
                    raise SystemExit(done.out)
                per_page = (done.cpu - base) / (n + 1)
                size = sum(Path(f"{db}{s}").stat().st_size for s in ("", "-wal") if Path(f"{db}{s}").exists())
                quality = story_quality(db, kinds, original)
                rows[n].append((per_page, done.rss, size / (n + 1), quality))
                print(f"  repeat {rep + 1}: {n:>5} copies  {per_page * 1000:7.2f} ms/page beyond start-up  "
                      f"peak RSS {done.rss / 2**20:6.0f} MB  {size / (n + 1) / 1024:6.1f} KB/page  {quality}",
                      flush=True)
        print("\ncluster size (embedded, SQLite), medians:")
        small = min(sizes)
        for n in sizes:
            per = median([r[0] for r in rows[n]])
            ratio = per / median([r[0] for r in rows[small]])
            db_ratio = median([r[2] for r in rows[n]]) / median([r[2] for r in rows[small]])
            print(f"  {n:>5} copies: {per * 1000:.2f} ms/page ({ratio:.2f}x {small}), peak RSS "
                  f"{max(r[1] for r in rows[n]) / 2**20:.0f} MB, {median([r[2] for r in rows[n]]) / 1024:.1f} KB/page "
                  f"({db_ratio:.2f}x), {rows[n][-1][3]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["cluster"])
    parser.add_argument("--copies", default="50,2000")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    {"cluster": cluster}[args.part](args)


if __name__ == "__main__":
    main()
