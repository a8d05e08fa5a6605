"""The changes feed under concurrent writers on PostgreSQL: ids are drawn in one order and committed in another.

Without a horizon a follower that reads id N+1 while id N is still uncommitted skips N forever (its cursor is
past it). The feed only serves ids below every in-flight writer, so the late commit is still delivered.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from pipeline.serve.api import create_app, serve_in_thread
from pipeline.serve.queries import list_changes
from pipeline.settings import Settings
from pipeline.store import Store
from tests.support.db import temporary_database


@pytest.fixture
def pg_store(tmp_path: Path) -> Iterator[Store]:
    for url in temporary_database("postgresql", tmp_path):
        store = Store(url)
        try:
            yield store
        finally:
            store.close()


def _insert(conn: psycopg.Connection, kind: str) -> int:
    row = conn.execute("INSERT INTO events (at, type, data) VALUES (now(), %s, '{}') RETURNING id", (kind,)).fetchone()
    assert row is not None
    return int(row[0])


def test_a_late_commit_of_an_earlier_id_is_not_skipped(pg_store: Store) -> None:
    dsn = pg_store.url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as slow, psycopg.connect(dsn, autocommit=True) as fast, \
            serve_in_thread(create_app(pg_store, Settings(database_url=pg_store.url))) as url, \
            httpx.Client(base_url=url, timeout=10) as client:
        first = _insert(fast, "before")
        body = client.get("/changes").json()
        assert [e["id"] for e in body["events"]] == [first]
        cursor = body["next_cursor"]

        early = _insert(slow, "slow")  # drawn first, committed last
        late = _insert(fast, "fast")
        assert early < late
        started = time.perf_counter()
        body = client.get("/changes", params={"cursor": cursor}).json()
        assert time.perf_counter() - started < 2
        assert body["events"] == [] and body["next_cursor"] == cursor, "served an id past an uncommitted one"

        slow.commit()
        body = client.get("/changes", params={"cursor": cursor}).json()
        assert [e["id"] for e in body["events"]] == [early, late]
        assert [e["type"] for e in body["events"]] == ["slow", "fast"]


def test_the_horizon_does_not_hold_back_a_quiet_feed(pg_store: Store) -> None:
    dsn = pg_store.url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        ids = [_insert(conn, f"e{i}") for i in range(5)]
    events, last = list_changes(pg_store, after=0, limit=100)
    assert [e["id"] for e in events] == ids and last == ids[-1]
