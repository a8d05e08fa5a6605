"""``reprint ingest``, ``export`` and ``clusters``: the commands of the main job. Their names and options are a
contract (downstream jobs and the quality benchmark call them).

``ingest --via NAME`` picks a runner from ``RUNNERS``: a function ``(sources, settings, *, progress,
cli_overrides) → IngestSummary`` named by import path, so the embedded runner never loads the distributed
deployment (Celery) and the command does not need to know either. Every runner's summary is printed the
same way, and the exit code is the same contract: 1 if any source had errors (after finishing the rest).
"""

from __future__ import annotations

import importlib
import sys
from enum import StrEnum
from typing import Annotated, Protocol

import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from pipeline.cli.common import (
    EXIT_SOURCE_ERRORS,
    DbOption,
    command,
    drop_stdout,
    fail,
    first_line,
    load_settings,
    open_store,
    reported,
    safe_url,
)
from pipeline.errors import ConfigError
from pipeline.records import IngestSummary
from pipeline.settings import Settings


class Runner(Protocol):
    """How ``ingest`` runs: ingest ``sources`` with ``settings`` and return the run's summary.

    ``cli_overrides`` names the command-line options that changed ``settings`` (``--warc-host`` ...): a
    runner whose work happens elsewhere (workers with their own environment) refuses them with a
    ``ConfigError`` instead of silently ignoring them.
    """

    def __call__(self, sources: list[str], settings: Settings, *, progress: bool,
                 cli_overrides: list[str]) -> IngestSummary: ...


class Via(StrEnum):
    """Where ``ingest`` runs: in this process, or in the Celery workers."""

    embedded = "embedded"
    celery = "celery"


#: ``--via`` value → the runner, as ``module:function``.
RUNNERS: dict[Via, str] = {
    Via.embedded: "pipeline.cli.ingest:run_embedded",
    Via.celery: "workers.commands:run_celery",
}


def runner(via: Via) -> Runner:
    """The runner registered for ``via``."""
    module, _, name = RUNNERS[via].partition(":")
    return getattr(importlib.import_module(module), name)


def run_embedded(sources: list[str], settings: Settings, *, progress: bool,
                 cli_overrides: list[str]) -> IngestSummary:
    """The embedded runner (``pipeline.ingest.runner``) on the configured database, in this process."""
    from pipeline.ingest.runner import run_ingest

    store = open_store(settings.database_url)
    try:
        with reported(settings.database_url, "ingest", interrupted="interrupted; pages processed so far are stored"):
            return run_ingest(sources, store, settings, progress=progress)
    finally:
        store.close()


_WARC_OPTIONS = {"warc_hosts": "--warc-host", "warc_since": "--warc-since", "warc_until": "--warc-until"}


def with_warc_filters(
    settings: Settings, hosts: list[str] | None, since: str | None, until: str | None
) -> Settings:
    """``settings`` with the ``--warc-*`` options in place of the REPRINT_WARC_* values; a bad value ends
    the command with one line naming the option (exit 2)."""
    updates: dict[str, object] = {}
    if hosts:
        updates["warc_hosts"] = hosts
    if since is not None:
        updates["warc_since"] = since
    if until is not None:
        updates["warc_until"] = until
    if not updates:
        return settings
    try:
        return Settings(**{**settings.model_dump(), **updates})
    except ValidationError as err:
        first = err.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        option = _WARC_OPTIONS.get(field, "--warc-since/--warc-until")
        given = updates.get(field)
        shown = f" {given!r}" if isinstance(given, str) else ""
        message = first["msg"].removeprefix("Value error, ")
        if first["type"].startswith(("datetime", "date")):
            message += " (give an ISO date or datetime, e.g. 2024-03-01 or 2024-03-01T12:00:00Z)"
        fail(f"bad value for {option}{shown}: {message}")


