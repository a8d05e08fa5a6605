"""The lock held around re-clustering, so that two workers never re-partition one component at once.

``Deduplicator.add`` writes its verified edges first and then, under this lock, re-reads the component and
re-assigns clusters and canonicals. Whoever takes the lock last sees every edge committed before it, so the
last re-cluster is always complete; without the lock two interleaved re-clusters can each write half a
decision (two canonicals in one cluster).

Which lock, per store:

- **PostgreSQL: a session-level advisory lock** (``pg_advisory_lock``) on a connection held for the critical
  section. Chosen over a Redis lock because its lifetime is the connection's, not a guessed timeout: a worker
  killed mid-re-cluster (hard time limit, OOM, SIGKILL) drops its connection and PostgreSQL releases the lock
  at once, while a Redis lock would either stay held until its timeout (every worker stalls) or, with a timeout
  shorter than a huge component's re-cluster, expire while still held (two re-clusters at once). It also lives
  in the database whose rows it protects, so it needs no second service to be up. A transaction-level advisory
  lock would not do: ``Store`` opens a new session per operation, so no one transaction spans the re-cluster.
  The connection is in autocommit mode, so holding the lock keeps no transaction open. (Session advisory locks
  need a direct connection or session pooling; PgBouncer in transaction mode would break them.)
- **SQLite: a process-local lock**, one per database file: the embedded deployment is one process.
- Any other database, given a Redis client: a Redis lock with a long timeout, as a fallback.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import text

if TYPE_CHECKING:
    import redis
    from sqlalchemy.engine import Engine

    from pipeline.store import Store

log = logging.getLogger(__name__)

LOCK_NAME = "reprint:cluster"

_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` from a readable name."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def pg_advisory_lock(engine: Engine, name: str = LOCK_NAME) -> Callable[[], AbstractContextManager[None]]:
    """A cross-process, cross-machine lock: ``pg_advisory_lock`` on a connection held while it is held."""
    key = advisory_key(name)

    @contextmanager
    def hold() -> Iterator[None]:
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                try:
                    released = conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key}).scalar()
                    if not released:  # the session was reset under us: the lock had already gone with it
                        log.warning("advisory lock %s was not held at release", name)
                except Exception:
                    # Never hand a connection that may still hold the lock back to the pool.
                    conn.invalidate()
                    raise
        finally:
            conn.close()

    return hold


def local_lock(key: str) -> Callable[[], AbstractContextManager[bool]]:
    """A lock shared by every Deduplicator of this process on one database (the embedded deployment)."""
    with _local_guard:
        lock = _local_locks.setdefault(key, threading.Lock())
    return lambda: lock


def redis_lock(
    client: redis.Redis, name: str = LOCK_NAME, *, timeout: float = 3600.0, blocking_timeout: float | None = None
) -> Callable[[], AbstractContextManager[object]]:
    """A Redis lock; ``timeout`` must exceed the longest re-cluster, or two could overlap when it expires."""
    return lambda: client.lock(name, timeout=timeout, blocking_timeout=blocking_timeout)


def cluster_lock_for(
    store: Store, client: redis.Redis | None = None, *, name: str = LOCK_NAME
) -> Callable[[], AbstractContextManager[object]]:
    """The re-clustering lock for a store: advisory lock on PostgreSQL, process lock on SQLite (see module doc).

    ``client`` is only used for a database that is neither (a Redis lock); it is accepted here so that callers
    can pass what they have without knowing which lock the store needs.
    """
    dialect = store.engine.dialect.name
    if dialect == "postgresql":
        return pg_advisory_lock(store.engine, name)
    if dialect == "sqlite":
        return local_lock(f"{store.engine.url}#{name}")
    if client is not None:
        return redis_lock(client, name)
    raise ValueError(f"no cross-process lock for a {dialect} store without a Redis client")


def workers_cluster_lock(
    store: Store, client: redis.Redis, prefix: str
) -> Callable[[], AbstractContextManager[object]]:
    """The re-clustering lock for processes that share one store (the Celery workers, and whoever finishes
    their runs): the advisory lock on PostgreSQL; on SQLite, whose process-local lock cannot span several
    processes, a Redis lock."""
    if store.engine.dialect.name == "sqlite":
        from pipeline.shared import keys

        return redis_lock(client, keys.cluster_lock(prefix))
    return cluster_lock_for(store, client)
