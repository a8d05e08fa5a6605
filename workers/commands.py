"""The distributed deployment's commands: ``worker``, ``beat``, ``deadletters list|replay|purge``, and the
runners behind ``ingest --via celery`` and ``reprocess --via celery``.

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
    first_line,
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
    """The dead-letter store of the configured deployment, with RabbitMQ's own dead letters moved into it."""
    from workers.deadletter import DeliveryGuard

    settings = load_settings(None)
    if settings.broker_is_amqp:
        from workers.app import app as celery_app
        from workers.broker import absorb_dead_letters

        try:
            absorb_dead_letters(celery_app, settings)
        except Exception as err:  # the Redis list is still worth showing
            typer.echo(f"warning: could not read the broker's dead letters ({safe_url(settings.broker_url)}): "
                       f"{type(err).__name__}: {err}", err=True)
    return DeliveryGuard.from_settings(settings)


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

    from pipeline.dedup.refingerprint import require_current_signatures
    from workers.runs import RunState, build_summary
    from workers.tasks import start_run

    use_database(settings.database_url)
    store = open_store(settings.database_url)
    try:
        with reported(settings.database_url, "ingest", interrupted="interrupted; the run goes on in the workers"):
            require_current_signatures(store)  # before any page is sent: the workers would refuse every one
            client = _redis(settings)
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


# --- reprocess --via celery -----------------------------------------------------------------------
#: Pages per task, and batches sent ahead of the oldest one not yet done.
REPROCESS_BATCH = 25
REPROCESS_WINDOW = 16


def _redis(settings: Settings) -> Any:
    """A client of the deployment's Redis, or one line and exit 2 when it does not answer."""
    import redis

    client = redis.Redis.from_url(settings.redis_url)
    try:
        client.ping()
    except redis.RedisError as err:
        fail(f"cannot reach Redis at {settings.redis_url}: {err}")
    return client


def run_reprocess_celery(settings: Settings, *, source: str | None, since: Any, progress: bool) -> Any:
    """``reprint reprocess --via celery``: the stored pages go to the workers in batches
    (``workers.tasks.reprocess_batch``, each the embedded runner's step), and this process follows them.

    The checkpoint is the embedded runner's (same table, same key): it advances past a batch once every batch
    before it is done too, so a run that stops (this process, or the workers) is resumed by the next one, under
    either runner. At the end the clusters still pending are decided under the workers' lock, and the batches'
    reports make the one report."""
    from sqlalchemy.exc import SQLAlchemyError

    from pipeline.dedup.deduplicator import Deduplicator
    from pipeline.dedup.policy import DecisionPolicy
    from pipeline.ingest.reprocess import Resume, finish
    from pipeline.shared.locks import workers_cluster_lock

    use_database(settings.database_url)
    store = open_store(settings.database_url, must_exist=True)
    try:
        client = _redis(settings)
        try:
            run = Resume.open(store, source, since, label="(celery)")
        except LookupError as err:
            fail(str(err).strip("'\""))
        _follow_batches(store, client, settings, run, progress)
        lock = workers_cluster_lock(store, client, settings.redis_prefix)
        run.report.count_changes(Deduplicator(store, settings, lock=lock, policy=DecisionPolicy.batched()).flush())
        finish(store, run.report)
        return run.close()
    except SQLAlchemyError as err:
        fail(f"database error during reprocess ({safe_url(settings.database_url)}): {first_line(err)}")
    except KeyboardInterrupt:
        fail("interrupted; the batches sent go on in the workers, the next run resumes after the last one done",
             code=130)
    finally:
        store.close()


def _follow_batches(store: Any, client: Any, settings: Settings, run: Any, progress: bool) -> None:
    """Send the batches (at most REPROCESS_WINDOW ahead of the oldest unfinished one) and fold each finished one
    into the report, moving the checkpoint past it, in order."""
    import secrets

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pipeline.cli.report import make_console
    from pipeline.records import ReprocessReport
    from pipeline.shared import keys
    from workers.tasks import reprocess_batch

    job = secrets.token_hex(6)
    done_key = keys.reprocess(settings.redis_prefix, job)
    batches = run.batches(REPROCESS_BATCH)
    sent: list[tuple[int, int, int]] = []  # (index, last page id, pages) not yet folded into the report
    index, exhausted, hinted, started = 0, False, False, time.monotonic()
    bar = Progress(TextColumn("[bold]reprocess (celery)"), BarColumn(bar_width=None), MofNCompleteColumn(),
                   TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), console=make_console(stderr=True),
                   transient=True, disable=not progress)
    with bar:
        task = bar.add_task("pages", total=run.total, stats="")
        while not (exhausted and not sent):
            while not exhausted and len(sent) < REPROCESS_WINDOW:
                ids = next(batches, None)
                if ids is None:
                    exhausted = True
                    break
                reprocess_batch.apply_async(kwargs={"job": job, "index": index, "page_ids": ids,
                                                    "run_id": run.run_id})
                sent.append((index, ids[-1], len(ids)))
                index += 1
            finished = {int(k): v for k, v in client.hgetall(done_key).items()}
            folded = False
            while sent and sent[0][0] in finished:  # the checkpoint moves past contiguous done batches only
                first, last_id, n = sent.pop(0)
                run.commit(last_id, ReprocessReport.from_dict(json.loads(finished[first])))
                bar.advance(task, n)
                folded = True
            bar.update(task, stats=f"text changed {run.report.text_changed}")
            if not folded and not (exhausted and not sent):
                if not hinted and run.report.pages == 0 and time.monotonic() - started > 15:
                    make_console(stderr=True).print(f"reprocess: nothing done yet; is a worker running (reprint "
                                                    f"worker) on broker {safe_url(settings.broker_url)}?")
                    hinted = True
                time.sleep(0.2)
    client.delete(done_key)


COMMANDS = (worker, beat)
GROUPS = {"deadletters": deadletters}
