"""The distributed deployment's commands: ``worker``, ``beat``, ``deadletters list|replay|purge``, and the
runner behind ``ingest --via celery``.

They are plain functions and one group that ``pipeline/cli/app.py`` registers with the rest: this module
never touches the app itself. Celery is imported inside the functions only, so building the command line
(and ``reprint ingest`` on the embedded default) never loads it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.cli.common import (
    DbOption,
    command,
    fail,
    load_settings,
    open_store,
    reported,
    safe_url,
    use_database,
)
from pipeline.errors import ConfigError
from pipeline.records import IngestSummary
from pipeline.settings import Settings

QUEUE_NAMES = "discover,fetch,extract,dedup"  # workers/app.QUEUES, without importing Celery


# --- worker and beat ------------------------------------------------------------------------------
@command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
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
    settings = load_settings(db)  # one clear line for bad settings, before Celery starts
    if db:
        use_database(settings.database_url)
    from workers.app import app as celery_app

    argv = ["worker", f"--loglevel={loglevel}", "-Q", queues]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    if name:
        argv += ["--hostname", name]
    celery_app.worker_main([*argv, *ctx.args])


@command()
def beat(
    sources_file: Annotated[Path | None, typer.Option("--sources", help="Default: $REPRINT_SOURCES_FILE.")] = None,
    loglevel: Annotated[str, typer.Option("--loglevel", "-l")] = "INFO",
) -> None:
    """Start the scheduler (celery-redbeat): enqueues each source of the sources file at its interval."""
    from workers.schedule import beat_schedule, load_sources

    settings = load_settings(None)
    try:
        sources = load_sources(sources_file or settings.sources_file)
    except ConfigError as err:
        fail(err.message)
    from workers.app import app as celery_app

    celery_app.conf.beat_schedule = beat_schedule(sources)
    celery_app.start(["beat", f"--loglevel={loglevel}"])


# --- dead letters ---------------------------------------------------------------------------------
deadletters = typer.Typer(help="Tasks that kept killing their worker: list, replay, purge.", no_args_is_help=True)


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
def run_celery(sources: list[str], settings: Settings, *, progress: bool, cli_overrides: list[str]) -> IngestSummary:
    """Enqueue the sources, follow the run until every page has an outcome and its clusters are decided,
    and return the usual summary.

    The workers write to their own database (``REPRINT_DATABASE_URL`` where they run); ``--db`` here
    must name the same one, since the summary is read from it. Options that only change this process's
    settings (the WARC filters) are refused: the workers read their own environment.
    """
    if cli_overrides:
        raise ConfigError(f"{', '.join(cli_overrides)} cannot be used with --via celery: set REPRINT_WARC_HOSTS, "
                          "REPRINT_WARC_SINCE and REPRINT_WARC_UNTIL in the workers' environment")
    import redis

    from workers.runs import RunState, build_summary
    from workers.tasks import start_run

    use_database(settings.database_url)
    store = open_store(settings.database_url)
    try:
        with reported(settings.database_url, "ingest", interrupted="interrupted; the run goes on in the workers"):
            client = redis.Redis.from_url(settings.redis_url)
            try:
                client.ping()
            except redis.RedisError as err:
                fail(f"cannot reach Redis at {settings.redis_url}: {err}")
            run_id = start_run(store, client, settings, sources)
            state = RunState(client, settings.redis_prefix, run_id)
            follow(store, state, settings, progress=progress)
            return build_summary(store, state)
    finally:
        store.close()


def follow(store: Any, state: Any, settings: Settings, *, progress: bool) -> None:
    """Show a run's progress until every page has an outcome and the run is finished (its clusters decided);
    a Redis restart only pauses it, and a run nobody works on gets a hint after 15 s."""
    import redis
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from pipeline.cli.report import make_console
    from workers.runs import finish_if_complete

    bar = Progress(SpinnerColumn(), TextColumn(f"[bold]run {state.run_id}"), BarColumn(bar_width=None),
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
                return
            if not hinted and snap.pages_done == 0 and time.monotonic() - started > 15:
                make_console(stderr=True).print(f"run {state.run_id}: nothing processed yet; is a worker running "
                                                f"(reprint worker) on broker {safe_url(settings.broker_url)}?")
                hinted = True
            time.sleep(0.3)


COMMANDS = (worker, beat)
GROUPS = {"deadletters": deadletters}
