"""Alembic environment: the target schema is ``pipeline.store.store.Base.metadata``.

The URL comes from ``reprint migrate`` (``config.attributes["database_url"]``), else ``-x db=URL``, else
``REPRINT_DATABASE_URL``; ``postgresql://`` means psycopg 3, as everywhere in reprint.
"""

from __future__ import annotations

import logging
import os
from logging.config import fileConfig

from alembic import context

from pipeline.store.store import Base, make_engine

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
log = logging.getLogger("alembic.env")

target_metadata = Base.metadata


def database_url() -> str:
    url = (config.attributes.get("database_url") or context.get_x_argument(as_dictionary=True).get("db")
           or os.environ.get("REPRINT_DATABASE_URL"))
    if not url:
        raise SystemExit("no database URL: pass -x db=URL or set REPRINT_DATABASE_URL")
    return url


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade head --sql``) instead of running it."""
    url = database_url()
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True,
                      dialect_opts={"paramstyle": "named"}, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(database_url())
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
