"""Reliability of the distributed deployment, with real brokers, PostgreSQL and worker processes.

The crash, restart and poison tests run on both brokers: RabbitMQ (a private node per test, quorum
queues) and Redis (a private redis-server). Redis also holds the index, locks and run state in both.

- crash (chaos): two workers run; one worker's whole process group is SIGKILLed while a dedup task is
  running on it. The other worker runs the same task id again, the ingest completes within 60 s of the
  kill, and every page ends stored exactly once with exactly one article. RabbitMQ hands the message back
  the moment the dead worker's connection closes; Redis only after the visibility timeout (8 s here,
  1,200 s by default). The recovery time (kill to redelivery) is printed.
- restart: the broker (Redis with AOF on, or the RabbitMQ node) is shut down and started again while
  pages are still queued; the worker and the waiting ``ingest --via celery`` reconnect, the queue drains
  and nothing is lost.
- poison: a page whose extract task kills its pool process every time (``os._exit``) is dead-lettered
  after ``max_deliveries`` (3) deliveries with its payload and last error; the other pages are all
  processed; ``deadletters replay`` sends it again and a healthy worker then stores it.
- broker limit (RabbitMQ): with the delivery guard set high, the queue's own delivery limit
  dead-letters the poison page; a worker moves the letter into the same list and its run ends.
- standby beat: of two ``reprint beat`` processes one holds the redbeat lock; when it is SIGKILLed the
  standby takes the lock and goes on scheduling.

The faults are injected with ``REPRINT_TEST_HOOK`` (workers/deadletter.py), set only in the test's
worker environment.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.workers import (
    ROOT,
    RabbitServer,
    RedisServer,
    Worker,
    article_html,
    db_counts,
    deployment_env,
    pg_database,
    rabbitmq_server,
    redis_server,
    reprint_cmd,
    run_reprint,
    start_worker,
    story,
    wait_for,
    workers,
    write_corpus,
)

BROKERS = ["amqp", "redis"]


@contextlib.contextmanager
def deployment_of(kind: str, tmp_path: Path, rabbit: RabbitServer | None = None
                  ) -> Iterator[tuple[dict[str, str], str, RedisServer | RabbitServer]]:
    """(environment, database URL, broker server) of a deployment on this broker: a private Redis and
    database; on RabbitMQ the given (reset, shared) node, or a node of its own."""
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(redis_server(tmp_path, appendonly=True))
        db_url = stack.enter_context(pg_database())
        broker: RedisServer | RabbitServer = redis
        if kind == "amqp":
            broker = rabbit or stack.enter_context(rabbitmq_server(tmp_path))
        env = deployment_env(redis.url, db_url, broker_url=broker.url)
        assert run_reprint(env, "migrate").returncode == 0
        yield env, db_url, broker


def _shared_node(kind: str, request: pytest.FixtureRequest) -> RabbitServer | None:
    """The session's RabbitMQ node, reset, when the test runs on RabbitMQ (a Redis run starts none)."""
    return request.getfixturevalue("shared_rabbitmq") if kind == "amqp" else None


def _queued(broker: RedisServer | RabbitServer) -> int:
    """Messages waiting on the extract and dedup queues."""
    if isinstance(broker, RabbitServer):
        from workers.broker import queue_depths

        depths = queue_depths(broker.url, 5, ("extract", "dedup"))
        return depths["extract"] + depths["dedup"]
    return sum(broker.client().llen(q) for q in ("extract", "dedup"))


def _logged_at(worker: Worker, needle: str) -> float | None:
    """When the worker logged a line containing ``needle`` (Celery's ``[YYYY-mm-dd HH:MM:SS,mmm: ...]``)."""
    for line in worker.text().splitlines():
        if needle in line and line.startswith("["):
            stamp = line[1:24]
            with contextlib.suppress(ValueError):
                return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


def _waiter(env: dict[str, str], corpus: Path | str, tmp_path: Path) -> subprocess.Popen[str]:
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


