"""The ``reprint`` console script: ``pipeline.cli.app``'s commands plus the distributed deployment's.

Added here: ``worker``, ``beat``, ``migrate``, ``deadletters list|replay|purge`` and ``ingest --via
celery``. Celery is imported inside the command functions only, so ``reprint ingest`` on the embedded
default (and ``export``, ``clusters``) never loads it: the embedded deployment needs nothing running.

``ingest`` keeps ``pipeline.cli.app``'s options and behaviour; this module re-registers it with one more
option, ``--via embedded|celery``, and calls the original for the embedded path.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.cli.app import DbOption, _first_line, app, fail, load_settings, open_store, safe_url

QUEUE_NAMES = "discover,fetch,extract,dedup"  # workers/app.QUEUES, without importing Celery


class Via(StrEnum):
    """Where ``ingest`` runs: in this process, or in the Celery workers."""

    embedded = "embedded"
    celery = "celery"


def _use_db(db: str | None) -> None:
    """Make ``--db`` the database of everything this process starts (workers read the environment)."""
    if db:
        os.environ["REPRINT_DATABASE_URL"] = db
        from pipeline.settings import get_settings

        get_settings.cache_clear()


# --- worker and beat ------------------------------------------------------------------------------
@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(
    ctx: typer.Context,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", help="Pool processes (default: CPUs).")]
    = None,
    name: Annotated[str | None, typer.Option("--hostname", "-n", help="Node name, e.g. fetch1@%h.")] = None,
    queues: Annotated[str, typer.Option("--queues", "-Q", help="Comma-separated queues to consume.")] = QUEUE_NAMES,
    loglevel: Annotated[str, typer.Option("--loglevel", "-l")] = "INFO",
    db: DbOption = None,
) -> None:
    """Start a Celery worker (broker: $REPRINT_BROKER_URL). Extra options go to `celery worker`."""
    load_settings(db)  # one clear line for bad settings, before Celery starts
    _use_db(db)
    from workers.app import app as celery_app

    argv = ["worker", f"--loglevel={loglevel}", "-Q", queues]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    if name:
        argv += ["--hostname", name]
    celery_app.worker_main([*argv, *ctx.args])


@app.command()
def beat(
    sources_file: Annotated[Path | None, typer.Option("--sources", help="Default: $REPRINT_SOURCES_FILE.")] = None,
    loglevel: Annotated[str, typer.Option("--loglevel", "-l")] = "INFO",
) -> None:
    """Start the scheduler (celery-redbeat): enqueues each source of the sources file at its interval."""
    from pipeline.errors import ConfigError
    from workers.schedule import beat_schedule, load_sources

    settings = load_settings(None)
    try:
        sources = load_sources(sources_file or settings.sources_file)
    except ConfigError as err:
        fail(err.message)
    from workers.app import app as celery_app

    celery_app.conf.beat_schedule = beat_schedule(sources)
    celery_app.start(["beat", f"--loglevel={loglevel}"])


# --- migrations -----------------------------------------------------------------------------------
def alembic_config(url: str) -> Any:
    """An Alembic config for ``pipeline/migrations`` and this database (no alembic.ini needed)."""
    from alembic.config import Config

    import pipeline

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(pipeline.__file__).parent / "store" / "migrations"))
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


@app.command()
def migrate(
    db: DbOption = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply the schema migrations (Alembic) to PostgreSQL; on SQLite, create the tables."""
    from sqlalchemy.exc import SQLAlchemyError

    settings = load_settings(db)
    try:
        done = run_migrations(settings.database_url, revision)
    except SQLAlchemyError as err:
        fail(f"migration failed ({safe_url(settings.database_url)}): {_first_line(err)}")
    typer.echo(done)


# --- the shared index -----------------------------------------------------------------------------
index_app = typer.Typer(help="The shared LSH index in Redis.", no_args_is_help=True)
app.add_typer(index_app, name="index")


@index_app.command("rebuild")
def index_rebuild(db: DbOption = None) -> None:
    """Re-create the shared index from the signatures in the database (stop the workers first)."""
    from redis.exceptions import RedisError
    from sqlalchemy.exc import SQLAlchemyError

    from pipeline.shared.redis_index import RedisLSHIndex
    from pipeline.store.store import Store

    settings = load_settings(db)
    try:
        store = Store(settings.database_url)
        count = RedisLSHIndex.from_settings(settings).rebuild(store, min_tokens=settings.min_tokens)
    except SQLAlchemyError as err:
        fail(f"database error ({safe_url(settings.database_url)}): {_first_line(err)}")
    except RedisError as err:
        fail(f"Redis error ({settings.redis_url}): {_first_line(err)}")
    typer.echo(f"indexed {count} articles")


# --- dead letters ---------------------------------------------------------------------------------
deadletters = typer.Typer(help="Tasks that kept killing their worker: list, replay, purge.", no_args_is_help=True)
app.add_typer(deadletters, name="deadletters")


def _guard() -> Any:
    """The dead-letter store of the configured deployment (Celery itself is not needed to read it)."""
    from workers.deadletter import DeliveryGuard

    return DeliveryGuard.from_settings(load_settings(None))


