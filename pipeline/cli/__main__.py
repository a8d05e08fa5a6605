"""``python -m pipeline.cli``: the same as the ``reprint`` console script."""

from pipeline.cli.app import run

run()
