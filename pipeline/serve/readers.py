"""Kept read connections for the read hot paths, and the driver's parameter style for hand-written SQL."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from pipeline.store import Store

#: Idle read connections kept per engine (more only while more requests are in flight at once).
READ_CONNECTIONS = 8

T = TypeVar("T")


def _close_quietly(conn: Any) -> None:
    with contextlib.suppress(Exception):  # a connection being thrown away may already be dead
        conn.close()


class ReadConnections:
    """Autocommit DBAPI connections for the read hot paths (listings, the feed), kept per engine.

    A pooled SQLAlchemy read costs a ping per checkout (a round trip on PostgreSQL), a BEGIN, a ROLLBACK on
    return and a Row object per row: several round trips and a few hundred microseconds a page that a
    single-statement read does not need. These connections are taken out of the pool once (they never count
    against it), run in autocommit (each statement sees what was committed when it started, as READ COMMITTED
    does), and one found dead is replaced and the statement retried once. ``engine.dispose()`` (``Store.close``)
    closes them. DBAPI errors surface as SQLAlchemy's, so the API answers them as before (503).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._generation = 0
        event.listen(engine, "engine_disposed", self._disposed)

    def _disposed(self, _engine: Engine) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            self._generation += 1
        for conn in idle:
            _close_quietly(conn)

    def _open(self) -> Any:
        fairy = self.engine.raw_connection()
        fairy.detach()
        conn = fairy.dbapi_connection
        if self.dialect == "postgresql":
            conn.autocommit = True
            # many small concurrent reads: one query's parallel workers would take every core from the others
            conn.execute("SET max_parallel_workers_per_gather = 0")
        return conn

    def run(self, work: Callable[[Any], T]) -> T:
        """``work(cursor)`` on a kept connection."""
        for attempt in (0, 1):
            with self._lock:
                conn = self._idle.pop() if self._idle else None
                generation = self._generation
            reused = conn is not None
            try:
                if conn is None:
                    conn = self._open()
                cursor = conn.cursor()
                try:
                    result = work(cursor)
                finally:
                    cursor.close()
            except self._error as err:
                if conn is not None:
                    _close_quietly(conn)
                if reused and attempt == 0 and self.engine.dialect.is_disconnect(err, conn, None):
                    continue  # the server restarted or dropped it: once more on a new connection
                raise DBAPIError.instance(None, None, err, self._error) from err
            except BaseException:
                if conn is not None:
                    _close_quietly(conn)
                raise
            with self._lock:
                if generation == self._generation and len(self._idle) < READ_CONNECTIONS:
                    self._idle.append(conn)
                    conn = None
            if conn is not None:
                _close_quietly(conn)
            return result
        raise AssertionError("unreachable")


_readers_lock = threading.Lock()


def readers(store: Store) -> ReadConnections:
    """The kept read connections of ``store``'s engine (made on first use)."""
    engine = store.engine
    found = engine.__dict__.get("_reprint_readers")
    if found is None:
        with _readers_lock:
            found = engine.__dict__.get("_reprint_readers")
            if found is None:
                found = engine.__dict__["_reprint_readers"] = ReadConnections(engine)
    return found


def sql_for(dialect: str, text: str) -> str:
    """``text`` with ``:name`` parameters in the driver's style (psycopg: ``%(name)s``, its ``%`` doubled)."""
    if dialect == "postgresql":
        return re.sub(r":(\w+)", r"%(\1)s", text.replace("%", "%%"))
    return text