@deadletters.command("list")
def deadletters_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Show every dead letter: task, arguments, deliveries, last error."""
    letters = _guard().letters()
    if as_json:
        for letter in letters:
            typer.echo(json.dumps(letter, sort_keys=True))
        return
    if not letters:
        typer.echo("no dead letters")
        return
    for letter in letters:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(letter.get("dead_lettered_at", 0)))
        typer.echo(f"{letter['id']}  {letter['task']}  queue={letter.get('queue')}  deliveries={letter['deliveries']}"
                   f"  at={when}Z")
        typer.echo(f"    kwargs: {json.dumps(letter.get('kwargs'), sort_keys=True)[:300]}")
        typer.echo(f"    last error: {letter.get('last_error')}")


@deadletters.command("replay")
def deadletters_replay(
    task_ids: Annotated[list[str] | None, typer.Argument(help="Task ids to replay (see `list`).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every dead letter.")] = False,
) -> None:
    """Send dead letters to their queues again, as new tasks (after the cause was fixed)."""
    if not task_ids and not all_:
        fail("name the task ids to replay, or pass --all")
    from workers.app import app as celery_app

    replayed = _guard().replay(celery_app, None if all_ else list(task_ids or []))
    for letter in replayed:
        typer.echo(f"replayed {letter['id']} ({letter['task']}) as {letter['replayed_as']}")
    if not replayed:
        typer.echo("nothing replayed")


@deadletters.command("purge")
def deadletters_purge() -> None:
    """Drop every dead letter."""
    typer.echo(f"purged {_guard().purge()} dead letters")


# --- ingest --via celery --------------------------------------------------------------------------
def ingest_via_celery(sources: list[str], db: str | None, progress: bool) -> None:
    """Enqueue the sources, follow the run until every page has an outcome, print the usual summary.

    The workers write to their own database (``REPRINT_DATABASE_URL`` where they run); ``--db`` here
    must name the same one, since the summary is read from it.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from sqlalchemy.exc import SQLAlchemyError

    from pipeline.cli.report import make_console, render_summary

    settings = load_settings(db)
    _use_db(db)
    store = open_store(settings.database_url)
    try:
        import redis

        from workers.runs import RunState, build_summary, finish_if_complete

        client = redis.Redis.from_url(settings.redis_url)
        try:
            client.ping()
        except redis.RedisError as err:
            fail(f"cannot reach Redis at {settings.redis_url}: {err}")
        from workers.tasks import start_run

        run_id = start_run(store, client, settings, sources)
        state = RunState(client, settings.redis_prefix, run_id)
        bar = Progress(SpinnerColumn(), TextColumn(f"[bold]run {run_id}"), BarColumn(bar_width=None),
                       MofNCompleteColumn(), TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
                       console=make_console(stderr=True), transient=True, disable=not progress)
        started = time.monotonic()
        hinted = False
        with bar:
            task = bar.add_task("pages", total=None, stats="")
            while True:
                try:
                    snap = state.progress()
                except redis.RedisError as err:  # Redis restarting: the workers reconnect, so do we
                    bar.update(task, stats=f"Redis unavailable ({type(err).__name__}), retrying")
                    time.sleep(1.0)
                    continue
                bar.update(task, total=max(snap.pages, 1), completed=snap.pages_done,
                           stats=f"sources {snap.sources_done}/{snap.sources} · pages {snap.pages_done}/{snap.pages}")
                if snap.complete and (snap.finished or finish_if_complete(store, state)):
                    break
                if not hinted and snap.pages_done == 0 and time.monotonic() - started > 15:
                    make_console(stderr=True).print(f"run {run_id}: nothing processed yet; is a worker running "
                                                    f"(reprint worker) on broker {safe_url(settings.broker_url)}?")
                    hinted = True
                time.sleep(0.3)
        summary = build_summary(store, state)
    except SQLAlchemyError as err:
        fail(f"database error during ingest ({safe_url(settings.database_url)}): {_first_line(err)}")
    except KeyboardInterrupt:
        fail("interrupted; the run goes on in the workers", code=130)
    finally:
        store.close()
    render_summary(summary, make_console())
    if not summary.ok:
        raise typer.Exit(1)


def _install_ingest_via() -> None:
    """Re-register ``ingest`` with ``--via``: the original's parameters and help, plus one option."""
    info = next((c for c in app.registered_commands if (c.name or c.callback.__name__) == "ingest"), None)
    if info is None or getattr(info.callback, "_reprint_via", False):
        return
    original = info.callback
    signature = inspect.signature(original, eval_str=True)
    if "via" in signature.parameters:  # pipeline.cli.app grew the option itself: nothing to add
        return
    via_param = inspect.Parameter(
        "via", inspect.Parameter.KEYWORD_ONLY, default=Via.embedded,
        annotation=Annotated[Via, typer.Option("--via", help="embedded: in this process (default); celery: "
                                                "enqueue for the workers and wait for every page.")],
    )
    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()]

    def ingest(**kwargs: Any) -> None:
        via = kwargs.pop("via", Via.embedded)
        if via == Via.celery:
            given = [flag for name, flag in (("warc_host", "--warc-host"), ("warc_since", "--warc-since"),
                                             ("warc_until", "--warc-until")) if kwargs.get(name)]
            if given:  # the workers read WARC filters from their own settings, not from this command line
                typer.echo(f"error: {', '.join(given)} cannot be used with --via celery: set REPRINT_WARC_HOSTS, "
                           "REPRINT_WARC_SINCE and REPRINT_WARC_UNTIL in the workers' environment", err=True)
                raise typer.Exit(2)
            ingest_via_celery(kwargs["sources"], kwargs.get("db"), kwargs.get("progress", True))
            return
        original(**kwargs)

    ingest.__doc__ = original.__doc__
    ingest.__signature__ = signature.replace(parameters=[*params, via_param])  # type: ignore[attr-defined]
    ingest.__annotations__ = {p.name: p.annotation for p in [*params, via_param]}
    ingest._reprint_via = True  # type: ignore[attr-defined]
    info.callback = ingest


_install_ingest_via()


def main() -> None:
    """Console-script entry point (``reprint``)."""
    app()


if __name__ == "__main__":
    sys.exit(main())
