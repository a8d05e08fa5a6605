"""PostgreSQL for tests: where it is, whether it answers, and a throwaway database.

Tests that need PostgreSQL create a fresh database on 127.0.0.1:5432 (user postgres, trust auth) and drop it
afterwards. When PostgreSQL does not answer they are skipped, except under CI, where they fail.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("REPRINT_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_URL_TEMPLATE = os.environ.get("REPRINT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/{name}")


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pg_problem_reason() -> str | None:
    """None when PostgreSQL answers; otherwise why not."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except Exception as err:  # any failure means: not usable here
        return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    return None


def skip_or_fail(reason: str) -> None:
    """A missing service skips the test locally and fails it under CI."""
    if under_ci():
        pytest.fail(reason)
    pytest.skip(reason)


@contextlib.contextmanager
def pg_database(prefix: str = "reprint_test") -> Iterator[str]:
    """A fresh, empty PostgreSQL database (``<prefix>_<random>``), dropped afterwards (skip or fail without one)."""
    problem = pg_problem_reason()
    if problem is not None:
        skip_or_fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {problem}")
    import psycopg

    name = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL_TEMPLATE.format(name=name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def temporary_database(backend: str, tmp: Path) -> Iterator[str]:
    """Yield one database URL: a SQLite file in ``tmp``, or a fresh PostgreSQL database dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'api.db'}"
        return
    with pg_database("reprint_api") as url:
        yield url
