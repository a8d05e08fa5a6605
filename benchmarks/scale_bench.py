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
import compileall
import io
import json
import os
import shutil
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


def startup_cpu(work: Path, runs: int = 3) -> float:
    """CPU of ``reprint ingest`` of one small page into an empty store: what every run pays before a page. The
    median of ``runs``: one run's start-up varies by a few tenths of a second, which is most of what a 50-page
    story costs beyond it (a single run put the 50-copy story anywhere from 3 to 29 ms a page)."""
    warc = work / "one.warc.gz"
    write_warc(warc, synth.unrelated_pages(1, seed=99))
    db = work / "startup.db"
    cpu = []
    for _ in range(runs):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        cpu.append(reprint("ingest", "--no-progress", "--db", f"sqlite:///{db}", str(warc)).cpu)
    return median(cpu)


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
    with tempfile.TemporaryDirectory(prefix="reprint-scale-", dir=args.tmp) as tmp:
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


def fill_store(db: Path, count: int, *, real: bool = True, seed: int = 3) -> None:
    """A store of ``count`` unrelated articles made through the store's API, as ingest would leave them (page,
    article, cluster, signature, index rows), without HTML to extract. ``real``: signatures of real synthetic
    text, indexed article by article as ingest does; else random MinHash values and a short text, and the index
    built in one sorted pass (``StoreLSHIndex`` writes sorted batches; one pass is its limit), so that a
    million rows take minutes (the start-up test)."""
    import random as rnd

    import numpy as np

    from pipeline.dedup.fingerprint import KINDS, fingerprint_tokens
    from pipeline.dedup.index import StoreLSHIndex, band_keys
    from pipeline.records import Article, Page, Signature
    from pipeline.store import Store
    from pipeline.text import tokenize

    store = Store(f"sqlite:///{db}")
    index = StoreLSHIndex(store)
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    batch = 1000
    keys: list[np.ndarray] = []
    for first in range(0, count, batch):
        with store.unit():
            for n in range(first, min(count, first + batch)):
                r = rnd.Random(f"fill:{seed}:{n}")
                url = f"https://stored{n % 9973}.example/{n}"
                if real:
                    text = "\n\n".join(synth.article_paragraphs(r))
                    sig = fingerprint_tokens(tokenize(text))
                else:
                    text = f"Stored article {n}."
                    sig = Signature({k: rng.integers(0, 2**32, 128, dtype=np.uint32) for k in KINDS}, 400)
                article = Article(url=url, title=f"Stored {n}", text=text, paragraphs=tuple(text.split("\n\n")),
                                  published=f"20{10 + n % 15}-01-01", site=f"Stored {n % 9973}")
                page_id = store.add_page(Page(url, b"<html></html>", headers={"content-type": "text/html"}), None)
                article_id, _cluster, _new = store.add_article_once(page_id, article, sig)
                if real:
                    index.insert(article_id, sig)
                else:
                    keys.append(np.array([(k, article_id) for k in band_keys(sig)], dtype=np.int64))
            if real and first + batch >= count:
                index.merge()
        done = min(count, first + batch)
        if done % (batch * 20) == 0 or done == count:
            rate = done / (time.perf_counter() - started)
            print(f"    stored {done:,}/{count:,} articles ({rate:,.0f}/s)", flush=True)
    if not real:
        rows = np.concatenate(keys)
        del keys
        rows = rows[np.lexsort((rows[:, 1], rows[:, 0]))]
        for start in range(0, len(rows), 200_000):
            with store.unit():
                store.add_bands([(int(k), int(a)) for k, a in rows[start : start + 200_000]])
        store.set_mark(StoreLSHIndex.MARK, count)
        print(f"    indexed {len(rows):,} bucket entries in one sorted pass", flush=True)
    store.close()


def fill_elsewhere(db: Path, count: int, *, real: bool) -> None:
    """``fill_store`` in a process of its own: a child's peak RSS counts what it inherits at fork, so the
    measuring process must not hold the filling's memory."""
    args = [sys.executable, __file__, "fill", "--fill-db", str(db), "--rows", str(count)]
    if not real:
        args.append("--synthetic")
    subprocess.run(args, check=True, cwd=ROOT)


