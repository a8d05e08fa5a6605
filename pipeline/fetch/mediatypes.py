"""Media types: what a Content-Type says, and which ones reprint reads (no HTTP stack imported: a run over
local files and WARCs needs these without starting a client)."""

from __future__ import annotations

READABLE_TYPES = frozenset(
    {
        "application/xhtml+xml",
        "application/xml",
        "application/json",
        "application/gzip",
        "application/x-gzip",
        "application/octet-stream",
        "binary/octet-stream",
    }
)


def media_type(content_type: str) -> str:
    """``text/html`` of ``Text/HTML; charset=utf-8``."""
    return content_type.split(";", 1)[0].strip().lower()


def readable_type(content_type: str) -> bool:
    """Whether reprint can do anything with a response of this Content-Type (empty counts as yes)."""
    kind = media_type(content_type)
    if not kind or kind.startswith("text/") or kind in READABLE_TYPES:
        return True
    return kind.endswith(("+xml", "+json"))
