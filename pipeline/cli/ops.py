"""``reprint migrate``, ``reprint index rebuild`` and ``reprint index refingerprint``: keeping a deployment's
schema, shared index and signatures in shape. None needs Celery: the migrations are Alembic's
(``pipeline.store.migrations``), the index is Redis (``pipeline.shared.redis_index``), the signatures are
recomputed by ``pipeline.dedup.refingerprint``."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.cli.common import DbOption, command, fail, first_line, load_settings, open_store, safe_url


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


index_app = typer.Typer(help="The LSH index: the shared one in Redis, the store's signatures.", no_args_is_help=True)


@index_app.command("rebuild")
def index_rebuild(db: DbOption = None) -> None:
    """Re-create the shared index from the signatures in the database (stop the workers first); an index of
    another layout (an older fingerprint) is replaced."""
    from redis.exceptions import RedisError
    from sqlalchemy.exc import SQLAlchemyError

    from pipeline.shared.redis_index import RedisLSHIndex
    from pipeline.store import Store

    settings = load_settings(db)
    try:
        store = Store(settings.database_url)
        count = RedisLSHIndex.replacing(settings).rebuild(store, min_tokens=settings.min_tokens)
    except SQLAlchemyError as err:
        fail(f"database error ({safe_url(settings.database_url)}): {first_line(err)}")
    except RedisError as err:
        fail(f"Redis error ({settings.redis_url}): {first_line(err)}")
    typer.echo(f"indexed {count} articles")


@index_app.command("refingerprint")
def index_refingerprint(
    db: DbOption = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Live progress on stderr.")] = True,
) -> None:
    """Recompute every stored signature with this version's fingerprint (a store made by an older reprint) and
    re-index them. Stop ingesting first; rebuild a Redis index after."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from sqlalchemy.exc import SQLAlchemyError

    from pipeline.dedup.fingerprint import FINGERPRINT_VERSION
    from pipeline.dedup.refingerprint import refingerprint, stored_version

    settings = load_settings(db)
    store = open_store(settings.database_url, must_exist=True)
    try:
        before = stored_version(store)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      transient=True, disable=not progress) as bar:
            task = bar.add_task("re-fingerprinting", total=store.totals()["articles"])
            done = refingerprint(store, settings.num_perm, settings.min_tokens,
                                 lambda n: bar.update(task, completed=n),
                                 lambda: bar.update(task, description="re-indexing", total=None, completed=0))
    except SQLAlchemyError as err:
        fail(f"database error ({safe_url(settings.database_url)}): {first_line(err)}")
    finally:
        store.close()
    typer.echo(f"re-fingerprinted {done} articles (version {before} -> {FINGERPRINT_VERSION}) and re-indexed them; "
               "where workers share a Redis index, run `reprint index rebuild` too.")


COMMANDS = (migrate,)
GROUPS = {"index": index_app}
