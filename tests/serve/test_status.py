"""``reprint status`` on a live Redis with messages queued, and on the embedded store with no broker.

Messages are pushed the way kombu's Redis transport stores them (a list per queue, priority sub-lists named
``queue SEP step``, bindings in ``_kombu.binding.<exchange>``), under names unique to the test and in a Redis
database of their own, so other tests and workers on the same Redis are neither disturbed nor counted.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from pipeline.cli.app import app
from pipeline.ingest.runner import run_ingest
from pipeline.serve.status import KOMBU_SEP, parse_interval, queue_depths
from pipeline.settings import Settings
from pipeline.store import Store
from tests.support.pages import original_page, unrelated_page
from tests.support.shared_redis import connect_or_skip
from tests.support.workers import RabbitServer

REDIS_DB_URL = "redis://127.0.0.1:6379/14"


def reprint(*args: str) -> Result:
    """``reprint ARGS`` in-process."""
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def redis_client() -> Iterator[object]:
    client = connect_or_skip(REDIS_DB_URL, timeout=2)
    yield client
    client.close()


@pytest.fixture
def filled_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'status.db'}"
    (tmp_path / "pier.html").write_bytes(original_page())
    (tmp_path / "otters.html").write_bytes(unrelated_page())
    store = Store(url)
    try:
        run_ingest([str(tmp_path / "pier.html"), str(tmp_path / "otters.html")], store, Settings(database_url=url),
                   progress=False)
    finally:
        store.close()
    return url


def test_status_json_reports_live_queue_depths(redis_client, filled_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tag = f"reprint_test_{secrets.token_hex(4)}"
    queue = f"{tag}_fetch"
    binding = f"_kombu.binding.{tag}"
    letters = f"{tag}:deadletters"
    message = json.dumps({"body": "e30=", "headers": {"task": "reprint.fetch_url", "id": "x"},
                          "properties": {"delivery_info": {"routing_key": queue}}})
    keys = [queue, f"{queue}{KOMBU_SEP}3", binding, letters]
    try:
        redis_client.sadd(binding, f"{queue}{KOMBU_SEP}{KOMBU_SEP}{queue}")
        redis_client.lpush(queue, *[message] * 7)
        redis_client.lpush(f"{queue}{KOMBU_SEP}3", *[message] * 2)
        redis_client.rpush(letters, json.dumps({"id": "a"}), json.dumps({"id": "b"}))
        monkeypatch.setenv("REPRINT_BROKER_URL", REDIS_DB_URL)
        monkeypatch.setenv("REPRINT_REDIS_URL", REDIS_DB_URL)
        monkeypatch.setenv("REPRINT_REDIS_PREFIX", tag)

        result = reprint("status", "--json", "--db", filled_db)
        assert result.exit_code == 0, result.output
        status = json.loads(result.stdout)
        broker = status["broker"]
        assert broker["configured"] and broker["source"] == "configured" and broker["reachable"] is True
        depths = {q["name"]: q["depth"] for q in broker["queues"]}
        assert depths[queue] == 9  # the list plus its priority sub-list
        assert {"discover", "fetch", "extract", "dedup"} <= set(depths)
        assert broker["dead_letters"] == 2
        assert broker["workers"]["inspected"] or broker["workers"]["note"]
        assert queue_depths(redis_client, [queue]) == {queue: 9}

        redis_client.rpop(queue)  # a worker took one
        status = json.loads(reprint("status", "--json", "--db", filled_db).stdout)
        assert {q["name"]: q["depth"] for q in status["broker"]["queues"]}[queue] == 8

        human = reprint("status", "--db", filled_db)
        assert human.exit_code == 0, human.output
        assert queue in human.stdout and "dead letters: 2" in human.stdout
    finally:
        redis_client.delete(*keys)


def test_status_reads_queue_depths_and_broker_dead_letters_on_rabbitmq(filled_db: str, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       shared_rabbitmq: RabbitServer) -> None:
    import kombu

    from pipeline.serve.status import broker_status
    from tests.support.workers import RedisServer
    from workers import broker

    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis = RedisServer(redis_dir)
    redis.start()
    try:
        settings = Settings(broker_url=shared_rabbitmq.url, redis_url=redis.url)
        with kombu.Connection(shared_rabbitmq.url) as connection:
            channel = connection.default_channel
            for queue in broker.task_queues(settings, ("fetch", "dedup")):
                queue(channel).declare()
            broker.declare_dead_letters(connection)
            producer = connection.Producer(channel)
            for _ in range(3):
                producer.publish({"x": 1}, exchange=broker.TASK_EXCHANGE, routing_key="fetch")
            producer.publish({"x": 1}, exchange=broker.DEAD_EXCHANGE, routing_key="whatever")
        redis.client().rpush(f"{settings.redis_prefix}:deadletters", json.dumps({"id": "a"}))
        monkeypatch.setenv("REPRINT_BROKER_URL", shared_rabbitmq.url)
        out = broker_status(settings, inspector=lambda url, timeout: {"alive": []})
    finally:
        redis.stop()
    assert out["reachable"] is True, out
    depths = {q["name"]: q["depth"] for q in out["queues"]}
    assert depths == {"discover": 0, "fetch": 3, "extract": 0, "dedup": 0}  # discover/extract not declared yet
    assert out["dead_letters"] == 2  # one in the guard's list, one still in RabbitMQ's dead-letter queue
    assert "RabbitMQ" in out["note"] and out["url"].startswith("amqp://guest:***@")


def test_status_without_a_broker_shows_the_store_and_says_so(filled_db: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRINT_BROKER_URL", "")
    schedule = tmp_path / "sources.yaml"
    spec = str(tmp_path / "otters.html")
    schedule.write_text(f"defaults:\n  interval: 30m\nsources:\n  - spec: {spec}\n    interval: 2h\n")

    result = reprint("status", "--json", "--db", filled_db, "--sources", str(schedule))
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["broker"]["configured"] is False and "no broker is configured" in status["broker"]["note"]
    assert status["broker"]["queues"] == []
    sources = {s["spec"]: s for s in status["sources"]}
    assert sources[spec]["pages"] == 1 and sources[spec]["new_articles"] == 1 and sources[spec]["errors"] == 0
    assert sources[spec]["interval_seconds"] == 7200 and sources[spec]["next_due"] > sources[spec]["last_run_at"]
    assert len(status["runs"]) == 1 and status["runs"][0]["new_articles"] == 2
    assert status["today"]["new_articles"] == 2 and set(status["today"]["flags"]) >= {"spun", "scraped"}
    assert status["totals"]["articles"] == 2

    human = reprint("status", "--db", filled_db)
    assert human.exit_code == 0, human.output
    assert "no broker is configured" in human.stdout and "recent runs" in human.stdout


def test_status_needs_an_existing_database(tmp_path: Path) -> None:
    result = reprint("status", "--db", f"sqlite:///{tmp_path / 'missing.db'}")
    assert result.exit_code == 2 and "no database" in result.output


def test_intervals() -> None:
    assert parse_interval("30m").total_seconds() == 1800
    assert parse_interval("1.5h").total_seconds() == 5400
    assert parse_interval(45).total_seconds() == 45
    with pytest.raises(ValueError):
        parse_interval("soon")


def test_metrics_read_queue_depths_dead_letters_and_task_latency(redis_client, filled_db: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.serve.metrics import Metrics
    from pipeline.shared.latency import record_task_latency

    tag = f"reprint_test_{secrets.token_hex(4)}"
    queue, binding = f"{tag}_dedup", f"_kombu.binding.{tag}"
    monkeypatch.setenv("REPRINT_BROKER_URL", REDIS_DB_URL)
    monkeypatch.setenv("REPRINT_REDIS_URL", REDIS_DB_URL)
    monkeypatch.setenv("REPRINT_REDIS_PREFIX", tag)
    keys = [queue, binding, f"{tag}:deadletters", f"{tag}:metrics:task_latency",
            f"{tag}:metrics:task_latency:reprint.fetch_url"]
    try:
        redis_client.sadd(binding, f"{queue}{KOMBU_SEP}{KOMBU_SEP}{queue}")
        redis_client.lpush(queue, "a", "b", "c")
        redis_client.rpush(f"{tag}:deadletters", "{}")
        for seconds in (0.02, 0.3, 4.0):
            record_task_latency(redis_client, "reprint.fetch_url", seconds, prefix=tag)
        store = Store(filled_db)
        try:
            text = Metrics(store, Settings()).render()[0].decode()
        finally:
            store.close()
        assert "reprint_broker_up 1.0" in text
        assert f'reprint_queue_depth{{queue="{queue}"}} 3.0' in text
        assert "reprint_dead_letters 1.0" in text
        assert 'reprint_task_latency_seconds_bucket{le="0.05",task="reprint.fetch_url"} 1.0' in text
        assert 'reprint_task_latency_seconds_bucket{le="0.5",task="reprint.fetch_url"} 2.0' in text
        assert 'reprint_task_latency_seconds_count{task="reprint.fetch_url"} 3.0' in text
        assert "reprint_articles 2.0" in text
    finally:
        redis_client.delete(*keys)
