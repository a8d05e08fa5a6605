"""The workers package in one process: configuration, routing, retry policy, the poison-message guard,
the per-source schedule lock, the schedule file and the command line.

Anything that talks to Redis uses a private redis-server started for the test; nothing is sent to a
broker (sends are captured), so no worker is needed here. The worker processes themselves are
exercised in test_workers_reliability.py, test_workers_e2e.py and test_compose.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from pipeline.errors import (
    BlockedAddress,
    DeadlineExceeded,
    FetchError,
    HTTPStatusError,
    RobotsDisallowed,
    UnsupportedContentType,
)
from pipeline.settings import Settings
from tests.support.workers import ROOT, article_html, story


# --- configuration --------------------------------------------------------------------------------
def test_reliability_settings_sit_where_celery_and_kombu_read_them() -> None:
    from workers.app import celery_config

    settings = Settings()
    conf = celery_config(settings)
    assert conf["task_acks_late"] is True
    assert conf["task_reject_on_worker_lost"] is True
    assert conf["worker_prefetch_multiplier"] == 1
    assert "visibility_timeout" not in conf  # kombu reads it from the transport options only
    assert conf["broker_transport_options"]["visibility_timeout"] == settings.visibility_timeout
    assert conf["task_soft_time_limit"] < conf["task_time_limit"]
    longest_wait = max(settings.task_retry_backoff_max, settings.fetch_max_retry_after)
    assert conf["broker_transport_options"]["visibility_timeout"] > conf["task_time_limit"] + longest_wait
    assert conf["task_serializer"] == conf["result_serializer"] == "json"
    assert conf["accept_content"] == ["json"]
    assert conf["broker_connection_max_retries"] is None


def test_rabbitmq_broker_gets_quorum_queues_with_a_delivery_limit_and_dead_letter_exchange() -> None:
    from workers import broker
    from workers.app import QUEUES, celery_config, make_app

    settings = Settings(broker_url="amqp://guest:guest@127.0.0.1:5672//", max_deliveries=3)
    conf = celery_config(settings)
    queues = {q.name: q for q in conf["task_queues"]}
    assert set(queues) == set(QUEUES)
    for name, queue in queues.items():
        assert queue.durable and queue.routing_key == name
        assert queue.exchange.name == broker.TASK_EXCHANGE and queue.exchange.type == "topic"
        assert queue.queue_arguments == {"x-queue-type": "quorum", "x-delivery-limit": 5,
                                         "x-dead-letter-exchange": broker.DEAD_EXCHANGE}
    assert conf["broker_transport_options"] == {"confirm_publish": True}  # no Redis visibility timeout here
    assert conf["broker_heartbeat"] == settings.broker_heartbeat
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_cancel_long_running_tasks_on_connection_loss"] is True
    assert Settings(broker_url="amqp://h//", broker_delivery_limit=9).delivery_limit == 9
    # the worker sweeps RabbitMQ's own dead letters into the guard's list; a Redis deployment has no such step
    assert broker.DeadLetterAbsorber in make_app(settings).steps["worker"]
    assert broker.DeadLetterAbsorber not in make_app(Settings()).steps["worker"]
    router = make_app(settings).amqp.router
    assert router.route({}, "reprint.extract_page")["queue"].name == "extract"


@pytest.mark.parametrize(("url", "amqp"), [("amqp://u:p@h:5672/v", True), ("pyamqp://h//", True),
                                           ("redis://h:6379/0", False), ("rediss://h/0", False)])
def test_broker_transport_is_read_from_the_url(url: str, amqp: bool) -> None:
    assert Settings(broker_url=url).broker_is_amqp is amqp


def test_an_unknown_broker_is_refused_without_showing_its_password() -> None:
    with pytest.raises(ValidationError, match="amqp:// .*or redis://") as info:
        Settings(broker_url="kafka://user:secret@broker:9092")
    message = info.value.errors()[0]["msg"]  # what the CLI prints (load_settings shows the messages only)
    assert "broker:9092" in message and "secret" not in message


def test_kombu_channel_takes_the_visibility_timeout_from_transport_options() -> None:
    from kombu.transport.redis import Channel

    assert "visibility_timeout" in Channel.from_transport_options


def test_settings_refuse_a_visibility_timeout_shorter_than_a_task_can_be_held() -> None:
    with pytest.raises(ValidationError, match="visibility_timeout"):
        Settings(task_time_limit=600, task_soft_time_limit=500, visibility_timeout=700)
    with pytest.raises(ValidationError, match="soft"):
        Settings(task_time_limit=60, task_soft_time_limit=60)


@pytest.mark.parametrize(("setting", "added"), [(None, 1), ("3", 3), ("0", 0)])
def test_a_pool_process_lowers_its_priority_as_it_starts(setting: str | None, added: int) -> None:
    """Each pool process, as Celery starts it (``worker_process_init``), adds ``worker_pool_nice`` to its niceness:
    the worker's parent and the servers the tasks wait on get the CPU first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPRINT_")}
    if setting is not None:
        env["REPRINT_WORKER_POOL_NICE"] = setting
    code = ("import os\n"
            "from celery.signals import worker_process_init\n"
            "import workers.app\n"
            "before = os.nice(0)\n"
            "worker_process_init.send(sender=None)\n"
            "print(os.nice(0) - before)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    assert int(done.stdout.split()[-1]) == added, done.stderr


def test_a_pool_niceness_out_of_range_is_refused() -> None:
    with pytest.raises(ValidationError, match="worker_pool_nice"):
        Settings(worker_pool_nice=20)


def test_each_stage_has_its_own_queue() -> None:
    from workers.app import app

    router = app.amqp.router
    for task, queue in (("reprint.discover_source", "discover"), ("reprint.fetch_url", "fetch"),
                        ("reprint.extract_page", "extract"), ("reprint.dedup_article", "dedup"),
                        ("reprint.scheduled_ingest", "discover")):
        assert router.route({}, task)["queue"].name == queue


# --- retry policy ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("err", "transient"), [
    (HTTPStatusError("HTTP 503", status=503), True),
    (HTTPStatusError("HTTP 429", status=429), True),
    (HTTPStatusError("HTTP 404", status=404), False),
    (HTTPStatusError("HTTP 410", status=410), False),
    (FetchError("cannot connect: refused"), True),
    (DeadlineExceeded("deadline"), True),
    (RobotsDisallowed("robots"), False),
    (BlockedAddress("private"), False),
    (UnsupportedContentType("image/png"), False),
])
def test_only_transient_fetch_errors_are_retried(err: Exception, transient: bool) -> None:
    from workers.tasks import is_transient

    assert is_transient(err) is transient


