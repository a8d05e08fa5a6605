"""Cursors of the read API: opaque to clients (base64url of a kind letter and a row id) but stable, because
they name a row id, never an offset: they survive restarts, new inserts and rows that change between pages.

Kinds: ``a`` articles, ``e`` events (the changes feed), ``r`` runs.
"""

from __future__ import annotations

import base64
import binascii

#: The largest id a cursor or path may name (a signed 64-bit integer, what every backend can compare).
MAX_ID = 2**63 - 1


class CursorError(ValueError):
    """A cursor that this server did not issue (or issued for another listing)."""


def encode_cursor(kind: str, value: int) -> str:
    """An opaque, URL-safe cursor for ``kind`` ('a' articles, 'e' events) positioned after row ``value``."""
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str) -> int:
    """The row id a cursor names; raises ``CursorError`` for anything malformed or of another kind."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        got_kind, _, value = raw.partition(":")
        number = int(value)
    except (ValueError, binascii.Error, UnicodeError) as err:
        raise CursorError(f"malformed cursor {cursor!r}") from err
    if got_kind != kind or not value.isdigit() or number > MAX_ID:
        raise CursorError(f"cursor {cursor!r} does not belong to this listing")
    return number
