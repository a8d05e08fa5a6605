"""What every command shares: the ``--db`` option, settings from the environment, one-line user errors.

User errors (bad settings, a database that cannot be opened) end with one clear line on stderr and
exit code 2, never a traceback. Commands are plain functions marked with ``command()``; ``app.py`` is the
one place that registers them.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.text import Text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from pipeline.settings import Settings
from pipeline.store import Store

EXIT_SOURCE_ERRORS = 1
EXIT_CONFIG = 2

F = TypeVar("F", bound=Callable[..., Any])

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (sqlite:///path or postgresql+psycopg://user@host/db). "
        "Default: $REPRINT_DATABASE_URL, else sqlite:///reprint.db.",
        show_default=False,
    ),
]


def command(name: str | None = None, **options: Any) -> Callable[[F], F]:
    """Mark a function as a command (``typer.Typer.command`` options); ``app.py`` registers it."""

    def mark(fn: F) -> F:
        fn.__reprint_command__ = {"name": name, **options}  # type: ignore[attr-defined]
        return fn

    return mark


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


def use_database(url: str) -> None:
    """Make ``url`` the database of everything this process starts or reads through ``get_settings()``
    (Celery workers and the code they share read the environment)."""
    from pipeline.settings import get_settings

    if os.environ.get("REPRINT_DATABASE_URL") != url:
        os.environ["REPRINT_DATABASE_URL"] = url
        get_settings.cache_clear()


def safe_url(url: str) -> str:
    """The database URL with any password hidden, for error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def first_line(err: BaseException) -> str:
    """The first line of a (database) error's message, for a one-line report."""
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
        fail(f"invalid database URL {safe_url(url)}: {first_line(err)}")
    except SQLAlchemyError as err:
        fail(f"cannot open database {safe_url(url)}: {first_line(err)}")


@contextlib.contextmanager
def reported(database_url: str, what: str, *, interrupted: str | None = None) -> Iterator[None]:
    """Turn a database error inside into one line naming ``what`` (exit 2), and Ctrl-C into ``interrupted``
    (exit 130)."""
    try:
        yield
    except SQLAlchemyError as err:
        fail(f"database error during {what} ({safe_url(database_url)}): {first_line(err)}")
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        fail(interrupted, code=130)


def drop_stdout() -> None:
    """After the reader of a pipe went away: send what is left to /dev/null, so exit stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass
