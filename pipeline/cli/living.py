"""The living-article commands: ``reprocess``, ``review …``, ``forget``, ``tombstones …`` and ``prune``.

    reprint reprocess [--source S] [--since DATE] [--db URL] [--via embedded|celery] [--no-progress] [--json]
    reprint review canonical URL | separate URL | merge URL URL | flag URL spun|scraped --on|--off  [--note] [--who]
    reprint review list [--url URL] [--json]        reprint review undo ID
    reprint forget URL [--reason TEXT]              reprint tombstones list | allow URL
    reprint prune --html-older-than DAYS

The work is the library's (``pipeline.ingest.reprocess``, ``reviews``, ``living``); these functions parse, call and
print. A user error (an unknown URL or review, merging a page with itself, undoing twice, a bad date) is one line
on stderr and exit code 2, and changes nothing. ``reprocess --via celery`` fans the batches out to the workers
(``workers.commands.run_reprocess_celery``), like ``ingest --via celery``.
"""

from __future__ import annotations

import getpass
import importlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import SQLAlchemyError

from pipeline.cli.common import DbOption, command, fail, first_line, load_settings, open_store, safe_url
from pipeline.cli.ingest import Via
from pipeline.records import ReprocessReport
from pipeline.settings import Settings
from pipeline.store import Store

T = TypeVar("T")

#: ``reprocess --via`` value → the runner, as ``module:function`` (``(settings, *, source, since, progress)``).
REPROCESS_RUNNERS: dict[Via, str] = {
    Via.embedded: "pipeline.cli.living:reprocess_embedded",
    Via.celery: "workers.commands:run_reprocess_celery",
}


class Flag(StrEnum):
    spun = "spun"
    scraped = "scraped"


NoteOption = Annotated[str | None, typer.Option("--note", help="Why: kept with the review.", show_default=False)]
WhoOption = Annotated[str | None, typer.Option("--who", help="Who decided (default: the login name).",
                                               show_default=False)]


def _who(who: str | None) -> str:
    if who and who.strip():
        return who.strip()
    try:
        name = getpass.getuser()
    except Exception:
        name = os.environ.get("USER") or "operator"
    return f"{name} (cli)"


def _with_store(db: str | None, work: Callable[[Store, Settings], T]) -> T:
    """Run ``work`` on the configured store; user errors and database errors become one line, exit 2."""
    settings = load_settings(db)
    store = open_store(settings.database_url, must_exist=True)
    try:
        return work(store, settings)
    except LookupError as err:
        fail(str(err).strip("'\""))
    except ValueError as err:
        fail(str(err))
    except SQLAlchemyError as err:
        fail(f"database error ({safe_url(settings.database_url)}): {first_line(err)}")
    finally:
        store.close()


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, sort_keys=True, default=str))


# --- reprocess ------------------------------------------------------------------------------------------------------
def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"bad value for --since {value!r}: give an ISO date or datetime, e.g. 2024-03-01 or 2024-03-01T12:00:00Z")
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def reprocess_embedded(settings: Settings, *, source: str | None, since: datetime | None,
                       progress: bool) -> ReprocessReport:
    """The embedded re-processing (``pipeline.ingest.reprocess``) on the configured database, in this process."""
    from pipeline.ingest.reprocess import run_reprocess

    return _with_store(settings.database_url, lambda store, s: run_reprocess(
        store, settings, source=source, since=since, progress=progress))


@command()
def reprocess(
    db: DbOption = None,
    source: Annotated[str | None, typer.Option("--source", help="Only the pages of this source (as ingested).",
                                               show_default=False)] = None,
    since: Annotated[str | None, typer.Option("--since", metavar="WHEN", help="Only pages fetched at or after "
                                              "WHEN (ISO date or datetime, UTC unless it has a zone).",
                                              show_default=False)] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Live progress on stderr.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    via: Annotated[Via, typer.Option("--via", help="embedded: in this process (default); celery: the batches go "
                                     "to the workers.")] = Via.embedded,
) -> None:
    """Re-extract every stored page from its stored HTML (no refetch) and re-decide the clusters; resumable."""
    from pipeline.cli.report import make_console, render_reprocess

    settings = load_settings(db)
    when = _since(since)
    module, _, name = REPROCESS_RUNNERS[via].partition(":")
    runner = getattr(importlib.import_module(module), name)
    report: ReprocessReport = runner(settings, source=source, since=when, progress=progress)
    if as_json:
        _echo_json(report.as_dict())
    else:
        render_reprocess(report, make_console())
    if report.failed:
        raise typer.Exit(1)


# --- reviews --------------------------------------------------------------------------------------------------------
review_app = typer.Typer(help="Operator reviews: they outrank the algorithm until undone.", no_args_is_help=True)


def _apply(db: str | None, kind: str, urls: list[str], *, flag: str | None = None, on: bool | None = None,
           who: str | None, note: str | None) -> None:
    from pipeline.ingest.reviews import apply

    done = _with_store(db, lambda store, settings: apply(store, kind, urls, flag=flag, on=on, who=_who(who),
                                                         note=note, settings=settings))
    what = f"{kind}" + (f" {flag} {'on' if on else 'off'}" if kind == "flag" else "")
    typer.echo(f"review #{done['id']} ({what}) applied to {' and '.join(done['urls'])}: "
               f"{done['changes']} change(s), now in cluster {done['cluster_id']}")


