"""When the clusters of newly related articles are decided: the one decision policy of every runner.

An arrival stores its verified relations at once and marks itself *pending* (in the store, so the mark
survives a crash). Deciding a cluster (partition, canonical election, flags) is what costs; a bulk ingest
that decided after every copy of a story would decide the story once per copy. So decisions are batched:
when ``every`` related articles wait, or when the oldest of them has waited ``seconds``, whichever comes
first, and always at the end of a run (``Deduplicator.flush``). ``every=1`` decides on every arrival.
An article with no relation is its own canonical from the start and never waits.

The embedded runner and the Celery workers use this same object (``Deduplicator(policy=...)``); a worker
process counts its own arrivals, and a flush decides every pending article in the store, whoever added it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: A bulk ingest decides after this many related arrivals, or once the oldest has waited BATCH_SECONDS.
BATCH_EVERY = 200
BATCH_SECONDS = 60.0


@dataclass(slots=True)
class DecisionPolicy:
    """Counts related arrivals and says when their clusters are due to be decided."""

    every: int = BATCH_EVERY
    seconds: float = BATCH_SECONDS
    clock: Callable[[], float] = time.monotonic
    _oldest: float | None = field(default=None, init=False)

    @classmethod
    def immediate(cls) -> DecisionPolicy:
        """Decide on every arrival (a library user adding a few articles expects their clusters at once)."""
        return cls(every=1, seconds=0.0)

    @classmethod
    def batched(cls) -> DecisionPolicy:
        """The bulk default: BATCH_EVERY related arrivals or BATCH_SECONDS, whichever comes first."""
        return cls(every=BATCH_EVERY, seconds=BATCH_SECONDS)

    def due(self, waiting: int) -> bool:
        """After an arrival, with ``waiting`` related articles undecided: decide them now?"""
        if waiting <= 0:
            self._oldest = None
            return False
        now = self.clock()
        if self._oldest is None:
            self._oldest = now
        return waiting >= self.every or now - self._oldest >= self.seconds

    def decided(self) -> None:
        """The pending clusters were decided: the clock starts again with the next related arrival."""
        self._oldest = None
