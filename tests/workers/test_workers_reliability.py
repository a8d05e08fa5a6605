"""Reliability of the distributed deployment, with real redis-server, PostgreSQL and worker processes.

- crash: a worker (main process and pool) is SIGKILLed while a dedup task is running; the message
  comes back after the visibility timeout, another worker runs the same task id again, and every page
  ends stored exactly once with exactly one article.
- restart: Redis (AOF on) is shut down and started again while pages are still queued; the worker
  and the waiting ``ingest --via celery`` reconnect, the queue drains and nothing is lost.
- poison: a page whose extract task kills its pool process every time (``os._exit``) is dead-lettered
  after ``max_deliveries`` (3) deliveries with its payload and last error; the other pages are all
  processed; ``deadletters replay`` sends it again and a healthy worker then stores it.
- standby beat: of two ``reprint beat`` processes one holds the redbeat lock; when it is SIGKILLed the
  standby takes the lock and goes on scheduling.

The faults are injected with ``REPRINT_TEST_HOOK`` (workers/deadletter.py), set only in the test's
worker environment.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from tests.support.workers import (
    ROOT,
    Worker,
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
    write_corpus,
)


def _waiter(env: dict[str, str], corpus: Path, tmp_path: Path) -> subprocess.Popen[str]:
    """``reprint ingest --via celery`` in the background, as an operator would run it."""
    out = (tmp_path / "ingest.out").open("w")
    return subprocess.Popen(reprint_cmd("ingest", "--via", "celery", "--no-progress", str(corpus)), env=env, cwd=ROOT,
                            stdout=out, stderr=subprocess.STDOUT, text=True)


def _finish(waiter: subprocess.Popen[str], tmp_path: Path, timeout: float) -> str:
    try:
        waiter.wait(timeout)
    except subprocess.TimeoutExpired:
        waiter.kill()
        waiter.wait(5)
        raise AssertionError(f"ingest --via celery did not finish:\n{(tmp_path / 'ingest.out').read_text()}") from None
    return (tmp_path / "ingest.out").read_text()


def test_crash_sigkill_mid_task_runs_again_nothing_lost_or_doubled(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    files = write_corpus(corpus, 4, copies=1)
    target = "story-002--copy0"
    markers = tmp_path / "markers"
    markers.mkdir()
    hook = {"task": "reprint.dedup_article", "match": target, "action": "pause", "seconds": 30,
            "marker_dir": str(markers)}
    with redis_server(tmp_path) as server, pg_database() as db_url:
        env = deployment_env(server.url, db_url)
        assert run_reprint(env, "migrate").returncode == 0
        victim = start_worker(env, tmp_path, "victim", extra_env={"REPRINT_TEST_HOOK": json.dumps(hook)})
        with workers(victim) as started:
            victim.wait_ready()
            waiter = _waiter(env, corpus, tmp_path)
            try:
                marker = wait_for(lambda: next(markers.iterdir(), None), 60, "the target dedup task to start")
                task_id = json.loads(marker.read_text())["id"]
                victim.kill(signal.SIGKILL)  # the task is mid-run: received, started, not acknowledged
                assert victim.proc.poll() is not None
                rescuer = start_worker(env, tmp_path, "rescuer")
                started.append(rescuer)
                rescuer.wait_ready()
                output = _finish(waiter, tmp_path, 90)
            finally:
                if waiter.poll() is None:
                    waiter.kill()
            assert waiter.returncode == 0, output
            # the very task that was killed ran again, on the other worker
            assert f"reprint.dedup_article[{task_id}] succeeded" in rescuer.text(), rescuer.text()[-3000:]
        counts = db_counts(db_url)
    n = len(files)
    assert counts == {"pages": n, "page_urls": n, "articles": n, "article_pages": n, "article_urls": n}


def test_redis_restart_with_aof_while_work_is_queued(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    files = write_corpus(corpus, 10, copies=1)
    hook = {"task": "reprint.extract_page", "action": "pause", "seconds": 0.4}  # keep the queue non-empty
    with redis_server(tmp_path, appendonly=True) as server, pg_database() as db_url:
        env = deployment_env(server.url, db_url)
        assert run_reprint(env, "migrate").returncode == 0
        worker = start_worker(env, tmp_path, "steady", concurrency=2, extra_env={"REPRINT_TEST_HOOK": json.dumps(hook)})
        with workers(worker):
            worker.wait_ready()
            waiter = _waiter(env, corpus, tmp_path)
            try:
                wait_for(lambda: db_counts(db_url)["articles"] >= 3, 60, "some pages to be processed")
                queued = sum(server.client().llen(q) for q in ("extract", "dedup"))
                before = db_counts(db_url)["articles"]
                server.stop()
                time.sleep(1.5)
                server.start()  # same port, same directory: the AOF brings the queues back
                output = _finish(waiter, tmp_path, 120)
            finally:
                if waiter.poll() is None:
                    waiter.kill()
            assert waiter.returncode == 0, output
            assert "Connection to broker lost" in worker.text() or "Cannot connect" in worker.text(), (
                worker.text()[-3000:])
        counts = db_counts(db_url)
    assert queued > 0 and before < len(files), "the restart must happen while work is queued"
    n = len(files)
    assert counts == {"pages": n, "page_urls": n, "articles": n, "article_pages": n, "article_urls": n}


def test_poison_page_is_dead_lettered_and_the_rest_drains(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    poison = article_html("Poison pill", story(7))
    files = write_corpus(corpus, 3, copies=1, extra={"poison-pill.html": poison})
    hook = {"task": "reprint.extract_page", "match": "poison-pill", "action": "exit"}
    with redis_server(tmp_path) as server, pg_database() as db_url:
        env = deployment_env(server.url, db_url)
        assert run_reprint(env, "migrate").returncode == 0
        sick = start_worker(env, tmp_path, "sick", extra_env={"REPRINT_TEST_HOOK": json.dumps(hook)})
        with workers(sick) as started:
            sick.wait_ready()
            waiter = _waiter(env, corpus, tmp_path)
            try:
                output = _finish(waiter, tmp_path, 90)
            finally:
                if waiter.poll() is None:
                    waiter.kill()
            assert waiter.returncode == 1, output  # the run finished, with the dead letter as its error
            assert "DeadLettered" in output
            listed = run_reprint(env, "deadletters", "list", "--json")
            letters = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
            assert len(letters) == 1, listed.stdout + listed.stderr
            letter = letters[0]
            assert letter["task"] == "reprint.extract_page"
            assert letter["deliveries"] == 3
            assert letter["kwargs"]["url"].endswith("poison-pill.html")
            assert letter["queue"] == "extract"
            assert "WorkerLostError" in letter["last_error"] or "worker lost" in letter["last_error"]
            assert sick.text().count("exited with 'exitcode 3'") >= 3, sick.text()[-3000:]
            counts = db_counts(db_url)
            assert counts["pages"] == len(files) and counts["articles"] == len(files) - 1

            # the cause is fixed (a worker without the fault), the dead letter is replayed and stored
            sick.kill()
            healthy = start_worker(env, tmp_path, "healthy")
            started.append(healthy)
            healthy.wait_ready()
            replay = run_reprint(env, "deadletters", "replay", "--all")
            assert replay.returncode == 0 and "replayed" in replay.stdout, replay.stdout + replay.stderr
            wait_for(lambda: db_counts(db_url)["articles"] == len(files), 60, "the replayed page to be stored")
            assert run_reprint(env, "deadletters", "list", "--json").stdout.strip() == ""
        counts = db_counts(db_url)
    n = len(files)
    assert counts == {"pages": n, "page_urls": n, "articles": n, "article_pages": n, "article_urls": n}


def test_standby_beat_takes_over_when_the_active_one_dies(tmp_path: Path) -> None:
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n  - name: nothing\n    spec: https://example.invalid/feed.xml\n    interval: 1h\n")
    with redis_server(tmp_path) as server:
        env = deployment_env(server.url, f"sqlite:///{tmp_path / 'r.db'}", REPRINT_SOURCES_FILE=str(sources),
                             REPRINT_BEAT_LOCK_TIMEOUT="4")
        lock = f"{env['REPRINT_REDIS_PREFIX']}:redbeat:lock"
        client = server.client()

        def beat(name: str) -> Worker:
            log = tmp_path / f"{name}.log"
            handle = log.open("wb")
            proc = subprocess.Popen(reprint_cmd("beat", "--loglevel", "DEBUG"), env=env, cwd=ROOT, stdout=handle,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            handle.close()
            return Worker(proc, log, name)

        first = beat("beat-a")
        with workers(first) as started:
            wait_for(lambda: "Acquired lock" in first.text(), 30, "the first beat to take the lock")
            second = beat("beat-b")
            started.append(second)
            wait_for(lambda: "beat: Starting" in second.text(), 30, "the standby beat to start")
            time.sleep(2)
            assert "Acquired lock" not in second.text()  # a standby, waiting
            assert client.exists(lock)
            first.kill(signal.SIGKILL)
            wait_for(lambda: "Acquired lock" in second.text(), 30, "the standby to take over")
            assert second.proc.poll() is None
            assert client.exists(f"{env['REPRINT_REDIS_PREFIX']}:redbeat:source:nothing")
