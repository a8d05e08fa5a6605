"""Databases for tests: a SQLite file, or a fresh PostgreSQL database (127.0.0.1:5432, user postgres, trust auth)
dropped afterwards.

PostgreSQL is skipped when it does not answer, except under CI (``CI`` set), where that fails. ``tests/conftest.py``
re-exports these names and builds its per-test ``db_url`` fixture on ``temporary_database``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("REPRINT_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_URL_TEMPLATE = os.environ.get("REPRINT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/{name}")


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _pg_problem() -> str | None:
    """None when PostgreSQL answers; otherwise why not."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except Exception as err:  # any failure means: not usable here
        return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    return None


@contextmanager
def temporary_database(backend: str, tmp: Path, prefix: str = "reprint_test", *,
                       problem: str | None = None, file: str = "reprint.db") -> Iterator[str]:
    """The URL of an empty database of ``backend`` ('sqlite': ``tmp/file``; 'postgresql': a new database named
    ``prefix_<random>``). ``problem`` is ``_pg_problem()`` when the caller knows it already."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / file}"
        return
    problem = problem if problem is not None else _pg_problem()
    if problem is not None:
        if under_ci():
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL} under CI: {problem}")
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {problem}")
    import psycopg

    name = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL_TEMPLATE.format(name=name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
