"""A cooperative deadline for one page's dedup work (``Settings.dedup_deadline``).

Extraction is stopped from outside (its worker process is killed, ``pipeline.extract.isolated``); matching runs in
the process that holds the store's transaction, so it stops itself instead: ``Deadline.check`` is called between
verifications (a page's matching) and between comparisons (a cluster's decision), and raises ``PageTimeout`` (stage
``dedup``) once the time is spent. One comparison is bounded by the extraction limits (well under a second at the
largest text), so the overrun past the deadline is too.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.errors import PageTimeout


@dataclass(slots=True)
class Deadline:
    """``seconds`` from its creation, on ``clock``; ``check()`` raises ``PageTimeout`` past them."""

    seconds: float
    url: str | None = None
    outcome: str = ""  # what becomes of the work cut short, for the message
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    @classmethod
    def never(cls) -> Deadline:
        """A deadline that never passes (work an operator asked for: reviews, takedowns)."""
        return cls(math.inf)

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    def check(self, doing: str = "matching") -> None:
        """Raise ``PageTimeout`` when the deadline has passed."""
        elapsed = self.elapsed
        if elapsed > self.seconds:
            then = f"; {self.outcome}" if self.outcome else ""
            raise PageTimeout(f"dedup ran past its {self.seconds:g} s deadline (dedup_deadline) after {elapsed:.1f} s "
                              f"of {doing}{then}", url=self.url, stage="dedup")


__all__ = ["Deadline"]
