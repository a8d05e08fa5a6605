"""End to end: ``reprint ingest --via celery`` with two real worker processes gives the embedded export.

The sample corpus (config/sample: originals with republished, excerpt, scraped and spun copies) goes
through ``reprint worker`` subprocesses on a private Redis and a fresh PostgreSQL database, and through
the embedded path into SQLite. The clusters (as sets of URLs), canonicals and flags must be identical,
and the printed summaries must agree on the counts. Every task the workers ran reports its latency on the
API's ``/metrics``.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from pipeline.serve.api import create_app, serve_in_thread
from pipeline.settings import Settings
from pipeline.store import Store
from tests.support.workers import (
    ROOT,
    db_counts,
    deployment_env,
    normalized_export,
    pg_database,
    redis_server,
    run_reprint,
    start_worker,
    workers,
)

SAMPLE = ROOT / "config" / "sample"


def _summary_counts(output: str) -> dict[str, str]:
    # "joined a cluster" is left out: whether an article found a relative when it arrived depends on
    # arrival order, which two workers do not keep; the clusters it ends in do not.
    keys = ("pages seen", "articles stored", "unchanged", "articles in database", "clusters", "flags", "errors")
    out = {}
    for key in keys:
        match = re.search(rf"│\s*{re.escape(key)}\s+(.+?)\s*│", output)
        if match:
            out[key] = match.group(1).strip()
    return out


def task_latency_counts(env: dict[str, str]) -> dict[str, float]:
    """task → samples in ``reprint_task_latency_seconds``, as a real API server of the deployment ``env``
    describes shows them on ``/metrics``."""
    db_url = env["REPRINT_DATABASE_URL"]
    store = Store(db_url, create=False)
    try:
        app = create_app(store, Settings(database_url=db_url, broker_url=env["REPRINT_BROKER_URL"],
                                         redis_url=env["REPRINT_REDIS_URL"], redis_prefix=env["REPRINT_REDIS_PREFIX"]))
        with serve_in_thread(app) as base:
            text = httpx.get(f"{base}/metrics", timeout=10).text
    finally:
        store.close()
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'^reprint_task_latency_seconds_count\{task="([^"]+)"\} (\S+)$', text, re.M)}


def test_via_celery_two_workers_matches_embedded(tmp_path: Path) -> None:
    embedded_db = f"sqlite:///{tmp_path / 'embedded.db'}"
    with redis_server(tmp_path) as server, pg_database() as db_url:
        env = deployment_env(server.url, db_url)
        assert run_reprint(env, "migrate").returncode == 0
        with workers(start_worker(env, tmp_path, "w1"), start_worker(env, tmp_path, "w2")) as started:
            for worker in started:
                worker.wait_ready()
            celery_run = run_reprint(env, "ingest", "--via", "celery", "--no-progress", str(SAMPLE), timeout=120)
            assert celery_run.returncode == 0, celery_run.stdout + celery_run.stderr
            # both processes took part
            for worker in started:
                assert "reprint.dedup_article" in worker.text(), worker.text()[-2000:]
            latency = task_latency_counts(env)
            n_pages = len(list(SAMPLE.glob("*.html")))
            assert latency.get("reprint.discover_source", 0) >= 1, latency
            assert latency.get("reprint.extract_page", 0) >= n_pages, latency
            assert latency.get("reprint.dedup_article", 0) >= n_pages, latency
            # a second run finds every page unchanged and stores nothing twice
            again = run_reprint(env, "ingest", "--via", "celery", "--no-progress", str(SAMPLE), timeout=120)
            assert again.returncode == 0, again.stdout + again.stderr
        celery_export = run_reprint(env, "export")
        assert celery_export.returncode == 0, celery_export.stderr
        counts = db_counts(db_url)

    local = {k: v for k, v in env.items() if not k.startswith("REPRINT_")}
    embedded_run = run_reprint(local, "ingest", "--no-progress", "--db", embedded_db, str(SAMPLE))
    assert embedded_run.returncode == 0, embedded_run.stdout + embedded_run.stderr
    embedded_export = run_reprint(local, "export", "--db", embedded_db)

    n_files = len(list(SAMPLE.glob("*.html")))
    assert counts == {"pages": n_files, "page_urls": n_files, "articles": n_files, "article_pages": n_files,
                      "article_urls": n_files}
    got, want = normalized_export(celery_export.stdout), normalized_export(embedded_export.stdout)
    assert len(want) == n_files
    assert got == want
    summary_celery, summary_embedded = _summary_counts(celery_run.stdout), _summary_counts(embedded_run.stdout)
    assert summary_celery == summary_embedded, (celery_run.stdout, embedded_run.stdout)
    assert _summary_counts(again.stdout)["unchanged"] == str(n_files)
    assert _summary_counts(again.stdout)["articles stored"] == "0"