@command()
def ingest(
    sources: Annotated[
        list[str],
        typer.Argument(
            metavar="SOURCE...",
            help="Article URLs, feeds, sitemaps, .warc/.warc.gz files, .html files or directories, URL lists.",
        ),
    ],
    db: DbOption = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Live progress on stderr.")] = True,
    warc_host: Annotated[
        list[str] | None,
        typer.Option(
            "--warc-host",
            metavar="HOST",
            help="WARC sources: keep only records of HOST or its subdomains (www. ignored); repeatable. "
            "Default: $REPRINT_WARC_HOSTS (comma-separated), else every host.",
            show_default=False,
        ),
    ] = None,
    warc_since: Annotated[
        str | None,
        typer.Option(
            "--warc-since",
            metavar="WHEN",
            help="WARC sources: keep only records whose WARC-Date is at or after WHEN (ISO date or datetime, "
            "UTC unless it has a zone). Default: $REPRINT_WARC_SINCE.",
            show_default=False,
        ),
    ] = None,
    warc_until: Annotated[
        str | None,
        typer.Option(
            "--warc-until",
            metavar="WHEN",
            help="WARC sources: keep only records whose WARC-Date is before WHEN (exclusive; a date means its "
            "midnight UTC). Default: $REPRINT_WARC_UNTIL.",
            show_default=False,
        ),
    ] = None,
    via: Annotated[Via, typer.Option("--via", help="embedded: in this process (default); celery: enqueue for "
                                     "the workers and wait for every page.")] = Via.embedded,
) -> None:
    """Ingest SOURCEs into the database; exits 1 if any source had errors (after finishing all)."""
    from pipeline.cli.report import make_console, render_summary

    overrides = [flag for flag, given in (("--warc-host", warc_host), ("--warc-since", warc_since),
                                          ("--warc-until", warc_until)) if given]
    settings = with_warc_filters(load_settings(db), warc_host, warc_since, warc_until)
    try:
        summary = runner(via)(list(sources), settings, progress=progress, cli_overrides=overrides)
    except ConfigError as err:
        fail(err.message)
    render_summary(summary, make_console())
    if not summary.ok:
        raise typer.Exit(EXIT_SOURCE_ERRORS)


@command()
def export(
    db: DbOption = None,
    canonical_only: Annotated[bool, typer.Option("--canonical-only", help="Only the canonical articles.")] = False,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only articles changed after this /changes cursor (next cursor: stderr)."),
    ] = None,
) -> None:
    """Write every ingested page's article as JSONL to stdout (duplicates included)."""
    from pipeline.serve.cursors import CursorError
    from pipeline.serve.export import export_jsonl, export_since

    settings = load_settings(db)
    store = open_store(settings.database_url, must_exist=True)
    out = sys.stdout
    if hasattr(out, "reconfigure"):
        out.reconfigure(encoding="utf-8")
    try:
        if since is not None:
            try:
                _, next_cursor = export_since(store, out, since)
            except CursorError as err:
                fail(str(err))
            print(f"next cursor: {next_cursor}", file=sys.stderr)
        else:
            export_jsonl(store, out, canonical_only=canonical_only)
    except BrokenPipeError:  # `reprint export | head` is fine
        drop_stdout()
    except SQLAlchemyError as err:
        fail(f"database error during export ({safe_url(settings.database_url)}): {first_line(err)}")
    finally:
        store.close()


@command()
def clusters(db: DbOption = None) -> None:
    """Print the cluster report: each cluster's canonical, its copies, their flags and evidence."""
    from pipeline.cli.report import make_console, render_clusters

    settings = load_settings(db)
    store = open_store(settings.database_url, must_exist=True)
    try:
        render_clusters(store, make_console())  # rich itself handles a closed pipe (exit 1, no traceback)
    except SQLAlchemyError as err:
        fail(f"database error ({safe_url(settings.database_url)}): {first_line(err)}")
    finally:
        store.close()


COMMANDS = (ingest, export, clusters)
