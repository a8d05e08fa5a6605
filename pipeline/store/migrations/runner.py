"""Running the migrations beside them: ``reprint migrate`` and the tests call ``run_migrations``.

The Alembic environment (``env.py``) and the revisions (``versions/``) live in this folder; the config is
built here in code, so no ``alembic.ini`` is needed (the one at the top of the repository serves the plain
``alembic`` command).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: The folder Alembic reads: this package.
SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(url: str) -> Any:
    """An Alembic config for these migrations and this database."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    cfg.attributes["database_url"] = url
    return cfg


def run_migrations(url: str, revision: str = "head") -> str:
    """Bring a PostgreSQL database to ``revision``; SQLite keeps ``create_all``. Returns what was done.

    A database whose tables were made by ``create_all`` (``reprint ingest`` on PostgreSQL) but never
    migrated is adopted instead of failing on CREATE TABLE: stamped at the head if it already matches
    the models, else at the first revision and upgraded from there.
    """
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import inspect as sa_inspect

    from pipeline.store.store import Base, Store, make_engine

    if url.startswith("sqlite"):
        Store(url).close()
        return "sqlite: tables created (SQLite uses create_all, not migrations)"
    cfg = alembic_config(url)
    engine = make_engine(url)
    try:
        tables = set(sa_inspect(engine).get_table_names())
        if "alembic_version" not in tables and "articles" in tables:
            with engine.connect() as conn:
                current = not compare_metadata(MigrationContext.configure(conn), Base.metadata)
            command.stamp(cfg, "head" if current else "0001")
    finally:
        engine.dispose()
    command.upgrade(cfg, revision)
    return f"postgresql: migrated to {revision}"
