"""Every bound the read API enforces, in one place: FastAPI's declared parameters (and so the OpenAPI schema),
the fast path's own parsing (``fast.py``) and the web UI read them from here."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.dedup.reviews import NOTE_MAX


@dataclass(frozen=True, slots=True)
class PageSize:
    """A listing's ``limit``: ``default`` when none is given, at most ``most``."""

    default: int
    most: int


ARTICLES = PageSize(50, 200)
CHANGES = PageSize(500, 1000)
RUNS = PageSize(20, 200)
DEAD_LETTERS = PageSize(100, 1000)

#: Characters of an opaque cursor (``next_cursor`` of a previous page).
CURSOR_CHARS = 200
#: Characters of the ``site`` filter.
SITE_CHARS = 500
#: Characters of the ``q`` title search.
QUERY_CHARS = 200
#: Errors listed with one run.
RUN_ERRORS = 200
#: Characters of a review's or a takedown's note / reason.
NOTE_CHARS = NOTE_MAX
#: Characters of a page URL in an admin request's body.
URL_CHARS = 8192
#: Characters of a page URL as a query parameter (``/admin/reviews?url=``): bounded like ``site``, so a request line
#: stays within what the server reads.
URL_QUERY_CHARS = 1000
#: Characters of who made a review.
WHO_CHARS = 200