def copy_db(src: Path, dst: Path) -> None:
    """A copy of a store, written through to the disk before it is used: a just-copied 4 GB file is written back
    by the kernel for tens of seconds, and a run measured meanwhile paid for that (a million-article store's
    start-up measured +1.7-2.0 s just after the copy, +0.35-0.9 s once written back). A user's store has
    long been written when a run opens it."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
        if Path(f"{src}{suffix}").exists():
            shutil.copyfile(f"{src}{suffix}", f"{dst}{suffix}")
            with open(f"{dst}{suffix}", "rb") as fh:
                os.fsync(fh.fileno())


def side_by_side(work: Path, stores: dict[str, Path | None], source: Path) -> dict[str, tuple[Run, Path]]:
    """``reprint ingest source`` into each store in turn (None: an empty one; else a fresh copy of that file)."""
    out = {}
    for name, original in stores.items():
        db = work / f"run-{name}.db"
        if original is None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
        else:
            copy_db(original, db)
        done = reprint("ingest", "--no-progress", "--db", f"sqlite:///{db}", str(source))
        if done.code not in (0, 1):
            raise SystemExit(done.out)
        out[name] = (done, db)
    return out


def corpus(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="reprint-scale-", dir=args.tmp) as tmp:
        work = Path(tmp)
        new = work / "new.warc.gz"
        write_warc(new, synth.unrelated_pages(args.new, seed=11, first=10_000_000))
        big = work / "big.db"
        if args.store_db:
            print(f"  using the store {args.store_db} (made by an earlier run with --keep-store)", flush=True)
            copy_db(Path(args.store_db), big)
        else:
            print(f"  filling a store of {args.store:,} articles through the store's API ...", flush=True)
            fill_elsewhere(big, args.store, real=True)
            if args.keep_store:
                copy_db(big, Path(args.keep_store))
        rows = []
        for rep in range(args.repeats):
            figures = {}
            for name, (done, db) in side_by_side(work, {"empty": None, "big": big}, new).items():
                counts = last_run_counts(db)
                figures[name] = (done.cpu / args.new, done.rss, counts.get("verified_pairs", 0) / args.new)
            rows.append(figures)
            ratio = figures["big"][0] / figures["empty"][0]
            print(f"  repeat {rep + 1}: empty {figures['empty'][0] * 1000:.2f} ms/page, {args.store:,} stored "
                  f"{figures['big'][0] * 1000:.2f} ms/page: ratio {ratio:.2f}; aligned pairs per article "
                  f"{figures['empty'][2]:.2f} / {figures['big'][2]:.2f}; peak RSS {figures['big'][1] / 2**20:.0f} MB",
                  flush=True)
        ratio = median([r["big"][0] / r["empty"][0] for r in rows])
        print(f"\ncorpus size: {args.new:,} new pages into {args.store:,} stored articles vs an empty store, "
              f"per-page CPU ratio (start-up included), median of {args.repeats}: {ratio:.2f} (target <= 1.3); "
              f"candidate pairs aligned per new article: {median([r['big'][2] for r in rows]):.2f} "
              f"(true relatives: 0)")


def startup(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="reprint-scale-", dir=args.tmp) as tmp:
        work = Path(tmp)
        one = work / "one.html"
        one.write_text(next(synth.unrelated_pages(1, seed=5, first=20_000_000))[1])
        big = work / "million.db"
        if args.store_db:
            copy_db(Path(args.store_db), big)
        else:
            print(f"  filling a store of {args.rows:,} synthetic articles through the store's API ...", flush=True)
            fill_elsewhere(big, args.rows, real=False)
            if args.keep_store:
                copy_db(big, Path(args.keep_store))
        print(f"  store: {big.stat().st_size / 2**30:.2f} GB")
        rows = []
        for rep in range(args.repeats):
            runs = side_by_side(work, {"empty": None, "full": big}, one)
            figures = {name: done for name, (done, _db) in runs.items()}
            rows.append(figures)
            print(f"  repeat {rep + 1}: empty {figures['empty'].wall:.2f} s / {figures['empty'].rss / 2**20:.0f} MB, "
                  f"{args.rows:,} stored {figures['full'].wall:.2f} s / {figures['full'].rss / 2**20:.0f} MB",
                  flush=True)
        slower = median([r["full"].wall - r["empty"].wall for r in rows])
        rss = max(r["full"].rss for r in rows)
        print(f"\nstart-up: `reprint ingest one.html` with {args.rows:,} stored articles is {slower:+.2f} s against an "
              f"empty store (target <= 2 s), peak RSS {rss / 2**20:.0f} MB (target <= 1 GB)")


def extraction_alone_cmd(warc: Path) -> list[str]:
    """A process that does what trafilatura alone would: read the WARC, extract every HTML record."""
    code = (
        "import sys, trafilatura\n"
        "from warcio.archiveiterator import ArchiveIterator\n"
        f"with open({str(warc)!r}, 'rb') as fh:\n"
        "    for r in ArchiveIterator(fh):\n"
        "        if r.rec_type == 'response':\n"
        "            body = r.content_stream().read()\n"
        "            trafilatura.bare_extraction(body, url=r.rec_headers.get_header('WARC-Target-URI'),"
        " with_metadata=True, include_comments=False)\n"
    )
    return [sys.executable, "-c", code]


def constant(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="reprint-scale-", dir=args.tmp) as tmp:
        work = Path(tmp)
        short = work / "short.warc.gz"
        write_warc(short, synth.unrelated_pages(600, seed=21, first=30_000_000, words=(150, 380)))
        corpora = [("dev WARC", DEV_WARC)] if DEV_WARC.exists() else []
        corpora.append(("short pages (<400 words)", short))

        def ratio(warc: Path, env: dict[str, str]) -> tuple[float, float, float]:
            db = work / "constant.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            base = run(*extraction_alone_cmd(warc), env=clean_env())
            ours = reprint("ingest", "--no-progress", "--db", f"sqlite:///{db}", str(warc), env=env)
            return ours.cpu, base.cpu, ours.cpu / base.cpu

        for k, (name, warc) in enumerate(corpora):
            # reprint compiles each wordfreq list it needs once per machine (REPRINT_CACHE_DIR): one run with an
            # empty cache shows that first run's cost; the repeats use the machine's cache, as later runs do
            ours, base, cold = ratio(warc, clean_env(REPRINT_CACHE_DIR=str(work / f"empty-cache-{k}")))
            print(f"  {name}, first run on a machine (empty cache): reprint ingest {ours:.2f} s CPU, trafilatura "
                  f"alone {base:.2f} s: {cold:.2f}", flush=True)
            ratios = []
            for rep in range(args.repeats):
                ours, base, r = ratio(warc, clean_env())
                ratios.append(r)
                print(f"  {name}, repeat {rep + 1}: reprint ingest {ours:.2f} s CPU, trafilatura alone "
                      f"{base:.2f} s: {r:.2f}", flush=True)
            print(f"constant factor on {name}: whole-process CPU ratio, median of {args.repeats}: "
                  f"{median(ratios):.2f} (target <= 1.25); first run on a machine {cold:.2f}\n")


def celery(args: argparse.Namespace) -> None:
    import workers_bench

    sizes = [int(n) for n in args.copies.split(",")]
    with tempfile.TemporaryDirectory(prefix="reprint-scale-", dir=args.tmp) as tmp:
        work = Path(tmp)
        per = {}
        for n in sizes:
            pages, original = synth.wire_story(n)
            warc = work / f"story-{n}.warc.gz"
            write_warc(warc, ((u, h) for u, h, _k in pages))
            seconds, seen = workers_bench.measure(warc, 2, work / f"celery-{n}.jsonl", work)
            per[n] = seconds / seen
            kinds = {u: k for u, _h, k in pages}
            records = [json.loads(line) for line in (work / f"celery-{n}.jsonl").open()]
            clusters = {r["cluster_id"] for r in records}
            canon = [r["url"] for r in records if r["canonical"]]
            spun = {r["url"] for r in records if "spun" in r["flags"]}
            truth = {u for u, k in kinds.items() if k == "spun"}
            print(f"  {n:>5} copies through 2 Celery workers: {seconds:.1f} s, {per[n] * 1000:.1f} ms/page; "
                  f"{len(clusters)} cluster(s), original canonical: {canon == [original]}, spun flagged "
                  f"{len(spun & truth)}/{len(truth)} (+{len(spun - truth)} others)", flush=True)
        small = min(sizes)
        for n in sizes:
            print(f"celery cluster size: {n} copies {per[n] * 1000:.1f} ms/page = {per[n] / per[small]:.2f}x "
                  f"{small} copies (target <= 1.5)")


def parallel(args: argparse.Namespace) -> None:
    import workers_bench

    with tempfile.TemporaryDirectory(prefix="reprint-scale-", dir=args.tmp) as tmp:
        work = Path(tmp)
        stories = max(1, args.pages // 500)
        pages: list[tuple[str, str]] = []
        for k in range(stories):
            story, _original = synth.wire_story(99, seed=100 + k)
            pages += [(u, h) for u, h, _k in story]
        pages += list(synth.unrelated_pages(args.pages - len(pages), seed=31, first=40_000_000))
        synth.random.Random(9).shuffle(pages)
        warc = work / "mixed.warc.gz"
        write_warc(warc, pages)
        print(f"  {len(pages):,} pages: {stories} stories of 100 versions, the rest unrelated", flush=True)
        rate, busy = {}, {}
        for processes in (1, 2):
            (busy0, stolen0), start = machine_seconds(), time.monotonic()
            seconds, seen = workers_bench.measure(warc, processes, work / f"parallel-{processes}.jsonl", work)
            (busy1, stolen1), wall = machine_seconds(), time.monotonic() - start
            busy[processes] = (busy1 - busy0) / wall
            rate[processes] = seen / seconds
            print(f"  {processes} worker process(es): {seen:,} pages in {seconds:.0f} s = {rate[processes]:.1f} "
                  f"pages/s; the machine's CPUs busy: {busy[processes]:.2f} of {os.cpu_count()}, taken by the host "
                  f"(steal): {(stolen1 - stolen0) / wall:.2f}", flush=True)
        print(f"\nparallel: 2 workers / 1 = {rate[2] / rate[1]:.2f} (target >= 1.8)")
        # Everything runs on this machine: the worker, its extraction processes, PostgreSQL, Redis, the client. What
        # one worker process keeps busy bounds what a second can add on the CPUs there are.
        print(f"the 1-process run kept {busy[1]:.2f} CPUs busy: on {os.cpu_count()} CPUs the ratio can reach at most "
              f"{(os.cpu_count() or 1) / busy[1]:.2f}; per busy CPU, 2 processes did "
              f"{rate[2] / busy[2] / (rate[1] / busy[1]):.2f}x the work of 1")


def machine_seconds() -> tuple[float, float]:
    """(busy, stolen): CPU seconds since boot the whole machine spent running (every CPU, every process) and the
    seconds the hypervisor took from it (steal), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]] + [0] * 8
    tick = os.sysconf("SC_CLK_TCK")
    busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6]  # user nice system irq softirq
    return busy / tick, fields[7] / tick


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["corpus", "cluster", "celery", "startup", "constant", "parallel", "all",
                                         "fill"])
    parser.add_argument("--copies", default="50,2000")
    parser.add_argument("--store", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tmp", default=None, help="where the temporary stores go (default: the system's)")
    parser.add_argument("--store-db", default=None, help="corpus, startup: reuse this filled store")
    parser.add_argument("--keep-store", default=None, help="corpus, startup: keep the filled store at this path")
    parser.add_argument("--fill-db", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--synthetic", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # reprint as installed (``make install`` compiles its bytecode): no run below pays for compiling its modules
    for package in ("pipeline", "workers"):
        compileall.compile_dir(str(ROOT / package), quiet=1)
    if args.part == "fill":
        fill_store(Path(args.fill_db), args.rows, real=not args.synthetic)
        return
    parts = {"corpus": corpus, "cluster": cluster, "celery": celery, "startup": startup, "constant": constant,
             "parallel": parallel}
    for name, part in parts.items():
        if args.part in (name, "all"):
            print(f"== {name}", flush=True)
            part(args)


if __name__ == "__main__":
    main()
