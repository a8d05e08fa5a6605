"""WARC resume under Celery, with a real redis-server, PostgreSQL and ``reprint worker`` processes.

The discovery task of a WARC source keeps the same store checkpoint as the embedded runner. A worker
is SIGKILLed while its discovery task is in the middle of the file (paused by the test hook on the
fourth record, after three were handed on); the message comes back to a second worker, which must
continue at the fourth record. The second worker carries a trap: a hook that kills its process if it
ever reads the first record again, so re-reading the file from the start cannot pass unnoticed.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from pipeline.sources.discover import warc_checkpoint_key
from pipeline.sources.warc import iter_warc_offsets
from pipeline.store import Store
from tests.support.warc import write_warc
from tests.support.workers import (
    ROOT,
    article_html,
    db_counts,
    deployment_env,
    pg_database,
    redis_server,
    reprint_cmd,
    run_reprint,
    start_worker,
    story,
    wait_for,
    workers,
)

RECORD_HOOK = "reprint.discover_source:record"


def checkpoint(db_url: str, key: str) -> int:
    store = Store(db_url, create=False)
    try:
        return store.warc_checkpoint(key)
    finally:
        store.close()


def test_celery_discovery_of_a_warc_resumes_after_its_worker_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "crawl.warc.gz"
    uris = [f"https://site{n}.example/story-{n}" for n in range(6)]
    write_warc(path, [(uri, article_html(f"Story {n}", story(3000 + n)).encode(), "text/html; charset=utf-8")
                      for n, uri in enumerate(uris)])
    offsets = [offset for _, offset in iter_warc_offsets(path)]
    key = warc_checkpoint_key(str(path))
    markers = tmp_path / "markers"
    markers.mkdir()
    pause = {"task": RECORD_HOOK, "match": uris[3], "action": "pause", "seconds": 60, "marker_dir": str(markers)}
    trap = {"task": RECORD_HOOK, "match": uris[0], "action": "exit"}
    with redis_server(tmp_path) as server, pg_database() as db_url:
        env = deployment_env(server.url, db_url)
        assert run_reprint(env, "migrate").returncode == 0
        victim = start_worker(env, tmp_path, "victim", extra_env={"REPRINT_TEST_HOOK": json.dumps(pause)})
        with workers(victim) as started:
            victim.wait_ready()
            out = (tmp_path / "ingest.out").open("w")
            waiter = subprocess.Popen(reprint_cmd("ingest", "--via", "celery", "--no-progress", str(path)), env=env,
                                      cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True)
            try:
                wait_for(lambda: next(markers.iterdir(), None), 60, "discovery to reach the fourth record")
                victim.kill(signal.SIGKILL)  # mid-file: three records handed on, the fourth not
                assert checkpoint(db_url, key) == offsets[2]
                rescuer = start_worker(env, tmp_path, "rescuer", extra_env={"REPRINT_TEST_HOOK": json.dumps(trap)})
                started.append(rescuer)
                rescuer.wait_ready()
                waiter.wait(120)
            finally:
                if waiter.poll() is None:
                    waiter.kill()
                    waiter.wait(5)
                out.close()
            output = (tmp_path / "ingest.out").read_text()
            assert waiter.returncode == 0, output
            assert f"resuming WARC {path} at offset {offsets[2]}" in rescuer.text(), rescuer.text()[-3000:]
        counts = db_counts(db_url)
        assert checkpoint(db_url, key) == 0  # read to the end: the next run reads the file afresh
    n = len(uris)
    assert counts == {"pages": n, "page_urls": n, "articles": n, "article_pages": n, "article_urls": n}
