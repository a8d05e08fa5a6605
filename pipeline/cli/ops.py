"""``reprint migrate`` and ``reprint index rebuild``: keeping a distributed deployment's schema and shared
index in shape. Neither needs Celery: the migrations are Alembic's (``pipeline.store.migrations``), the
index is Redis (``pipeline.shared.redis_index``)."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.cli.common import DbOption, command, fail, first_line, load_settings, safe_url


@command()
def migrate(
    db: DbOption = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply the schema migrations (Alembic) to PostgreSQL; on SQLite, create the tables."""
    from sqlalchemy.exc import SQLAlchemyError

    from pipeline.store.migrations.runner import run_migrations

    settings = load_settings(db)
    try:
        done = run_migrations(settings.database_url, revision)
    except SQLAlchemyError as err:
        fail(f"migration failed ({safe_url(settings.database_url)}): {first_line(err)}")
    typer.echo(done)


index_app = typer.Typer(help="The shared LSH index in Redis.", no_args_is_help=True)


@index_app.command("rebuild")
def index_rebuild(db: DbOption = None) -> None:
    """Re-create the shared index from the signatures in the database (stop the workers first)."""
    from redis.exceptions import RedisError
    from sqlalchemy.exc import SQLAlchemyError

    from pipeline.shared.redis_index import RedisLSHIndex
    from pipeline.store import Store

    settings = load_settings(db)
    try:
        store = Store(settings.database_url)
        count = RedisLSHIndex.from_settings(settings).rebuild(store, min_tokens=settings.min_tokens)
    except SQLAlchemyError as err:
        fail(f"database error ({safe_url(settings.database_url)}): {first_line(err)}")
    except RedisError as err:
        fail(f"Redis error ({settings.redis_url}): {first_line(err)}")
    typer.echo(f"indexed {count} articles")


COMMANDS = (migrate,)
GROUPS = {"index": index_app}
