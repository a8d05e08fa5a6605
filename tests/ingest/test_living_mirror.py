"""The living-articles mirror test, embedded: on SQLite and PostgreSQL, a follower of ``/changes`` (a real uvicorn)
stays equal to the canonical set through updates (a canonical corrected, a page moved to another cluster), a
re-processing, each kind of review and its undo, and a takedown (``tests/support/living.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.serve.api import create_app, serve_in_thread
from pipeline.settings import Settings
from pipeline.store import Store
from tests.support.db import temporary_database
from tests.support.living import EmbeddedDeployment, Follower, World, run_scenario
from tests.support.world import write_pages


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_mirror_follows_every_change(backend: str, tmp_path: Path) -> None:
    for url in temporary_database(backend, tmp_path):
        settings = Settings(database_url=url)
        store = Store(url)
        try:
            with serve_in_thread(create_app(store, settings)) as base:
                world = World(store, tmp_path, write_pages(tmp_path), Follower(base))
                run_scenario(world, EmbeddedDeployment(store, settings))
            steps = [name for name, _ in world.log]
            assert steps[-1] == "forget" and "reprocess" in steps
        finally:
            store.close()
