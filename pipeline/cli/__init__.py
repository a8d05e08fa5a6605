"""The ``reprint`` command line: one app (``app.py``) built from the command modules of both deployments."""

from pipeline.cli.app import app, main, run

__all__ = ["app", "main", "run"]
