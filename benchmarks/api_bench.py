#!/usr/bin/env python3
"""API latency: ``GET /articles`` and ``GET /changes`` with 50 concurrent clients over 100,000 stored articles.

Synthetic rows are bulk-inserted (pages, clusters, articles and their events, shaped like a real store: about a
third of the articles are copies in another article's cluster, some flagged). The server runs as its own
process (``uvicorn --factory pipeline.api:app_from_env``) so the load generator does not share its interpreter.
Clients are httpx async, each with its own keep-alive connection, and ask for different pages (random cursors
across the whole table, some with filters), so no answer is served from a warm single row.

Two loads per endpoint:
- closed loop: 50 clients, each sends its next request as soon as the previous answered (saturation: latency
  here is mostly queueing, and throughput is the figure);
- paced: 50 clients, each at a fixed rate (a downstream poller), which is the latency a client sees.

Each client opens its connection before the measured requests (its handshake time is not counted). The load
generator runs on the same 2-core machine as the server, so at 400 req/s it competes with it for the CPU.

    python benchmarks/api_bench.py [--rows 100000] [--clients 50] [--requests 3000] [--rates 4 8] [--pg]

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

import httpx
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.queries import encode_cursor  # noqa: E402
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
        [sys.executable, "-m", "uvicorn", "--factory", "pipeline.api:app_from_env", "--host", "127.0.0.1",
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


async def load(url: str, make: Any, clients: int, total: int, rate: float | None) -> tuple[list[float], float, int]:
    """``total`` requests from ``clients`` concurrent clients; ``rate`` = requests/s per client (None: closed loop)."""
    latencies: list[float] = []
    connects: list[float] = []
    errors = 0
    per_client = total // clients
    ready = asyncio.Event()

    async def client(k: int) -> None:
        nonlocal errors
        rng = random.Random(k)
        interval = 1.0 / rate if rate else 0.0
        async with httpx.AsyncClient(base_url=url, timeout=30,
                                     limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)) as http:
            # the connection is opened (and timed apart) before the measured requests: a poller keeps its
            # connection, and a TCP handshake queued behind 49 others is not what a steady client sees
            started = time.perf_counter()
            await http.get("/healthz")
            connects.append((time.perf_counter() - started) * 1000)
            await ready.wait()
            next_at = time.perf_counter() + rng.random() * interval
            for _ in range(per_client):
                if interval:
                    delay = next_at - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    next_at += interval
                path, params = make(rng)
                started = time.perf_counter()
                response = await http.get(path, params=params)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    errors += 1

    tasks = [asyncio.ensure_future(client(k)) for k in range(clients)]
    while len(connects) < clients and not any(t.done() for t in tasks):
        await asyncio.sleep(0.01)
    started = time.perf_counter()
    ready.set()
    await asyncio.gather(*tasks)
    load.last_connect_p99 = pct(connects, 99) if connects else 0.0  # type: ignore[attr-defined]
    return latencies, time.perf_counter() - started, errors


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 10) - 1] if len(values) > 10 else max(values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=3000, help="per endpoint and load")
    ap.add_argument("--rates", type=float, nargs="+", default=[4.0, 8.0],
                    help="requests/s per client in the paced loads (50 x 4/s = 200 req/s offered)")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
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
              f"in {time.perf_counter() - t0:.1f}s")
        proc, url = start_server(db_url, args.workers)
        try:
            for name, make in (("GET /articles", lambda rng: articles_request(rng, args.rows)),
                               ("GET /changes", lambda rng: changes_request(rng, counts["events"])),
                               ("GET /articles?filter", lambda rng: filtered_request(rng, args.rows))):
                asyncio.run(load(url, make, args.clients, min(500, args.requests), None))  # warm-up
                loads = [("closed loop", None)] + [(f"paced {r:g}/s/client", r) for r in args.rates]
                for label, rate in loads:
                    lat, wall, errors = asyncio.run(load(url, make, args.clients, args.requests, rate))
                    print(f"{name:21s} {label:20s} n={len(lat):5d} errors={errors} "
                          f"p50={pct(lat, 50):6.1f} ms  p99={pct(lat, 99):6.1f} ms  max={max(lat):6.1f} ms  "
                          f"throughput={len(lat) / wall:6.0f} req/s")
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
