"""The ``reprint`` command line, built here and only here.

Commands are plain functions in their own modules (``ingest.py``: the main job; ``living.py``: reprocess,
reviews, forget, tombstones, prune; ``read.py``: serve, status;
``ops.py``: migrate, index; ``workers.commands``: the distributed deployment's worker, beat, dead letters),
each listing them in ``COMMANDS`` (and sub-apps in ``GROUPS``). This module registers them in that order;
no other module touches the app. ``ingest --via`` picks a runner from ``pipeline.cli.ingest.RUNNERS``.
The console script ``reprint`` is ``run`` below (``main``, then a fast exit), so the installed command and this
app are the same.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import sys
import threading
from types import ModuleType
from typing import Annotated

import typer

app = typer.Typer(
    name="reprint",
    help="Ingest news, find every copy of an article, keep the canonical one, flag spun and scraped copies.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

#: The modules whose commands make up ``reprint``, in the order ``--help`` lists them.
COMMAND_MODULES = ("pipeline.cli.ingest", "pipeline.cli.living", "pipeline.cli.read", "pipeline.cli.ops",
                   "workers.commands")


@app.callback()
def _main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv: debug).")] = 0,
) -> None:
    """reprint: news ingestion and near-duplicate detection."""
    level = {0: logging.ERROR, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _register(module: ModuleType) -> None:
    for fn in getattr(module, "COMMANDS", ()):
        options = dict(getattr(fn, "__reprint_command__", {}))
        app.command(options.pop("name", None), **options)(fn)
    for name, group in getattr(module, "GROUPS", {}).items():
        app.add_typer(group, name=name)


for _name in COMMAND_MODULES:
    _register(importlib.import_module(_name))


def main() -> None:
    """Run the app on ``sys.argv``; ends with ``SystemExit``, as a click program does."""
    app()


def run() -> None:
    """The process entry point (the ``reprint`` console script, ``python -m pipeline.cli``): ``main``, then an exit
    without the interpreter's teardown (``_exit_now``)."""
    try:
        main()
    except SystemExit as done:
        _exit_now(done.code)
    _exit_now(0)


def _exit_now(code: object) -> None:
    """End the process with ``code`` as ``sys.exit`` would, but skip the interpreter's teardown: freeing every
    module and object one by one costs a ``reprint`` run 0.24 s of CPU (measured; a third of its imports) and
    does nothing a command needs. Every command closes its store itself; exit handlers (the extraction
    workers' stop) run and the streams are flushed here. While another thread still runs, the interpreter
    exits as usual, joining it."""
    if threading.active_count() > 1:
        sys.exit(code)
    status = 0 if code is None else code if isinstance(code, int) else 1
    if not isinstance(code, int | None):
        print(code, file=sys.stderr)
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)
