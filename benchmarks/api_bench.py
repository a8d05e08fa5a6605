#!/usr/bin/env python3
"""API latency: ``GET /articles`` and ``GET /changes`` with 50 concurrent clients over 100,000 stored articles.

Synthetic rows are bulk-inserted (pages, clusters, articles and their events, shaped like a real store: about a
third of the articles are copies in another article's cluster, some flagged). The server runs as its own
process (``uvicorn --factory pipeline.serve.api:app_from_env``, httptools and uvloop, no access log) so the load
generator does not share its interpreter. Clients ask for different pages (random cursors across the whole
table, some with filters), so no answer is served from a warm single row.

The load generator is deliberately cheap, because it runs on the same 2-core machine as the server: every
request is built before the clock starts, and each of the 50 clients is a raw keep-alive HTTP/1.1 connection on
uvloop (write the request, read the head, read Content-Length bytes), a few tens of microseconds of client CPU per
request where an HTTP library costs several hundred. Its own CPU use is printed (``client cpu``) so the reader can
see how much of the machine the measurement took from the server.

Two loads per endpoint:
- closed loop: 50 clients, each sends its next request as soon as the previous answered (saturation: latency
  here is queueing behind the other 49, throughput is the figure);
- paced: 50 clients, each at a fixed rate (a downstream poller), which is the latency a client sees.

Each client opens its connection before the measured requests (its handshake time is not counted). Every load runs
``--repeats`` times and the medians of the p50 and p99 are reported (max is the largest seen).

    python benchmarks/api_bench.py [--rows 100000] [--clients 50] [--requests 3000] [--rates 4 8] [--repeats 3]
                                   [--workers 2] [--pg]

Target: p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.serve.cursors import encode_cursor  # noqa: E402
from pipeline.store import ArticleRow, ClusterRow, EventRow, PageRow, RunRow, SourceRow, Store  # noqa: E402

SITES = [f"Site {i}" for i in range(40)]
WORDS = ["harbour", "council", "library", "river", "budget", "ferry", "orchard", "museum", "bridge", "school",
         "market", "festival", "winter", "summer", "mayor", "engineers", "volunteers", "announced", "approved",
         "delayed", "expanded", "opened", "repaired", "funded", "reviewed"]


def fill(store: Store, rows: int, batch: int = 10_000) -> dict[str, int]:
    """Bulk-insert ``rows`` synthetic articles (with pages, clusters and events); returns counts."""
    rng = random.Random(7)
    start = datetime(2025, 1, 1)
    n_events = 0
    with store.engine.begin() as conn:
        conn.execute(insert(SourceRow), [{"id": 1, "spec": "synthetic", "spec_key": "0" * 40, "kind": "url_list",
                                          "created_at": start, "last_run_at": start}])
        conn.execute(insert(RunRow), [{"id": 1, "started_at": start, "finished_at": start + timedelta(hours=1),
                                       "sources": ["synthetic"], "counts": {"pages_seen": rows, "articles": rows}}])
    cluster_of: dict[int, int] = {}
    for lo in range(1, rows + 1, batch):
        hi = min(rows, lo + batch - 1)
        pages, clusters, articles, events = [], [], [], []
        for i in range(lo, hi + 1):
            at = start + timedelta(seconds=i * 300)  # 100,000 articles over about a year
            copy = i > 3 and rng.random() < 0.33
            canonical_of = rng.randint(max(1, i - 50), i - 1) if copy else i
            cid = cluster_of.get(canonical_of, canonical_of) if copy else i
            cluster_of[i] = cid
            if not copy:
                clusters.append({"id": i, "canonical_id": i, "size": 1, "created_at": at, "updated_at": at})
            flags = [] if not copy else rng.choice([[], [], ["spun"], ["scraped"]])
            title = " ".join(rng.choice(WORDS) for _ in range(8)).capitalize()
            pages.append({"id": i, "url": f"https://site{i % 40}.example/a/{i}", "url_key": f"{i:040d}",
                          "source_id": 1, "status": 200, "headers": {}, "content_hash": f"{i:040x}",
                          "html_gz": b"", "fetched_at": at})
            articles.append({"id": i, "page_id": i, "url": f"https://site{i % 40}.example/a/{i}", "title": title,
                             "text": title + ". " + " ".join(rng.choice(WORDS) for _ in range(60)),
                             "published": (at - timedelta(hours=2)).date().isoformat(), "site": SITES[i % 40],
                             "canonical_url": None, "language": "en", "byline": None, "meta": {}, "n_tokens": 68,
                             "cluster_id": cid, "is_canonical": not copy, "flags": flags,
                             "evidence": {f: {"score": 0.5} for f in flags}, "similarity": 0.9 if copy else 1.0,
                             "created_at": at, "updated_at": at})
            events.append({"at": at, "type": "article_added", "cluster_id": i, "article_id": i,
                           "data": {"url": f"https://site{i % 40}.example/a/{i}", "canonical": True}})
            if copy:
                events.append({"at": at, "type": "canonical_status", "cluster_id": cid, "article_id": i,
                               "data": {"canonical": False}})
                events.append({"at": at, "type": "clusters_merged", "cluster_id": cid, "article_id": None,
                               "data": {"merged": [i], "into": cid}})
                if flags:
                    events.append({"at": at, "type": "flags_changed", "cluster_id": cid, "article_id": i,
                                   "data": {"old": [], "new": flags}})
        with store.engine.begin() as conn:
            conn.execute(insert(PageRow), pages)
            if clusters:
                conn.execute(insert(ClusterRow), clusters)
            conn.execute(insert(ArticleRow), articles)
            conn.execute(insert(EventRow), events)
        n_events += len(events)
    if store.engine.dialect.name == "postgresql":
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return {"articles": rows, "events": n_events}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db_url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPRINT_")} | {"REPRINT_DATABASE_URL": db_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "pipeline.serve.api:app_from_env", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log",
         "--backlog", "1024"],
        cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the API server did not start")


def articles_request(rng: random.Random, rows: int) -> tuple[str, dict[str, Any]]:
    """Canonical articles, 50 a page: the first page (30%) or a page at a random cursor anywhere in the table."""
    params: dict[str, Any] = {"limit": 50}
    if rng.random() < 0.7:
        params["cursor"] = encode_cursor("a", rng.randint(0, rows))
    return "/articles", params


def filtered_request(rng: random.Random, rows: int) -> tuple[str, dict[str, Any]]:
    """The same with one filter: a site (1 in 40), a flag (copies too), a publication date, a title word."""
    path, params = articles_request(rng, rows)
    roll = rng.random()
    if roll < 0.3:
        params["site"] = rng.choice(SITES)
    elif roll < 0.6:
        params.update(flag=rng.choice(["spun", "scraped"]), canonical="any")
    elif roll < 0.8:
        params["published_since"] = f"2025-{rng.randint(1, 12):02d}-01"
    else:
        params["q"] = rng.choice(WORDS)
    return path, params


def changes_request(rng: random.Random, events: int) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {"limit": 100}
    if rng.random() < 0.95:
        params["cursor"] = encode_cursor("e", rng.randint(0, events))
    return "/changes", params


def prepare(make: Any, clients: int, total: int, host: str) -> list[list[bytes]]:
    """Every client's requests, as the bytes it will send (made before the clock starts)."""
    out = []
    for k in range(clients):
        rng = random.Random(k)
        reqs = []
        for _ in range(total // clients):
            path, params = make(rng)
            target = f"{path}?{urlencode(params)}" if params else path
            reqs.append(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        out.append(reqs)
    return out


async def fetch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One request on a keep-alive connection; returns the status (the body is read and dropped)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    if length:
        await reader.readexactly(length)
    return status


async def load(url: str, make: Any, clients: int, total: int, rate: float | None) -> tuple[list[float], float, int]:
    """``total`` requests from ``clients`` concurrent clients; ``rate`` = requests/s per client (None: closed loop)."""
    host, port = url.removeprefix("http://").split(":")
    work = prepare(make, clients, total, f"{host}:{port}")
    latencies: list[float] = []
    errors = 0
    ready = asyncio.Event()
    connected = 0
    clock = time.perf_counter

    async def client(k: int) -> None:
        nonlocal errors, connected
        rng = random.Random(k)
        interval = 1.0 / rate if rate else 0.0
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            # the connection is opened and used once before the measured requests: a poller keeps its connection,
            # and a TCP handshake queued behind 49 others is not what a steady client sees
            await fetch(reader, writer, f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            connected += 1
            await ready.wait()
            next_at = clock() + rng.random() * interval
            for request in work[k]:
                if interval:
                    delay = next_at - clock()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    next_at += interval
                started = clock()
                status = await fetch(reader, writer, request)
                latencies.append((clock() - started) * 1000)
                if status != 200:
                    errors += 1
        finally:
            writer.close()

    tasks = [asyncio.ensure_future(client(k)) for k in range(clients)]
    while connected < clients and not any(t.done() for t in tasks):
        await asyncio.sleep(0.01)
    started = clock()
    ready.set()
    await asyncio.gather(*tasks)
    return latencies, clock() - started, errors


def run_load(url: str, make: Any, clients: int, total: int,
             rate: float | None) -> tuple[list[float], float, int, float]:
    """``load`` on a fresh event loop (uvloop when installed); also returns the client's CPU share of one core."""
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    cpu = time.process_time()
    lat, wall, errors = runner(load(url, make, clients, total, rate))
    return lat, wall, errors, (time.process_time() - cpu) / wall


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 10) - 1] if len(values) > 10 else max(values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=3000, help="per endpoint and load")
    ap.add_argument("--rates", type=float, nargs="+", default=[4.0, 8.0],
                    help="requests/s per client in the paced loads (50 x 4/s = 200 req/s offered)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each load; the medians are reported")
    ap.add_argument("--only", nargs="+", choices=["articles", "changes", "filtered"],
                    default=["articles", "changes", "filtered"], help="which listings to measure")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    ap.add_argument("--pg", action="store_true", help="PostgreSQL on 127.0.0.1:5432 instead of SQLite")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="reprint-api-bench-"))
    pg_name = None
    if args.pg:
        import psycopg

        pg_name = f"reprint_api_bench_{secrets.token_hex(4)}"
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        db_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{pg_name}"
    else:
        db_url = f"sqlite:///{tmp / 'bench.db'}"
    try:
        store = Store(db_url)
        t0 = time.perf_counter()
        counts = fill(store, args.rows)
        store.close()
        print(f"{store.engine.dialect.name}: inserted {counts['articles']:,} articles and {counts['events']:,} events "
              f"in {time.perf_counter() - t0:.1f}s; {args.workers} server worker(s), {args.clients} clients, "
              f"{args.requests} requests a run, medians of {args.repeats} runs")
        proc, url = start_server(db_url, args.workers)
        try:
            listings = {"articles": ("GET /articles", lambda rng: articles_request(rng, args.rows)),
                        "changes": ("GET /changes", lambda rng: changes_request(rng, counts["events"])),
                        "filtered": ("GET /articles?filter", lambda rng: filtered_request(rng, args.rows))}
            for name, make in (listings[k] for k in args.only):
                run_load(url, make, args.clients, min(1000, args.requests), None)  # warm-up
                loads = [("closed loop", None)] + [(f"paced {r:g}/s/client", r) for r in args.rates]
                for label, rate in loads:
                    runs = [run_load(url, make, args.clients, args.requests, rate) for _ in range(args.repeats)]
                    p50 = statistics.median(pct(r[0], 50) for r in runs)
                    p99 = statistics.median(pct(r[0], 99) for r in runs)
                    peak = max(max(r[0]) for r in runs)
                    errors = sum(r[2] for r in runs)
                    throughput = statistics.median(len(r[0]) / r[1] for r in runs)
                    cpu = statistics.median(r[3] for r in runs)
                    verdict = "ok" if p99 <= 50 else "OVER"
                    print(f"{name:21s} {label:20s} n={len(runs[0][0]):5d}x{len(runs)} errors={errors} "
                          f"p50={p50:6.1f} ms  p99={p99:6.1f} ms ({verdict})  max={peak:6.1f} ms  "
                          f"throughput={throughput:5.0f} req/s  client cpu={cpu:4.0%}", flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    finally:
        if pg_name:
            import psycopg

            with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
