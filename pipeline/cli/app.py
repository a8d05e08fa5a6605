"""The ``reprint`` command line: ingest, export, clusters. Its names and options are a contract.

User errors (bad settings, a database that cannot be opened) end with one clear line on stderr and
exit code 2, never a traceback. ``ingest`` exits 1 when any source had errors, after finishing the
rest of the run.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.text import Text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from pipeline.settings import Settings
from pipeline.store.store import Store

app = typer.Typer(
    name="reprint",
    help="Ingest news, find every copy of an article, keep the canonical one, flag spun and scraped copies.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

EXIT_SOURCE_ERRORS = 1
EXIT_CONFIG = 2

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (sqlite:///path or postgresql+psycopg://user@host/db). "
        "Default: $REPRINT_DATABASE_URL, else sqlite:///reprint.db.",
        show_default=False,
    ),
]


def fail(message: str, code: int = EXIT_CONFIG) -> NoReturn:
    """Print one error line on stderr and exit; used for every user error."""
    from pipeline.cli.report import make_console

    make_console(stderr=True).print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)
    raise typer.Exit(code)


def load_settings(db: str | None) -> Settings:
    """Settings from the environment, with ``--db`` taking precedence over REPRINT_DATABASE_URL."""
    try:
        return Settings(database_url=db) if db else Settings()
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in err.errors()
        )
        source = "--db" if db else "REPRINT_* environment"
        fail(f"bad configuration ({source}): {problems}")


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


def safe_url(url: str) -> str:
    """The database URL with any password hidden, for error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _first_line(err: BaseException) -> str:
    orig = getattr(err, "orig", None) or err
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    return lines[0] if lines else type(orig).__name__


def open_store(url: str, *, must_exist: bool = False) -> Store:
    """Open (and create the tables of) the database, turning every failure into one clear line."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        fail(f"invalid database URL {url!r}: expected sqlite:///path or postgresql+psycopg://user@host/db")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            fail("an in-memory SQLite database would be lost when reprint exits; give a file, e.g. sqlite:///reprint.db")
        path = Path(parsed.database)
        if must_exist and not path.exists():
            fail(f"no database at {path} (ingest something first, or pass --db / set REPRINT_DATABASE_URL)")
        if not path.parent.exists():
            fail(f"cannot create database {path}: directory {path.parent} does not exist")
    try:
        return Store(url)
    except ModuleNotFoundError as err:
        fail(f"no driver for database URL {safe_url(url)}: {err}")
    except (ArgumentError, ValueError) as err:
        fail(f"invalid database URL {safe_url(url)}: {_first_line(err)}")
    except SQLAlchemyError as err:
        fail(f"cannot open database {safe_url(url)}: {_first_line(err)}")


def _drop_stdout() -> None:
    """After the reader of a pipe went away: send what is left to /dev/null, so exit stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


@app.callback()
def _main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv: debug).")] = 0,
) -> None:
    """reprint: news ingestion and near-duplicate detection."""
    level = {0: logging.ERROR, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@app.command()
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
) -> None:
    """Ingest SOURCEs into the database; exits 1 if any source had errors (after finishing all)."""
    from pipeline.cli.report import make_console, render_summary
    from pipeline.ingest.runner import run_ingest

    settings = with_warc_filters(load_settings(db), warc_host, warc_since, warc_until)
    store = open_store(settings.database_url)
    try:
        summary = run_ingest(sources, store, settings, progress=progress)
    except SQLAlchemyError as err:
        fail(f"database error during ingest ({safe_url(settings.database_url)}): {_first_line(err)}")
    except KeyboardInterrupt:
        fail("interrupted; pages processed so far are stored", code=130)
    finally:
        store.close()
    render_summary(summary, make_console())
    if not summary.ok:
        raise typer.Exit(EXIT_SOURCE_ERRORS)


@app.command()
def export(
    db: DbOption = None,
    canonical_only: Annotated[bool, typer.Option("--canonical-only", help="Only the canonical articles.")] = False,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only articles changed after this /changes cursor (next cursor: stderr)."),
    ] = None,
) -> None:
    """Write every ingested page's article as JSONL to stdout (duplicates included)."""
    from pipeline.serve.export import export_jsonl

    settings = load_settings(db)
    store = open_store(settings.database_url, must_exist=True)
    out = sys.stdout
    if hasattr(out, "reconfigure"):
        out.reconfigure(encoding="utf-8")
    try:
        if since is not None:
            from pipeline.serve.queries import CursorError, export_since

            try:
                _, next_cursor = export_since(store, out, since)
            except CursorError as err:
                fail(str(err))
            print(f"next cursor: {next_cursor}", file=sys.stderr)
        else:
            export_jsonl(store, out, canonical_only=canonical_only)
    except BrokenPipeError:  # `reprint export | head` is fine
        _drop_stdout()
    except SQLAlchemyError as err:
        fail(f"database error during export ({safe_url(settings.database_url)}): {_first_line(err)}")
    finally:
        store.close()


@app.command()
def clusters(db: DbOption = None) -> None:
    """Print the cluster report: each cluster's canonical, its copies, their flags and evidence."""
    from pipeline.cli.report import make_console, render_clusters

    settings = load_settings(db)
    store = open_store(settings.database_url, must_exist=True)
    try:
        render_clusters(store, make_console())  # rich itself handles a closed pipe (exit 1, no traceback)
    except SQLAlchemyError as err:
        fail(f"database error ({safe_url(settings.database_url)}): {_first_line(err)}")
    finally:
        store.close()


def main() -> None:
    """Console-script entry point (``reprint``)."""
    app()


def _register_read_commands() -> None:
    """``serve`` and ``status`` live in cli_read, so that ingest never imports the API stack."""
    from pipeline.cli.read import register

    register(app)


_register_read_commands()
