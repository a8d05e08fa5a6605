"""``reprint serve`` and ``reprint status``: the read side's commands.

They import FastAPI, uvicorn and redis inside the command functions only, so ``reprint ingest`` never
loads the API stack.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from pipeline.cli.common import DbOption, command, fail, first_line, load_settings, open_store, safe_url


@command()
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8000,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    workers: Annotated[int, typer.Option("--workers", min=1, help="uvicorn worker processes (one per core).")] = 1,
) -> None:
    """Serve the REST API (articles, clusters, /changes feed, runs, /metrics) under uvicorn."""
    from pipeline.serve.api import serve as run_server

    settings = load_settings(db)
    store = open_store(settings.database_url)
    try:
        run_server(store, settings, host, port, log_level=log_level, workers=workers)
    except OSError as err:
        fail(f"cannot listen on {host}:{port}: {err.strerror or err}")
    finally:
        store.close()


@command()
def status(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (for scripts).")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh until interrupted.")] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.2, help="Seconds between refreshes (--watch).")]
    = 2.0,
    sources_file: Annotated[str | None, typer.Option("--sources", help="Schedule file for 'next due' "
                                                     "(default: $REPRINT_SOURCES_FILE or config/sources.yaml).")]
    = None,
) -> None:
    """Queues and depths, workers, dead letters, per-source last run and next due, today's clusters and flags."""
    from pipeline.cli.report import make_console
    from pipeline.serve.status import collect_status, load_schedule, render_status

    settings = load_settings(db)
    store = open_store(settings.database_url, must_exist=True)
    schedule = load_schedule(sources_file)
    try:
        if not watch:
            snapshot = collect_status(store, settings, schedule=schedule)
            if as_json:
                sys.stdout.write(json.dumps(snapshot, indent=2) + "\n")
            else:
                render_status(snapshot, make_console())
            return
        if as_json:  # one JSON object per line, for piping into a log or jq
            while True:
                sys.stdout.write(json.dumps(collect_status(store, settings, schedule=schedule)) + "\n")
                sys.stdout.flush()
                time.sleep(interval)
        console = make_console()
        while True:  # redraw the whole screen: every figure is re-read, nothing is kept between frames
            snapshot = collect_status(store, settings, schedule=schedule)
            console.clear()
            render_status(snapshot, console)
            console.print(f"[dim]refreshing every {interval:g}s; Ctrl-C to stop[/dim]")
            time.sleep(interval)
    except KeyboardInterrupt:
        return
    except SQLAlchemyError as err:
        fail(f"database error ({safe_url(settings.database_url)}): {first_line(err)}")
    finally:
        store.close()


COMMANDS = (serve, status)
