"""The living-articles mirror test through real Celery worker processes: two ``reprint worker`` processes on a
private redis-server, on SQLite and on a throwaway PostgreSQL database. Ingests and updates go through
``reprint ingest --via celery``, the re-processing through ``reprint reprocess --via celery``, reviews and the
takedown through the ``reprint`` CLI of the same deployment; a follower of ``/changes`` (a real uvicorn over the
workers' database) must equal the canonical set after every step (``tests/support/living.py``)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pipeline.serve.api import create_app, serve_in_thread
from pipeline.settings import Settings
from pipeline.store import Store
from tests.support.living import Follower, World, run_scenario
from tests.support.workers import deployment_env, pg_database, redis_server, run_reprint, start_worker, workers
from tests.support.world import write_pages


class CeleryDeployment:
    """The distributed deployment: every change through the ``reprint`` command line and the workers."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def _run(self, *args: str) -> str:
        done = run_reprint(self.env, *args, timeout=180)
        assert done.returncode == 0, f"reprint {' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def ingest(self, paths: list[Path]) -> None:
        self._run("ingest", "--via", "celery", "--no-progress", *map(str, paths))

    def reprocess(self) -> dict[str, Any]:
        return json.loads(self._run("reprocess", "--via", "celery", "--no-progress", "--json"))

    def review(self, kind: str, urls: list[str], *, flag: str | None = None, on: bool | None = None) -> int:
        args = ["review", kind, *urls]
        if kind == "flag":
            args += [str(flag), "--on" if on else "--off"]
        out = self._run(*args, "--note", f"{kind} test", "--who", "tester")
        return int(re.search(r"review #(\d+)", out).group(1))  # type: ignore[union-attr]

    def undo(self, review_id: int) -> None:
        self._run("review", "undo", str(review_id), "--who", "tester")

    def forget(self, url: str, reason: str) -> None:
        assert "forgot" in self._run("forget", url, "--reason", reason, "--who", "tester")


@contextmanager
def _database(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'workers.db'}"
        return
    with pg_database() as url:
        yield url


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_mirror_follows_every_change_through_the_workers(backend: str, tmp_path: Path) -> None:
    with redis_server(tmp_path) as server, _database(backend, tmp_path) as db_url:
        env = deployment_env(server.url, db_url)
        assert run_reprint(env, "migrate").returncode == 0
        with workers(start_worker(env, tmp_path, "w1"), start_worker(env, tmp_path, "w2")) as started:
            for worker in started:
                worker.wait_ready()
            store = Store(db_url, create=False)
            try:
                with serve_in_thread(create_app(store, Settings(database_url=db_url))) as base:
                    pages = tmp_path / "pages"
                    pages.mkdir()
                    world = World(store, pages, write_pages(pages), Follower(base))
                    run_scenario(world, CeleryDeployment(env))
            finally:
                store.close()
            logs = "".join(w.text() for w in started)
            assert "reprint.reprocess_batch" in logs and "reprint.dedup_article" in logs
