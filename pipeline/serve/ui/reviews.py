"""The operator reviews the UI's action forms call: a Protocol, and an adapter over the module that provides them.

An operator's review (issue 12, "living articles") outranks the algorithm until it is undone. The review store
lives in the library (``pipeline.store.reviews`` or ``pipeline.ingest.reviews``), as three functions:

    apply(store, kind, urls, *, flag=None, on=None, who, note) -> dict   # kind: canonical | separate | merge | flag
    undo(store, review_id, *, who) -> dict
    list_reviews(store, *, url=None) -> list[dict]

``load_reviews`` finds the first of ``REVIEW_MODULES`` that defines all three and binds it to a store. When none
does, it says why, the pages show no action buttons, and the UI's POSTs answer 503 with that reason. The UI
turns a ``LookupError`` raised by them (an unknown URL or review) into a 404 and a ``ValueError`` (merging a page
with itself, undoing twice, a bad flag) into a 422, showing the exception's message; anything else is a bug
and a 500.

The dicts are shown as they come; the UI reads these keys when present: a review's ``id``, ``kind``, ``urls``,
``flag``, ``on``, ``who``, ``note``, ``at`` and ``undone`` (or ``undone_at``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol

from pipeline.store import Store

#: Where the review functions may live, in the order they are looked for.
REVIEW_MODULES = ("pipeline.store.reviews", "pipeline.ingest.reviews")
KINDS = ("canonical", "separate", "merge", "flag")
FLAGS = ("spun", "scraped")


class ReviewBackend(Protocol):
    """Reviews bound to one store: what the action forms call."""

    def apply(self, kind: str, urls: list[str], *, flag: str | None = None, on: bool | None = None, who: str,
              note: str | None) -> dict[str, Any]:
        """Record one review and apply it; returns the review (with its ``id``)."""
        ...

    def undo(self, review_id: int, *, who: str) -> dict[str, Any]:
        """Undo a review; returns what was undone."""
        ...

    def list_reviews(self, *, url: str | None = None) -> list[dict[str, Any]]:
        """Reviews, all of them or those naming ``url``."""
        ...


class ModuleReviews:
    """``ReviewBackend`` over a module's ``apply`` / ``undo`` / ``list_reviews`` functions and one store."""

    def __init__(self, store: Store, apply: Callable[..., dict[str, Any]], undo: Callable[..., dict[str, Any]],
                 list_reviews: Callable[..., list[dict[str, Any]]]) -> None:
        self.store, self._apply, self._undo, self._list = store, apply, undo, list_reviews

    def apply(self, kind: str, urls: list[str], *, flag: str | None = None, on: bool | None = None, who: str,
              note: str | None) -> dict[str, Any]:
        return dict(self._apply(self.store, kind, urls, flag=flag, on=on, who=who, note=note) or {})

    def undo(self, review_id: int, *, who: str) -> dict[str, Any]:
        return dict(self._undo(self.store, review_id, who=who) or {})

    def list_reviews(self, *, url: str | None = None) -> list[dict[str, Any]]:
        return [dict(r) for r in self._list(self.store, url=url) or []]


def load_reviews(store: Store, modules: tuple[str, ...] = REVIEW_MODULES) -> tuple[ReviewBackend | None, str]:
    """(backend, why not): the first module of ``modules`` that defines the three functions, bound to ``store``."""
    reasons = []
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as err:  # a broken review module must not take the read API down with it
            missing = isinstance(err, ModuleNotFoundError) and err.name is not None and name.startswith(err.name)
            reasons.append(f"{name} does not exist" if missing else f"{name} cannot be imported: {err}")
            continue
        missing = [f for f in ("apply", "undo", "list_reviews") if not callable(getattr(module, f, None))]
        if missing:
            reasons.append(f"{name} lacks {', '.join(missing)}")
            continue
        return ModuleReviews(store, module.apply, module.undo, module.list_reviews), ""
    return None, ("operator reviews are not available on this server yet (" + "; ".join(reasons) + ")")


__all__ = ["FLAGS", "KINDS", "REVIEW_MODULES", "ModuleReviews", "ReviewBackend", "load_reviews"]