@pytest.mark.parametrize("kind", BROKERS)
def test_crash_sigkill_whole_worker_mid_task_recovers_within_60s(kind: str, tmp_path: Path,
                                                                 request: pytest.FixtureRequest) -> None:
    corpus = tmp_path / "corpus"
    files = write_corpus(corpus, 6, copies=1)
    target = "story-002--copy0"
    markers = tmp_path / "markers"
    markers.mkdir()
    hook = {"task": "reprint.dedup_article", "match": target, "action": "pause", "seconds": 120,
            "marker_dir": str(markers)}
    with deployment_of(kind, tmp_path, _shared_node(kind, request)) as (env, db_url, _broker):
        victim = start_worker(env, tmp_path, "victim", extra_env={"REPRINT_TEST_HOOK": json.dumps(hook)})
        with workers(victim) as started:
            victim.wait_ready()
            waiter = _waiter(env, corpus, tmp_path)
            try:
                marker = wait_for(lambda: next(markers.iterdir(), None), 60, "the target dedup task to start")
                task_id = json.loads(marker.read_text())["id"]
                # a second worker is up and busy before the first dies, as in a real deployment
                survivor = start_worker(env, tmp_path, "survivor")
                started.append(survivor)
                survivor.wait_ready()
                killed_at = time.time()
                victim.kill(signal.SIGKILL)  # main process and pool: the task is mid-run, not acknowledged
                assert victim.proc.poll() is not None
                output = _finish(waiter, tmp_path, 60)
                finished_at = time.time()
            finally:
                if waiter.poll() is None:
                    waiter.kill()
            assert waiter.returncode == 0, output
            # the very task that was killed ran again, on the other worker
            assert f"reprint.dedup_article[{task_id}] succeeded" in survivor.text(), survivor.text()[-3000:]
            received = _logged_at(survivor, f"reprint.dedup_article[{task_id}] received")
            assert received is not None
        counts = db_counts(db_url)
    n = len(files)
    assert counts == {"pages": n, "page_urls": n, "articles": n, "article_pages": n, "article_urls": n}
    recovery = received - killed_at
    print(f"\n[{kind}] SIGKILL of a whole worker: its task was delivered again after {recovery:.1f} s; "
          f"the ingest completed {finished_at - killed_at:.1f} s after the kill")
    assert finished_at - killed_at < 60
    if kind == "amqp":  # RabbitMQ needs no timeout: the dead connection gives the message back
        assert recovery < 5, recovery