def test_retry_delay_honours_retry_after_and_otherwise_backs_off_with_jitter() -> None:
    from workers.tasks import retry_delay

    settings = Settings(task_retry_backoff=2, task_retry_backoff_max=60, fetch_max_retry_after=30)

    class Task:
        class request:  # noqa: N801 - mimics celery's task.request
            retries = 3

    err = HTTPStatusError("HTTP 503", status=503)
    err.retry_after = 12  # type: ignore[attr-defined]
    assert retry_delay(Task, err, settings) == 12
    err.retry_after = 3600  # type: ignore[attr-defined]
    assert retry_delay(Task, err, settings) == 30  # capped
    delays = {retry_delay(Task, FetchError("refused"), settings) for _ in range(50)}
    assert all(0 <= d <= 16 for d in delays) and len(delays) > 1  # 2 * 2**3 with full jitter


# --- in-process tasks against a private Redis -----------------------------------------------------
def test_fetch_task_retries_a_503_after_its_retry_after(deployment: dict[str, Any],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = deployment["tasks"]
    proc = tasks.process()
    err = HTTPStatusError("HTTP 503 Service Unavailable", url="https://example.org/a", status=503)
    err.retry_after = 0.5  # type: ignore[attr-defined]

    def failing(_fn: Any) -> Any:
        raise err

    monkeypatch.setattr(proc, "run", failing)
    retried: dict[str, Any] = {}

    class Retried(Exception):
        pass

    def fake_retry(**kwargs: Any) -> Exception:
        retried.update(kwargs)
        return Retried()

    monkeypatch.setattr(tasks.fetch_url, "retry", fake_retry)
    run_id = proc.store.start_run(["x"])
    with pytest.raises(Retried):
        tasks.fetch_url.run(run_id=run_id, source_id=None, url="https://example.org/a")
    assert retried["countdown"] == 0.5 and retried["exc"] is err
    assert proc.store.errors(run_id) == []  # not a verdict yet


def test_fetch_task_records_a_permanent_error_once_and_closes_the_page(deployment: dict[str, Any],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = deployment["tasks"]
    proc = tasks.process()

    def failing(_fn: Any) -> Any:
        raise HTTPStatusError("HTTP 404 Not Found", url="https://example.org/gone", status=404)

    monkeypatch.setattr(proc, "run", failing)
    monkeypatch.setattr(tasks.fetch_url, "retry", lambda **kw: pytest.fail("a 404 must not be retried"))
    run_id = proc.store.start_run(["x"])
    state = proc.state(run_id)
    state.create(["x"])
    for _ in range(2):  # a redelivery records nothing twice
        tasks.fetch_url.run(run_id=run_id, source_id=None, url="https://example.org/gone")
    errors = proc.store.errors(run_id)
    assert [(e.kind, e.stage) for e in errors] == [("HTTPStatusError", "fetch")]
    assert state.progress().pages_done == 1


def test_discover_stores_pages_once_and_sends_each_to_extract_once(deployment: dict[str, Any],
                                                                   tmp_path: Path) -> None:
    tasks, sent = deployment["tasks"], deployment["sent"]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(3):
        (corpus / f"p{i}.html").write_text(article_html(f"P{i}", story(i)))
    proc = tasks.process()
    run_id = tasks.start_run(proc.store, proc.redis, proc.settings, [str(corpus)])
    assert [name for name, _ in sent] == ["reprint.discover_source"]
    kwargs = sent[0][1]
    tasks.discover_source.run(**kwargs)
    tasks.discover_source.run(**kwargs)  # delivered again: nothing new is sent
    extracts = [kw for name, kw in sent if name == "reprint.extract_page"]
    assert len(extracts) == 3
    assert proc.store.counts()["pages"] == 3
    progress = proc.state(run_id).progress()
    assert (progress.sources_done, progress.pages, progress.pages_done) == (1, 3, 0)
    # extract → dedup, and a redelivered dedup changes nothing twice
    for kw in extracts:
        tasks.extract_page.run(**kw)
    dedups = [kw for name, kw in sent if name == "reprint.dedup_article"]
    assert len(dedups) == 3
    for kw in dedups + dedups:
        json.dumps(kw)  # JSON only: the article travels as plain data
        tasks.dedup_article.run(**kw)
    assert proc.store.counts()["articles"] == 3
    state = proc.state(run_id)
    assert state.progress().finished  # the last page finished the run
    with proc.store.session() as s:
        from pipeline.store import RunRow

        run = s.get(RunRow, run_id)
        assert run.finished_at is not None and run.counts["articles"] == 3


def test_scheduled_source_is_not_enqueued_again_while_its_run_is_going(deployment: dict[str, Any],
                                                                        tmp_path: Path) -> None:
    tasks, sent = deployment["tasks"], deployment["sent"]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.html").write_text(article_html("A", story(1)))
    run_id = tasks.scheduled_ingest.run(str(corpus), name="a")
    assert run_id is not None
    assert tasks.scheduled_ingest.run(str(corpus), name="a") is None  # still running: skipped
    assert [name for name, _ in sent] == ["reprint.discover_source"]
    # the run ends: its lock is released and the next tick starts a new run
    tasks.discover_source.run(**sent[0][1])
    extract = next(kw for name, kw in sent if name == "reprint.extract_page")
    tasks.extract_page.run(**extract)
    tasks.dedup_article.run(**next(kw for name, kw in sent if name == "reprint.dedup_article"))
    assert tasks.process().state(run_id).progress().finished
    assert tasks.scheduled_ingest.run(str(corpus), name="a") not in (None, run_id)


def test_a_task_that_never_finishes_is_dead_lettered_after_max_deliveries(deployment: dict[str, Any]) -> None:
    from workers.app import app
    from workers.deadletter import DeliveryGuard, GuardedTask

    ran: list[int] = []
    buried: list[dict[str, Any]] = []

    class Recorded(GuardedTask):
        def on_dead_letter(self, entry: dict[str, Any]) -> None:
            buried.append(entry)

    @app.task(name="test.workers.payload", base=Recorded, shared=False)
    def payload(n: int, *, url: str) -> int:
        ran.append(n)
        return n

    guard = DeliveryGuard.from_settings()
    assert guard.max_deliveries == 3
    # a task that finishes leaves no counter behind, however often it runs
    for _ in range(5):
        assert payload.apply(args=(1,), kwargs={"url": "u"}, task_id="ok-task").get() == 1
    assert ran == [1] * 5 and guard.letters() == []
    # three deliveries that killed their worker (begun, never ended), then a fourth
    for _ in range(3):
        guard.begin("poison-task")
    guard.note_lost("poison-task", "WorkerLostError: Worker exited prematurely: exitcode 3")
    assert payload.apply(args=(2,), kwargs={"url": "p"}, task_id="poison-task").get() is None
    assert 2 not in ran
    [letter] = guard.letters()
    assert letter["id"] == "poison-task" and letter["task"] == "test.workers.payload"
    assert letter["args"] == [2] and letter["kwargs"] == {"url": "p"}
    assert letter["deliveries"] == 3 and "WorkerLostError" in letter["last_error"]
    assert buried == [letter]

    class FakeApp:
        def __init__(self) -> None:
            self.sent: list[tuple[str, Any, Any, Any]] = []

        def send_task(self, name: str, args: Any, kwargs: Any, queue: Any) -> Any:
            self.sent.append((name, args, kwargs, queue))
            return type("R", (), {"id": "new-id"})()

    from typer.testing import CliRunner

    from pipeline.cli import app as cli

    listed = CliRunner().invoke(cli, ["deadletters", "list"])
    assert "poison-task" in listed.output and "WorkerLostError" in listed.output
    fake = FakeApp()
    [replayed] = guard.replay(fake, ["poison-task"])  # type: ignore[arg-type]
    assert replayed["replayed_as"] == "new-id"
    assert fake.sent == [("test.workers.payload", [2], {"url": "p"}, letter["queue"])]
    assert guard.letters() == []
    assert "no dead letters" in CliRunner().invoke(cli, ["deadletters", "list"]).output


# --- payloads and the schedule file ---------------------------------------------------------------
def test_article_round_trips_through_json() -> None:
    from pipeline.extract.extractor import extract
    from pipeline.records import Page
    from workers.tasks import article_from_json, article_to_json

    html = article_html("Harbor", story(3)).replace("<p>In story", "<p><a href='https://x.org/a'>Link</a> In story", 1)
    article, _warning = extract(Page("https://example.org/a", html.encode(), headers={"content-type": "text/html"}))
    assert article_from_json(json.loads(json.dumps(article_to_json(article)))) == article


def test_schedule_file_gives_the_beat_schedule(tmp_path: Path) -> None:
    from datetime import timedelta

    from pipeline.errors import ConfigError
    from workers.schedule import beat_schedule, load_sources, parse_interval

    assert [parse_interval(v) for v in (90, "30s", "10m", "1.5h", "1d")] == [90, 30, 600, 5400, 86400]
    for bad in ("5s", "soon", "-1m", True):
        with pytest.raises(ConfigError):
            parse_interval(bad)
    path = tmp_path / "sources.yaml"
    path.write_text("defaults: {interval: 2h}\nsources:\n  - {name: feed, spec: 'https://a.example/feed.xml', "
                    "interval: 10m}\n  - {name: local, spec: pages}\n  - {name: 'off', spec: x, enabled: false}\n")
    sources = load_sources(path)
    assert [(s.name, s.interval, s.enabled) for s in sources] == [("feed", 600, True), ("local", 7200, True),
                                                                   ("off", 7200, False)]
    assert sources[1].spec == str((tmp_path / "pages").resolve())
    schedule = beat_schedule(sources)
    assert set(schedule) == {"source:feed", "source:local"}
    assert schedule["source:feed"] == {"task": "reprint.scheduled_ingest", "schedule": timedelta(minutes=10),
                                       "args": ["https://a.example/feed.xml"], "kwargs": {"name": "feed"},
                                       "options": {"queue": "discover"}}
    path.write_text("sources:\n  - {name: a, spec: x}\n  - {name: a, spec: y}\n")
    with pytest.raises(ConfigError, match="twice"):
        load_sources(path)
    path.write_text("sources:\n  - {name: off, spec: x}\n")
    with pytest.raises(ConfigError, match="quote"):
        load_sources(path)
    assert load_sources(ROOT / "config" / "sources.yaml")  # the shipped file is valid


# --- the command line -----------------------------------------------------------------------------
def test_embedded_ingest_never_imports_celery(tmp_path: Path) -> None:
    page = tmp_path / "a.html"
    page.write_text(article_html("A", story(5)))
    code = (
        "import sys\n"
        "from pipeline.cli import main\n"
        f"sys.argv = ['reprint', 'ingest', '--no-progress', '--db', 'sqlite:///{tmp_path / 'r.db'}', '{page}']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "print('CELERY' if any(m == 'celery' or m.startswith(('celery.', 'kombu')) for m in sys.modules) else 'NONE')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPRINT_")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                            timeout=120)
    assert result.stdout.strip().endswith("NONE"), result.stdout + result.stderr
    assert "articles stored" in result.stdout


def test_cli_has_the_deployment_commands_and_ingest_via() -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    runner = CliRunner()
    top = runner.invoke(app, ["--help"])
    for command in ("worker", "beat", "migrate", "deadletters", "ingest", "export"):
        assert command in top.output
    assert "--via" in runner.invoke(app, ["ingest", "--help"]).output
    assert "replay" in runner.invoke(app, ["deadletters", "--help"]).output


def test_console_script_is_the_one_cli() -> None:
    """The installed ``reprint`` is the library's app: the same commands, built in one place."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["reprint"] == "pipeline.cli:run"
    from pipeline.cli import app, main, run
    from pipeline.cli.app import main as app_main
    from pipeline.cli.app import run as app_run

    assert main is app_main and run is app_run
    names = {c.name or c.callback.__name__ for c in app.registered_commands if c.callback}
    groups = {g.name for g in app.registered_groups}
    assert {"ingest", "export", "clusters", "serve", "status", "migrate", "worker", "beat"} <= names
    assert {"index", "deadletters"} <= groups


def test_warc_filters_are_refused_with_via_celery(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    result = CliRunner().invoke(app, ["ingest", "--via", "celery", "--warc-host", "example.org",
                                      "--db", f"sqlite:///{tmp_path}/x.db", str(tmp_path / "a.warc.gz")])
    assert result.exit_code == 2
    assert "--warc-host cannot be used with --via celery" in result.output
