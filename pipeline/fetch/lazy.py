"""A fetcher that starts its HTTP client on the first request.

A run over WARC files and local HTML never fetches anything; starting httpx (TLS contexts, the transport,
the robots cache) cost a tenth of a second of every such run for nothing. ``LazyFetcher`` has the
``Fetcher`` surface the runners and ``discover`` use (``settings``, ``fetch``, the async context) and
builds the real one when a URL is first fetched.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pipeline.records import Page
from pipeline.settings import Settings


class LazyFetcher:
    """``pipeline.fetch.client.Fetcher(settings, **options)``, started on the first ``fetch``."""

    def __init__(self, settings: Settings, **options: Any) -> None:
        self.settings = settings
        self._options = options
        self._real: Any = None
        self._starting = asyncio.Lock()

    async def fetch(self, url: str, **kwargs: Any) -> Page:
        if self._real is None:
            async with self._starting:
                if self._real is None:
                    from pipeline.fetch.client import Fetcher

                    real = Fetcher(self.settings, **self._options)
                    await real.__aenter__()
                    self._real = real
        return await self._real.fetch(url, **kwargs)

    async def __aenter__(self) -> LazyFetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._real is not None:
            await self._real.__aexit__(*exc)
            self._real = None