@pytest.mark.parametrize("kind", BROKERS)
def test_broker_restart_while_work_is_queued_loses_nothing(kind: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    files = write_corpus(corpus, 10, copies=1)
    hook = {"task": "reprint.extract_page", "action": "pause", "seconds": 0.4}  # keep the queue non-empty
    with deployment_of(kind, tmp_path) as (env, db_url, broker):
        worker = start_worker(env, tmp_path, "steady", concurrency=2, extra_env={"REPRINT_TEST_HOOK": json.dumps(hook)})
        with workers(worker):
            worker.wait_ready()
            waiter = _waiter(env, corpus, tmp_path)
            try:
                wait_for(lambda: db_counts(db_url)["articles"] >= 3, 60, "some pages to be processed")
                queued = _queued(broker)
                before = db_counts(db_url)["articles"]
                broker.stop()
                time.sleep(1.5)
                broker.start()  # same port, same directory: the AOF or the quorum queues bring the work back
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


def _ingest(env: dict[str, str], corpus: Path | str, tmp_path: Path, timeout: float) -> tuple[int, str]:
    """``reprint ingest --via celery`` to its end: (exit status, output)."""
    waiter = _waiter(env, corpus, tmp_path)
    try:
        output = _finish(waiter, tmp_path, timeout)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    return waiter.returncode, output


def _poison_corpus(tmp_path: Path, stories: int) -> tuple[Path, list[Path], dict[str, str]]:
    """Healthy stories plus a page whose extraction kills its worker process, and the hook that does it."""
    corpus = tmp_path / "corpus"
    files = write_corpus(corpus, stories, copies=1, extra={"poison-pill.html": article_html("Poison pill", story(7))})
    return corpus, files, {"task": "reprint.extract_page", "match": "poison-pill", "action": "exit"}


def _letters(env: dict[str, str]) -> list[dict[str, Any]]:
    listed = run_reprint(env, "deadletters", "list", "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("kind", BROKERS)
def test_poison_page_is_dead_lettered_and_the_rest_drains(kind: str, tmp_path: Path,
                                                          request: pytest.FixtureRequest) -> None:
    corpus, files, hook = _poison_corpus(tmp_path, 3)
    with deployment_of(kind, tmp_path, _shared_node(kind, request)) as (env, db_url, _broker):
        sick = start_worker(env, tmp_path, "sick", extra_env={"REPRINT_TEST_HOOK": json.dumps(hook)})
        with workers(sick) as started:
            sick.wait_ready()
            returncode, output = _ingest(env, corpus, tmp_path, 90)
            assert returncode == 1, output  # the run finished, with the dead letter as its error
            assert "DeadLettered" in output
            letters = _letters(env)
            assert len(letters) == 1, letters
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
            assert _letters(env) == []
        counts = db_counts(db_url)
    n = len(files)
    assert counts == {"pages": n, "page_urls": n, "articles": n, "article_pages": n, "article_urls": n}


def test_rabbitmq_delivery_limit_dead_letters_into_the_same_list(tmp_path: Path, shared_rabbitmq: RabbitServer) -> None:
    corpus, files, hook = _poison_corpus(tmp_path, 2)
    with deployment_of("amqp", tmp_path, shared_rabbitmq) as (env, db_url, _broker):
        # the guard would wait for 10 deliveries; the queue's own limit (1 redelivery) acts first
        env = {**env, "REPRINT_MAX_DELIVERIES": "10", "REPRINT_BROKER_DELIVERY_LIMIT": "1"}
        sick = start_worker(env, tmp_path, "sick", extra_env={"REPRINT_TEST_HOOK": json.dumps(hook)})
        with workers(sick):
            sick.wait_ready()
            returncode, output = _ingest(env, corpus, tmp_path, 90)
            assert returncode == 1, output  # the run ended, the broker's dead letter as its error
            assert "DeadLettered" in output
            assert sick.text().count("exited with 'exitcode 3'") == 2, sick.text()[-3000:]
            letters = _letters(env)
        counts = db_counts(db_url)
    assert len(letters) == 1, letters
    letter = letters[0]
    assert letter["by"] == "broker" and letter["task"] == "reprint.extract_page"
    assert letter["queue"] == "extract" and letter["kwargs"]["url"].endswith("poison-pill.html")
    assert letter["deliveries"] == 2 and "delivery limit of 1" in letter["last_error"]
    assert counts["pages"] == len(files) and counts["articles"] == len(files) - 1


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


@pytest.mark.parametrize("kind", BROKERS)
def test_a_transient_fetch_failure_is_retried_through_the_broker(kind: str, tmp_path: Path,
                                                                 request: pytest.FixtureRequest) -> None:
    """A 503 becomes a Celery retry with a countdown (on RabbitMQ through its delayed-delivery queues) and the
    page is stored when the server recovers."""
    from tests.support.http import LoopbackServer, Response, sequence

    pages = {name: article_html(f"{name} story", story(seed)) for seed, name in enumerate(["steady", "flaky"])}
    with LoopbackServer() as site, deployment_of(kind, tmp_path, _shared_node(kind, request)) as (env, db_url, _broker):
        site.route("/steady", pages["steady"])
        site.handle("/flaky", sequence(Response(503, headers={"Retry-After": "1"}),
                                       Response(200, pages["flaky"].encode())))
        entries = "".join(f"<url><loc>{site.url('/' + name)}</loc></url>" for name in pages)
        site.route("/sitemap.xml", '<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/'
                   f'schemas/sitemap/0.9">{entries}</urlset>', content_type="application/xml")
        env = {**env, "REPRINT_FETCH_ALLOW_NETWORKS": "127.0.0.1/32", "REPRINT_FETCH_ROBOTS": "false",
               "REPRINT_FETCH_MAX_RETRIES": "0"}  # the first 503 goes straight to a Celery retry
        worker = start_worker(env, tmp_path, "fetcher")
        with workers(worker):
            worker.wait_ready()
            returncode, output = _ingest(env, site.url("/sitemap.xml"), tmp_path, 90)
            assert returncode == 0, output
            assert "reprint.fetch_url" in worker.text() and "retry: Retry in" in worker.text(), worker.text()[-3000:]
        counts = db_counts(db_url)
        assert site.hits("/flaky") == 2 and site.hits("/steady") == 1
    assert counts["articles"] == 2 and counts["pages"] == 2


def test_deadletters_list_takes_the_brokers_letters_and_ends_their_pages(tmp_path: Path,
                                                                          shared_rabbitmq: RabbitServer) -> None:
    """An operator's ``reprint deadletters list`` may move RabbitMQ's letters before any worker does: it ends
    their pages too, or their run would wait for ever."""
    import kombu

    from pipeline.settings import Settings
    from pipeline.store import Store
    from workers import broker
    from workers.runs import RunState, page_key

    url = "https://example.com/poison"
    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    with redis_server(tmp_path) as server:
        env = deployment_env(server.url, db_url, broker_url=shared_rabbitmq.url)
        store = Store(db_url)
        run_id = store.start_run(["a source"])
        state = RunState(server.client(), env["REPRINT_REDIS_PREFIX"], run_id)
        state.create(["a source"])
        with kombu.Connection(shared_rabbitmq.url) as connection:
            broker.declare_dead_letters(connection)
            connection.Producer(connection.default_channel).publish(
                [[], {"run_id": run_id, "source_id": None, "page_id": 1, "url": url}, {}],
                exchange=broker.DEAD_EXCHANGE, routing_key="extract", serializer="json",
                headers={"task": "reprint.extract_page", "id": "t-1", "x-delivery-count": 5})
        letters = _letters(env)
        errors = store.errors(run_id)
        store.close()
        assert state.is_done(page_key(None, url))
    assert [(x["id"], x["task"], x["by"], x["deliveries"]) for x in letters] == [("t-1", "reprint.extract_page",
                                                                               "broker", 6)]
    assert letters[0]["last_error"].endswith(
        f"past its delivery limit of {Settings(max_deliveries=3).delivery_limit}")
    assert [(e.url, e.kind) for e in errors] == [(url, "DeadLettered")]
