"""Hostile-page benchmark: per page of the hostile corpus, the peak memory above the process's baseline,
the wall and CPU time, and the outcome, as ``reprint ingest`` handles it.

    python benchmarks/hostile_bench.py [--code DIR] [--compare DIR] [--repeats N] [--timeout S]

Each page (tests/support/hostile.py, all under the 10 MB body cap) is written to a WARC of its own and
ingested by ``run_ingest`` in a fresh Python process whose ``pipeline`` comes from ``--code`` (default:
this checkout). That process first ingests a small ordinary page (imports, the extraction worker and
its warm-up happen there), then measures the hostile page alone:

- memory: the ingesting process's peak RSS above its RSS before the page (its peak is reset then), plus,
  where extraction runs in workers (``pipeline.extract.isolated``), the worker's peak above its own
  baseline. The two peaks may not coincide, so their sum is an upper bound. Target: under 300 MB.
- time: wall seconds, and CPU seconds of the process and of its extraction workers.
- outcome: ``article`` (with the warning's gist), or the error kind recorded against the page.

``--compare DIR`` runs the same pages against a second checkout first (for example the code before the
limits: ``git worktree add /tmp/hostile-before 120acc4``) and prints both side by side. Older code has no
bound on one page, so each process gets ``--timeout`` seconds (default 300) and a 6 GB address-space cap.
Medians over ``--repeats`` (default 1).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_MB = 300
WARM_UP = (b"<!DOCTYPE html><html><head><title>Warm-up</title></head><body><article>"
           + b"<p>An ordinary page first, so that imports and start-up are not counted. </p>" * 8
           + b"</article></body></html>")


def write_warc(path: Path, url: str, body: bytes) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True)
    http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                       ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
    writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http))
    path.write_bytes(buffer.getvalue())


# --- the measuring process (run with the code under test on PYTHONPATH) ----------------------------
def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


def child(warm: str, warc: str) -> None:
    """Ingest ``warm``, then measure ``warc``; print one JSON line."""
    from pipeline.ingest.runner import run_ingest
    from pipeline.settings import Settings
    from pipeline.store.store import Store

    try:
        from pipeline.extract import shared_usage
    except ImportError:  # code from before isolated extraction: everything happens in this process
        shared_usage = None

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/bench.db")
        settings = Settings()
        run_ingest([warm], store, settings, progress=False)
        workers_before = shared_usage() if shared_usage else None
        Path("/proc/self/clear_refs").write_text("5")  # peak RSS := RSS now
        baseline = _status("VmRSS")
        wall, cpu = time.perf_counter(), time.process_time()
        summary = run_ingest([warc], store, settings, progress=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        peak = _status("VmHWM") - baseline
        worker_peak = worker_cpu = 0.0
        if shared_usage is not None:
            after = shared_usage()
            worker_cpu = after.cpu_seconds - workers_before.cpu_seconds
            worker_peak = after.peak_rss  # the worker's (or its replacement's) peak above its baseline
        errors = [e for e in store.errors(summary.run_id) if e.level == "error"]
        warnings = [e for e in store.errors(summary.run_id) if e.level == "warning"]
        if errors:
            outcome = errors[0].kind
        elif summary.articles:
            outcome = "article" + (" (reduced)" if any("cut" in w.message or "dropped" in w.message
                                                       for w in warnings) else "")
        else:
            outcome = "nothing"
        store.close()
    print(json.dumps({"wall": wall, "cpu": cpu + worker_cpu, "peak_mb": (peak + worker_peak) / 2**20,
                      "parent_mb": peak / 2**20, "worker_mb": worker_peak / 2**20, "outcome": outcome}))


# --- the driver ----------------------------------------------------------------------------------------
def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, resource.RLIM_INFINITY))


def measure(code: Path, warm: Path, warc: Path, timeout: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code)}
    env = {k: v for k, v in env.items() if not k.startswith("REPRINT_")}
    try:
        done = subprocess.run([sys.executable, __file__, "--child", str(warm), str(warc)], env=env,
                              capture_output=True, text=True, timeout=timeout, preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        return {"wall": timeout, "cpu": float("nan"), "peak_mb": float("nan"), "outcome": f"> {timeout:g} s"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"wall": float("nan"), "cpu": float("nan"), "peak_mb": float("nan"), "outcome": f"crash: {last[:40]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(code: Path, pages: dict[str, Path], warm: Path, repeats: int, timeout: float) -> dict[str, dict]:
    results = {}
    for name, warc in pages.items():
        runs = [measure(code, warm, warc, timeout) for _ in range(repeats)]
        results[name] = {key: statistics.median(r[key] for r in runs) for key in ("wall", "cpu", "peak_mb")}
        results[name]["outcome"] = runs[-1]["outcome"]
        print(f"  {code}: {name}: {results[name]}", file=sys.stderr, flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose pipeline is measured")
    parser.add_argument("--compare", type=Path, help="a second checkout, measured first (e.g. older code)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    sys.path.insert(0, str(ROOT))
    from tests.support.hostile import BODY_CAP, HOSTILE

    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warm.warc.gz"
        write_warc(warm, "https://warm-up.example/page", WARM_UP)
        pages, sizes = {}, {}
        for name, make in HOSTILE.items():
            body = make()
            assert len(body) < BODY_CAP, name
            sizes[name] = len(body)
            pages[name] = Path(tmp) / f"{name}.warc.gz"
            write_warc(pages[name], f"https://hostile.example/{name}", body)
        columns = [(args.compare, run(args.compare, pages, warm, args.repeats, args.timeout))] if args.compare else []
        columns.append((args.code, run(args.code, pages, warm, args.repeats, args.timeout)))

    print(f"\nper hostile page: peak RSS above the baseline (MB), wall and CPU seconds, outcome; "
          f"medians of {args.repeats}")
    for code, _ in columns:
        print(f"  {'before' if code == args.compare else 'after'}: {code}")
    head = f"{'page':16} {'size':>7}"
    for code, _ in columns:
        tag = "before" if code == args.compare else "after"
        head += f" | {tag + ' MB':>9} {'wall':>6} {'CPU':>6} {'outcome':<24}"
    print(head)
    print("-" * len(head))
    for name in pages:
        line = f"{name:16} {sizes[name] / 2**20:6.1f}M"
        for _code, results in columns:
            r = results[name]
            line += f" | {r['peak_mb']:9.0f} {r['wall']:6.2f} {r['cpu']:6.2f} {r['outcome'][:24]:<24}"
        print(line)
    worst = max(columns[-1][1].values(), key=lambda r: r["peak_mb"] if r["peak_mb"] == r["peak_mb"] else 0)
    print(f"\nlargest peak ({columns[-1][0]}): {worst['peak_mb']:.0f} MB above the baseline "
          f"(target < {TARGET_MB} MB)")


if __name__ == "__main__":
    main()
