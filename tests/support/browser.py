"""A real headless Chromium for the UI tests and screenshots: Debian's ``chromium`` driven by Playwright.

Playwright comes from PyPI; its own browser download (``playwright install``) is never used: the browser is
``/usr/bin/chromium`` (``apt-get install chromium``; ``make test`` installs it when missing), launched with a
fresh profile directory each time and with everything that would reach the network switched off.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = os.environ.get("REPRINT_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def browser_problem() -> str | None:
    """None when the browser can be driven here; otherwise why not."""
    if not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as err:
        return f"playwright is not installed ({err}); pip install playwright"
    return None


class Chromium:
    """One Playwright driver; each ``context()`` is a new Chromium process with a new, empty profile."""

    def __init__(self, playwright: Any) -> None:
        self.playwright = playwright

    @contextmanager
    def context(self, **options: Any) -> Iterator[Any]:
        """A ``BrowserContext``; ``options`` are its options (``viewport``, ``java_script_enabled`` …)."""
        with tempfile.TemporaryDirectory(prefix="reprint-chromium-") as profile:
            ctx = self.playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=ARGS, **options)
            try:
                yield ctx
            finally:
                ctx.close()


@contextmanager
def driver() -> Iterator[Chromium]:
    """The Playwright driver (one per thread at a time: the sync API does not nest)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield Chromium(p)


@contextmanager
def chromium(**options: Any) -> Iterator[Any]:
    """A driver and one context of it (see ``Chromium.context``)."""
    with driver() as d, d.context(**options) as ctx:
        yield ctx
