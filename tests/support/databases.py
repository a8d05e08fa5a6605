"""A temporary database for a test module: a SQLite file, or a fresh PostgreSQL database dropped afterwards.

PostgreSQL is skipped when it does not answer, except under CI, where that fails (as ``tests/conftest.py`` does
for the per-test ``db_url`` fixture).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN_URL, PG_URL_TEMPLATE, _pg_problem, under_ci


@contextmanager
def temporary_database(backend: str, tmp: Path, prefix: str = "reprint_ui") -> Iterator[str]:
    """The URL of an empty database of ``backend`` ('sqlite' or 'postgresql')."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'reprint.db'}"
        return
    problem = _pg_problem()
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
