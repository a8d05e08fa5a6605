"""docker-compose.yml: its structure, ``docker compose config`` when Docker is there, and the services'
commands started directly (no Docker engine runs here).

The structure test reads the YAML and checks what the deployment relies on: AOF and noeviction on
Redis, healthchecks, ``depends_on`` with conditions (the one-shot migration must complete before
workers, beat and the API start), and that every ``reprint`` command in the file exists. The direct
test then runs those same commands against a private RabbitMQ node, a private Redis and a fresh PostgreSQL
database:
``reprint migrate``; ``reprint worker`` answering the healthcheck's ``celery inspect ping``;
``reprint beat`` taking the redbeat lock (the beat healthcheck) and enqueueing a scheduled source that
a worker ingests; Flower's ``/healthcheck``; ``reprint serve``'s ``/healthz``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.workers import (
    ROOT,
    RabbitServer,
    Worker,
    db_counts,
    deployment_env,
    free_port,
    pg_database,
    redis_server,
    reprint_cmd,
    run_reprint,
    start_worker,
    wait_for,
    workers,
    write_corpus,
)

COMPOSE = ROOT / "docker-compose.yml"
SERVICES = {"rabbitmq", "redis", "postgres", "migrate", "worker", "beat", "flower", "api"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    return command if isinstance(command, list) else str(command).split()


def test_compose_services_and_redis_durability(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == SERVICES
    redis_cmd = " ".join(_command(services["redis"]))
    assert "--appendonly yes" in redis_cmd
    assert "--maxmemory-policy noeviction" in redis_cmd
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])
    # RabbitMQ is the broker (a dead worker's tasks come back at once); its data survives a restart
    assert compose["x-reprint"]["environment"]["REPRINT_BROKER_URL"].startswith("amqp://")
    assert services["rabbitmq"]["hostname"] and any(v.endswith(":/var/lib/rabbitmq")
                                                    for v in services["rabbitmq"]["volumes"])


def test_compose_healthchecks_and_startup_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in SERVICES - {"migrate"}:
        assert "test" in services[name].get("healthcheck", {}), f"{name} has no healthcheck"
    assert services["migrate"]["restart"] == "no"
    conditions = {"service_healthy", "service_completed_successfully", "service_started"}
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must carry conditions"
        for target, spec in depends.items():
            assert target in services
            assert spec.get("condition") in conditions, f"{name} → {target}"
    for name in ("worker", "beat", "api"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("rabbitmq", "redis"):
        assert services["worker"]["depends_on"][name]["condition"] == "service_healthy"


def test_compose_commands_exist_in_the_cli(compose: dict[str, Any]) -> None:
    from typer.main import get_command

    from pipeline.cli import app

    known = set(get_command(app).commands)  # type: ignore[attr-defined]
    for name, service in compose["services"].items():
        command = _command(service)
        if command and command[0] == "reprint":
            assert command[1] in known, f"{name}: reprint {command[1]} does not exist"
    env = compose["x-reprint"]["environment"]
    assert {"REPRINT_DATABASE_URL", "REPRINT_BROKER_URL", "REPRINT_REDIS_URL"} <= set(env)


def _docker_compose_available() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "compose", "version"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_docker_compose_config_validates() -> None:
    if not _docker_compose_available():
        pytest.skip("the docker compose plugin is not installed here")
    result = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"], capture_output=True,
                            text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (OSError, ValueError):
        return False


def _spawn(args: list[str], env: dict[str, str], log: Path) -> Worker:
    handle = log.open("wb")
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    handle.close()
    return Worker(proc, log, log.stem)


def test_compose_commands_run_directly(tmp_path: Path, shared_rabbitmq: RabbitServer) -> None:
    corpus = tmp_path / "corpus"
    files = write_corpus(corpus, 2, copies=1)
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n  - name: local\n    spec: {corpus}\n    interval: 10s\n")
    with redis_server(tmp_path) as server, pg_database() as db_url:
        # as in the file: RabbitMQ the broker, Redis the index, locks and schedule
        env = deployment_env(server.url, db_url, broker_url=shared_rabbitmq.url, REPRINT_SOURCES_FILE=str(sources))
        prefix = env["REPRINT_REDIS_PREFIX"]
        # migrate: the one-shot service
        migrate = run_reprint(env, "migrate")
        assert migrate.returncode == 0, migrate.stderr
        worker = start_worker(env, tmp_path, "worker")
        beat = _spawn(reprint_cmd("beat", "--loglevel", "INFO"), env, tmp_path / "beat.log")
        flower_port, api_port = free_port(), free_port()
        flower = _spawn([sys.executable, "-m", "celery", "-A", "workers.app", "flower", f"--port={flower_port}",
                         "--address=127.0.0.1"], env, tmp_path / "flower.log")
        api = _spawn(reprint_cmd("serve", "--host", "127.0.0.1", "--port", str(api_port)), env, tmp_path / "api.log")
        with workers(worker, beat, flower, api):
            worker.wait_ready()
            # the worker healthcheck: `celery inspect ping -d worker@$HOSTNAME`
            ping = subprocess.run([sys.executable, "-m", "celery", "-A", "workers.app", "inspect", "ping", "-d",
                                   f"worker@{socket.gethostname()}", "--timeout", "5"], env=env, cwd=ROOT,
                                  capture_output=True, text=True, timeout=60)
            assert "pong" in ping.stdout, ping.stdout + ping.stderr
            # the beat healthcheck: the redbeat lock is held; the schedule entry is in Redis
            client = server.client()
            wait_for(lambda: client.exists(f"{prefix}:redbeat:lock"), 30, "beat to take the redbeat lock")
            assert client.exists(f"{prefix}:redbeat:source:local")
            # ... and the scheduled source is ingested by the worker (first due one interval after start)
            wait_for(lambda: db_counts(db_url)["articles"] == len(files), 60, "the scheduled source to be ingested")
            wait_for(lambda: _http_ok(f"http://127.0.0.1:{flower_port}/healthcheck"), 30, "flower")
            wait_for(lambda: _http_ok(f"http://127.0.0.1:{api_port}/healthz"), 30, "the API")
            for proc in (worker, beat, flower, api):
                assert proc.proc.poll() is None, proc.text()[-2000:]
