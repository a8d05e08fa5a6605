"""Shared fixtures: a database per test (SQLite and PostgreSQL) and a store on it, a clean REPRINT_* environment,
the CLI's environment, a loopback HTTP server (``http_server``) and in-process tasks on a private Redis
(``deployment``).

PostgreSQL tests create a fresh database on 127.0.0.1:5432 (user postgres, trust auth) and drop it
afterwards. They are skipped when PostgreSQL does not answer, except under CI, where they fail.
Helpers that are not fixtures live in ``tests/support/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.store import Store
from tests.support.db import pg_database, pg_problem_reason
from tests.support.http import http_server  # noqa: F401 - the fixture, for every test
from tests.support.workers import (  # noqa: F401 - fixtures: in-process tasks; a RabbitMQ node per session
    deployment,
    rabbitmq_node,
    shared_rabbitmq,
)


@pytest.fixture(scope="session")
def pg_problem() -> str | None:
    return pg_problem_reason()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, pg_problem: str | None) -> Iterator[str]:
    """An empty database URL, once for SQLite (a file) and once for PostgreSQL (a fresh database)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'reprint.db'}"
        return
    with pg_database() as url:
        yield url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A ``Store`` on ``db_url`` (both databases), closed afterwards."""
    s = Store(db_url)
    yield s
    s.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'reprint.db'}"


@pytest.fixture(autouse=True)
def clean_reprint_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own REPRINT_* settings."""
    for key in list(os.environ):
        if key.startswith("REPRINT_"):
            monkeypatch.delenv(key)


@pytest.fixture
def reprint_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """For CLI tests: the fetcher may reach the test server on 127.0.0.1, quickly; cwd is tmp_path."""
    monkeypatch.setenv("REPRINT_FETCH_ALLOW_NETWORKS", "127.0.0.1/32")
    monkeypatch.setenv("REPRINT_FETCH_DEADLINE", "5")
    monkeypatch.setenv("REPRINT_FETCH_CONNECT_TIMEOUT", "2")
    monkeypatch.setenv("REPRINT_FETCH_READ_TIMEOUT", "2")
    monkeypatch.setenv("REPRINT_FETCH_ROBOTS_TIMEOUT", "2")
    monkeypatch.setenv("REPRINT_FETCH_MAX_RETRIES", "0")
    monkeypatch.setenv("REPRINT_FETCH_BACKOFF", "0.01")
    monkeypatch.chdir(tmp_path)  # the default sqlite:///reprint.db lands in the test's own directory