UrlArgument = Annotated[str, typer.Argument(metavar="URL", help="The page (its URL as ingested).")]


@review_app.command("canonical")
def review_canonical(url: UrlArgument,
                     note: NoteOption = None, who: WhoOption = None, db: DbOption = None) -> None:
    """This page is its cluster's canonical."""
    _apply(db, "canonical", [url], who=who, note=note)


@review_app.command("separate")
def review_separate(url: UrlArgument,
                    note: NoteOption = None, who: WhoOption = None, db: DbOption = None) -> None:
    """Take the page out of its cluster, and keep it out (its relations are ignored)."""
    _apply(db, "separate", [url], who=who, note=note)


@review_app.command("merge")
def review_merge(url: UrlArgument,
                 other: Annotated[str, typer.Argument(metavar="OTHER_URL", help="The other page.")],
                 note: NoteOption = None, who: WhoOption = None, db: DbOption = None) -> None:
    """These two pages are one article: they stay in one cluster."""
    _apply(db, "merge", [url, other], who=who, note=note)


@review_app.command("flag")
def review_flag(url: UrlArgument,
                flag: Annotated[Flag, typer.Argument(metavar="FLAG", help="spun or scraped.")],
                on: Annotated[bool | None, typer.Option("--on/--off", help="Set the flag, or clear it.",
                                                        show_default=False)] = None,
                note: NoteOption = None, who: WhoOption = None, db: DbOption = None) -> None:
    """Set (--on) or clear (--off) a flag on the page, whatever the algorithm says."""
    if on is None:
        fail("say --on or --off")
    _apply(db, "flag", [url], flag=flag.value, on=on, who=who, note=note)


@review_app.command("list")
def review_list(url: Annotated[str | None, typer.Option("--url", help="Only the reviews naming this page.",
                                                        show_default=False)] = None,
                as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
                db: DbOption = None) -> None:
    """Every review, undone ones included, oldest first."""
    from pipeline.cli.report import make_console, render_reviews
    from pipeline.ingest.reviews import list_reviews

    rows = _with_store(db, lambda store, _s: list_reviews(store, url=url))
    if as_json:
        for row in rows:
            _echo_json(row)
        return
    render_reviews(rows, make_console())


@review_app.command("undo")
def review_undo(review_id: Annotated[int, typer.Argument(metavar="ID", help="The review (see `review list`).")],
                who: WhoOption = None, db: DbOption = None) -> None:
    """Undo a review: its pages are decided as if it had never been made."""
    from pipeline.ingest.reviews import undo

    done = _with_store(db, lambda store, settings: undo(store, review_id, who=_who(who), settings=settings))
    typer.echo(f"review #{done['id']} ({done['kind']}) undone: {done['changes']} change(s)")


# --- takedowns and retention ----------------------------------------------------------------------------------------
@command()
def forget(
    url: UrlArgument,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (kept in the tombstone).", show_default=False)]
    = None,
    who: WhoOption = None,
    db: DbOption = None,
) -> None:
    """Remove a page's HTML, text and signature; a tombstone keeps it from being ingested again."""
    from pipeline.ingest.living import forget as forget_page

    done = _with_store(db, lambda store, settings: forget_page(store, url, reason=reason, who=_who(who),
                                                               settings=settings))
    if done["already"]:
        typer.echo(f"{url} was forgotten already ({done['tombstone']['at']}): nothing to do")
    else:
        typer.echo(f"forgot {url} (article {done['article_id']}): {done['changes']} change(s) to its cluster")


tombstones_app = typer.Typer(help="Pages taken down by `reprint forget`.", no_args_is_help=True)


@tombstones_app.command("list")
def tombstones_list(as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
                    db: DbOption = None) -> None:
    """Every tombstone: URL, when, who, why, and whether the URL may be ingested again."""
    rows = _with_store(db, lambda store, _s: store.tombstones())
    for row in rows:
        if as_json:
            _echo_json(row)
        else:
            state = "allowed again" if row["allowed"] else "blocked"
            typer.echo(f"{row['at']}  {row['url']}  {state}  by {row['who']}" +
                       (f"  — {row['reason']}" if row["reason"] else ""))
    if not rows and not as_json:
        typer.echo("no tombstones")


@tombstones_app.command("allow")
def tombstones_allow(url: UrlArgument, db: DbOption = None) -> None:
    """Let a forgotten URL be ingested again (the tombstone stays as the record)."""
    from pipeline.ingest.living import allow

    _with_store(db, lambda store, _s: allow(store, url))
    typer.echo(f"{url} may be ingested again")


@command()
def prune(
    html_older_than: Annotated[float, typer.Option("--html-older-than", metavar="DAYS", min=0,
                                                   help="Drop the raw HTML of pages fetched more than DAYS ago.")],
    db: DbOption = None,
) -> None:
    """Drop stored raw HTML past an age, keeping text and signatures (re-processing then skips those pages)."""
    from pipeline.ingest.living import prune as prune_html

    done = _with_store(db, lambda store, _s: prune_html(store, html_older_than))
    typer.echo(f"pruned the HTML of {done['pages']} page(s) fetched before {done['cutoff']} "
               f"({done['bytes']:,} compressed bytes)")


COMMANDS = (reprocess, forget, prune)
GROUPS = {"review": review_app, "tombstones": tombstones_app}
