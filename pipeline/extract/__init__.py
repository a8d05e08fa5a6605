"""Extract stage: Page → Article, bounded (``ExtractLimits``), in this process or in worker processes that
a deadline or a memory cap stops (``IsolatedExtractor``, ``extract_isolated``).

The names below are imported on first use, so that a process that only sends pages to workers never
loads trafilatura (the workers do).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.extract.extractor import decode_html, extract
    from pipeline.extract.isolated import (
        IsolatedExtractor,
        WorkerUsage,
        close_shared,
        extract_isolated,
        shared_extractor,
        shared_usage,
    )
    from pipeline.extract.limits import DEFAULT_LIMITS, ExtractLimits

_HOMES = {
    "DEFAULT_LIMITS": "limits",
    "ExtractLimits": "limits",
    "IsolatedExtractor": "isolated",
    "WorkerUsage": "isolated",
    "close_shared": "isolated",
    "decode_html": "extractor",
    "extract": "extractor",
    "extract_isolated": "isolated",
    "shared_extractor": "isolated",
    "shared_usage": "isolated",
}

__all__ = [
    "DEFAULT_LIMITS",
    "ExtractLimits",
    "IsolatedExtractor",
    "WorkerUsage",
    "close_shared",
    "decode_html",
    "extract",
    "extract_isolated",
    "shared_extractor",
    "shared_usage",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'pipeline.extract' has no attribute {name!r}")
    value = getattr(import_module(f"pipeline.extract.{home}"), name)
    globals()[name] = value
    return value
