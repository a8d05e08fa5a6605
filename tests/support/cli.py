"""The ``reprint`` command line, run in-process."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from pipeline.cli.app import app


def cli(*args: str) -> Result:
    """Run ``reprint ARGS...`` in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(app, list(args))
