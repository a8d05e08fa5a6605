#!/usr/bin/env python3
"""Web UI latency: a 2,000-member cluster's page and its diff view, on SQLite and PostgreSQL.

Synthetic rows are bulk-inserted: one cluster of ``--members`` articles (news-length texts of ``--words`` words
with in-body links; a tenth spun, a tenth scraped, the rest republished with small edits, every member with its
evidence and feed events) among ``--background`` other articles, alone or in clusters of up to five (some copies
flagged), so the indexes hold more than the cluster. The server is its own process (``uvicorn --factory
pipeline.serve.api:app_from_env``, as ``reprint serve`` runs it), and one keep-alive client asks, one request
after the other:

- ``cluster page``: ``/ui/clusters/ID`` at a random page of members (``after=``), with the diff of the default
  member (the first flagged copy of the page) rendered, as an editor opening the cluster sees it;
- ``diff view``: ``/ui/clusters/ID?member=M`` for a random member M (its word-level diff against the canonical);
- ``cluster list``: ``/`` with a random order, filter or page (for information: the target is the first two).

Each is measured over ``--requests`` requests (after 20 warm-up ones), ``--repeats`` times; the medians of the
p50 and p99 are printed, with the largest p99 seen.

    python benchmarks/ui_bench.py [--members 2000] [--requests 200] [--repeats 3] [--sqlite-only | --pg-only]

Target: p99 <= 100 ms for both.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api_bench import start_server  # noqa: E402 - the same server process as the API benchmark's
from pipeline.store import ArticleRow, ClusterRow, EventRow, PageRow, RunRow, SourceRow, Store  # noqa: E402

PG_ADMIN = os.environ.get("REPRINT_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_URL = os.environ.get("REPRINT_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
VOCAB = ["harbour", "council", "library", "river", "budget", "ferry", "orchard", "museum", "bridge", "school",
         "market", "festival", "winter", "summer", "mayor", "engineers", "volunteers", "announced", "approved",
         "delayed", "expanded", "opened", "repaired", "funded", "reviewed", "residents", "station", "hospital",
         "university", "tram", "route", "stops", "track", "works", "cost", "grant", "million", "years", "city",
         "town", "county", "board", "chair", "leader", "said", "would", "could", "should", "their", "which", "after",
         "before", "during", "between", "across", "along"]
SYNONYMS = {"announced": "proclaimed", "approved": "ratified", "delayed": "postponed", "expanded": "enlarged",
            "opened": "inaugurated", "repaired": "mended", "funded": "financed", "reviewed": "scrutinised",
            "residents": "denizens", "said": "stated", "cost": "outlay", "city": "metropolis", "town": "township",
            "leader": "chieftain", "works": "labours"}
CLUSTER = 1


def story(rng: random.Random, words: int) -> tuple[str, list[list[Any]]]:
    """A text of about ``words`` words in paragraphs of ~70, with an in-body link every ~90 words."""
    paragraphs, links, pos = [], [], 0
    for _ in range(max(1, words // 70)):
        sentence_words = [rng.choice(VOCAB) for _ in range(70)]
        text = " ".join(sentence_words).capitalize() + "."
        for k in range(5, 60, 45):
            link = " ".join(sentence_words[k:k + 3])
            start = pos + len(" ".join(sentence_words[:k])) + 1
            links.append([link, f"https://origin.example/l/{len(links)}", start, len(paragraphs)])
        paragraphs.append(text)
        pos += len(text) + 2
    return "\n\n".join(paragraphs), links


def variant(rng: random.Random, text: str, links: list[list[Any]], kind: str) -> str:
    if kind == "spun":
        words = text.split(" ")
        return " ".join(SYNONYMS.get(w, w) if rng.random() < 0.6 else w for w in words)
    if kind == "scraped":  # every link's text gone, from the end so the offsets hold
        for link_text, _, start, _ in sorted(links, key=lambda x: -x[2]):
            if text[start:start + len(link_text)] == link_text:
                text = text[:start] + text[start + len(link_text) + 1:]
        return text
    words = text.split(" ")
    for _ in range(3):
        words[rng.randrange(len(words))] = rng.choice(VOCAB)
    return " ".join(words)


def fill(store: Store, members: int, background: int, words: int, batch: int = 2000) -> None:
    rng = random.Random(11)
    start = datetime(2025, 3, 1)
    base, links = story(rng, words)
    with store.engine.begin() as conn:
        conn.execute(insert(SourceRow), [{"id": 1, "spec": "synthetic", "spec_key": "0" * 40, "kind": "url_list",
                                          "created_at": start, "last_run_at": start}])
        conn.execute(insert(RunRow), [{"id": 1, "started_at": start, "finished_at": start + timedelta(hours=1),
                                       "sources": ["synthetic"], "counts": {"pages_seen": members + background}}])
        conn.execute(insert(ClusterRow), [{"id": CLUSTER, "canonical_id": 1, "size": members, "created_at": start,
                                           "updated_at": start}])
    total = members + background
    group = [0, 0]  # the background story being copied, and its articles so far
    for lo in range(1, total + 1, batch):
        pages, clusters, articles, events = [], [], [], []
        for i in range(lo, min(total, lo + batch - 1) + 1):
            at = start + timedelta(seconds=i * 60)
            url = f"https://site{i % 50}.example/story/{i}"
            in_cluster = i <= members
            if in_cluster:
                kind = "canonical" if i == 1 else rng.choices(["spun", "scraped", "copy"], [1, 1, 8])[0]
                text = base if i == 1 else variant(rng, base, links, kind)
                flags = [kind] if kind in ("spun", "scraped") else []
                cid, canonical = CLUSTER, i == 1
                meta = {"links": links if kind in ("canonical", "copy", "spun") else [], "attribution": [],
                        "attribution_urls": []}
                evidence: dict[str, Any] = {"relation": {"to_canonical": "spun" if kind == "spun" else "same",
                                                         "similarity": 0.9, "jaccard3": 0.8}}
                for f in flags:
                    evidence[f] = {"swap_rate": 0.05, "sample": [["said", "stated"]] * 12} if f == "spun" else {
                        "reasons": ["link_text_lost"], "links_lost": len(links),
                        "lost_links_sample": [x[0] for x in links[:10]]}
            else:  # small stories: alone, or a copy of the story before (up to 5 articles), some flagged
                text, _ = story(rng, 120)
                meta, evidence = {}, {}
                if i > members + 1 and group[1] < 5 and rng.random() < 0.4:
                    cid, canonical = group[0], False
                    group[1] += 1
                    flags = rng.choice([[], [], ["spun"], ["scraped"]])
                else:
                    cid, canonical, flags = i, True, []
                    group[:] = [i, 1]
                    clusters.append({"id": i, "canonical_id": i, "size": 1, "created_at": at, "updated_at": at})
            pages.append({"id": i, "url": url, "url_key": f"{i:040d}", "source_id": 1, "status": 200, "headers": {},
                          "content_hash": f"{i:040x}", "html_gz": b"", "fetched_at": at})
            articles.append({"id": i, "page_id": i, "url": url, "title": f"Story {cid}: " + text[:60],
                             "text": text, "published": at.date().isoformat(), "site": f"Site {i % 50}",
                             "canonical_url": None, "language": "en", "byline": "A. Writer" if i % 3 else None,
                             "meta": meta, "n_tokens": len(text.split()), "cluster_id": cid,
                             "is_canonical": canonical, "flags": flags, "evidence": evidence,
                             "similarity": 1.0 if canonical else 0.9, "created_at": at, "updated_at": at})
            events.append({"at": at, "type": "article_added", "cluster_id": cid, "article_id": i,
                           "data": {"url": url, "canonical": True}})
            if in_cluster and i > 1:
                events += [{"at": at, "type": "canonical_status", "cluster_id": cid, "article_id": i,
                            "data": {"canonical": False}},
                           {"at": at, "type": "clusters_merged", "cluster_id": cid, "article_id": None,
                            "data": {"merged": [i], "into": cid}}]
                if flags:
                    events.append({"at": at, "type": "flags_changed", "cluster_id": cid, "article_id": i,
                                   "data": {"old": [], "new": flags}})
        with store.engine.begin() as conn:
            conn.execute(insert(PageRow), pages)
            if clusters:
                conn.execute(insert(ClusterRow), clusters)
            conn.execute(insert(ArticleRow), articles)
            conn.execute(insert(EventRow), events)
    with store.engine.begin() as conn:  # each cluster's size, as decisions keep it
        conn.exec_driver_sql("UPDATE clusters SET size = (SELECT count(*) FROM articles "
                             "WHERE articles.cluster_id = clusters.id)")
    if store.engine.dialect.name == "postgresql":  # what autovacuum does to a table at rest: stats, visibility map
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")


def measure(client: httpx.Client, paths: list[str]) -> list[float]:
    """Milliseconds per request, one after the other; every answer must be a whole page."""
    times = []
    for path in paths:
        t0 = time.perf_counter()
        r = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200 or ('id="diff"' not in r.text and "table class=\"clusters\"" not in r.text):
            raise RuntimeError(f"{path}: {r.status_code} {r.text[:200]}")
    return times


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run_backend(name: str, url: str, args: argparse.Namespace) -> None:
    store = Store(url)
    t0 = time.perf_counter()
    fill(store, args.members, args.background, args.words)
    store.close()
    print(f"{name}: {args.members}-member cluster among {args.background} other articles, "
          f"{args.words}-word texts (filled in {time.perf_counter() - t0:.0f}s)")
    proc, base = start_server(url, 1)
    try:
        rng = random.Random(3)
        loads = {
            "cluster page": lambda: f"/ui/clusters/{CLUSTER}?after={rng.randrange(0, args.members)}",
            "diff view": lambda: f"/ui/clusters/{CLUSTER}?member={rng.randint(2, args.members)}",
            "cluster list": lambda: "/?" + rng.choice(["", "sort=biggest", "sort=flagged", "flag=spun", "page=3",
                                                       "q=story", "sort=updated&flag=scraped"]),
        }
        with httpx.Client(base_url=base, timeout=30) as client:
            for label, make in loads.items():
                measure(client, [make() for _ in range(20)])
                p50s, p99s = [], []
                for _ in range(args.repeats):
                    times = measure(client, [make() for _ in range(args.requests)])
                    p50s.append(p(times, 0.5))
                    p99s.append(p(times, 0.99))
                size = len(client.get(make()).content)
                print(f"  {label:13s} p50 {statistics.median(p50s):6.1f} ms   p99 {statistics.median(p99s):6.1f} ms"
                      f"   (max p99 {max(p99s):.1f} ms; {args.requests} requests x {args.repeats}; "
                      f"page ~{size // 1024} KiB)")
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=2000)
    ap.add_argument("--background", type=int, default=20_000)
    ap.add_argument("--words", type=int, default=800)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    only = ap.add_mutually_exclusive_group()
    only.add_argument("--sqlite-only", action="store_true")
    only.add_argument("--pg-only", action="store_true")
    args = ap.parse_args()
    if not args.pg_only:
        with tempfile.TemporaryDirectory(prefix="reprint-ui-bench-") as tmp:
            run_backend("SQLite", f"sqlite:///{tmp}/bench.db", args)
    if not args.sqlite_only:
        import psycopg

        db = f"reprint_ui_bench_{secrets.token_hex(4)}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db}"')
        try:
            run_backend("PostgreSQL", PG_URL.format(name=db), args)
        finally:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
