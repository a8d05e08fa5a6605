"""The living-articles scenario: the world's two stories (``tests.support.world``) go through every kind of change
a stored article can see, and after each one a downstream follower, polling ``/changes`` over HTTP, must hold
exactly the canonical set the store holds.

The changes, in order (``STEPS``):

1. the world is ingested;
2. the original pier story is corrected (its page comes back with other text): it stays the canonical, and an
   ``article_updated`` event says what changed;
3. the republished pier copy's page now carries the library story: it leaves the pier cluster and joins the
   library cluster;
4. everything is re-processed with unchanged code: nothing changes and no event is logged;
5. each kind of review and its undo: the spun copy made canonical, the scraped copy separated, the otters page
   merged with the pier original, the scraped flag put on the pier canonical, the spun flag taken off the spun
   copy;
6. the library story's whole version (its canonical) is taken down: the feed drops it, the cluster is re-decided.

A ``Deployment`` does the changes: ``EmbeddedDeployment`` with the library in this process, and the workers'
tests one that goes through ``reprint … --via celery`` and real worker processes. ``run_scenario`` drives
either and checks every step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from pipeline.serve.queries import canonical_ids, mirror_from_events
from pipeline.settings import Settings
from pipeline.store import Store
from tests.support.world import LIBRARY_FIRST, LIBRARY_SECOND, LIBRARY_TITLE, PIER, PIER_TITLE, page

CORRECTION = ("Correction: an earlier version of this article said the work would cost about four million; the "
              "board's estimate is four and a half million.")


class Deployment(Protocol):
    """What the scenario needs of a deployment: ingest, re-process, review and take down."""

    def ingest(self, paths: list[Path]) -> None: ...

    def reprocess(self) -> dict[str, Any]: ...

    def review(self, kind: str, urls: list[str], *, flag: str | None = None, on: bool | None = None) -> int: ...

    def undo(self, review_id: int) -> None: ...

    def forget(self, url: str, reason: str) -> None: ...


class EmbeddedDeployment:
    """The embedded deployment: the library's own functions, in this process."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store, self.settings = store, settings

    def ingest(self, paths: list[Path]) -> None:
        from pipeline.ingest.runner import run_ingest

        summary = run_ingest([str(p) for p in paths], self.store, self.settings, progress=False)
        assert summary.ok, summary.notes

    def reprocess(self) -> dict[str, Any]:
        from pipeline.ingest.reprocess import run_reprocess

        return run_reprocess(self.store, self.settings, progress=False).as_dict()

    def review(self, kind: str, urls: list[str], *, flag: str | None = None, on: bool | None = None) -> int:
        from pipeline.ingest import reviews

        return int(reviews.apply(self.store, kind, urls, flag=flag, on=on, who="tester", note=f"{kind} test",
                                 settings=self.settings)["id"])

    def undo(self, review_id: int) -> None:
        from pipeline.ingest import reviews

        reviews.undo(self.store, review_id, who="tester", settings=self.settings)

    def forget(self, url: str, reason: str) -> None:
        from pipeline.ingest.living import forget

        assert forget(self.store, url, reason=reason, who="tester", settings=self.settings)["forgotten"]


class Follower:
    """A downstream system: polls /changes from where it stopped, keeps a mirror of the canonical set."""

    def __init__(self, base: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=10)
        self.cursor: str | None = None
        self.canonical: set[int] = set()
        self.events: list[dict[str, Any]] = []

    def poll(self, limit: int = 7) -> list[dict[str, Any]]:
        """Follow the feed to its end in small pages; returns the events read."""
        got: list[dict[str, Any]] = []
        while True:
            params: dict[str, Any] = {"limit": limit} | ({"cursor": self.cursor} if self.cursor else {})
            r = self.client.get("/changes", params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            mirror_from_events(body["events"], self.canonical)
            got.extend(body["events"])
            self.cursor = body["next_cursor"]
            if not body["has_more"]:
                self.events.extend(got)
                return got


@dataclass
class World:
    store: Store
    root: Path
    paths: dict[str, Path]
    follower: Follower
    log: list[tuple[str, list[str]]] = field(default_factory=list)  # (step, event types)

    def url(self, name: str) -> str:
        return self.paths[name].resolve().as_uri()

    def rows(self) -> list[Any]:
        return list(self.store.export_rows())

    def row(self, name: str) -> Any:
        return next(r for r in self.rows() if r.url == self.url(name))

    def cluster_of(self, name: str) -> int:
        return int(self.row(name).cluster_id)

    def canonical_of(self, name: str) -> str:
        cluster = self.cluster_of(name)
        (url,) = [r.url for r in self.rows() if r.cluster_id == cluster and r.is_canonical]
        return url

    def check(self, step: str) -> list[str]:
        """Poll the feed; the mirror must equal the store's canonical set. Returns the step's event types."""
        types = [e["type"] for e in self.follower.poll()]
        truth = canonical_ids(self.store)
        assert self.follower.canonical == truth, (f"after {step!r}: mirror {sorted(self.follower.canonical)} != "
                                                  f"store {sorted(truth)}; events {types}")
        self.log.append((step, types))
        return types


def _rewrite(path: Path, body: bytes) -> None:
    path.write_bytes(body)


def run_scenario(world: World, deployment: Deployment, *, on_step: Callable[[str], None] | None = None) -> None:
    """Every change of the module docstring, each checked against the follower's mirror and its own effect."""
    w, d = world, deployment

    def step(name: str) -> list[str]:
        types = w.check(name)
        if on_step is not None:
            on_step(name)
        return types

    d.ingest([w.paths[n] for n in ("pier_scraped", "pier_original", "library_first", "library_second", "otters",
                                    "library_whole", "pier_republished", "pier_spun")])
    assert "article_added" in step("ingest")
    assert w.canonical_of("pier_scraped") == w.url("pier_original")
    assert w.canonical_of("library_first") == w.url("library_whole")
    pier, library = w.cluster_of("pier_original"), w.cluster_of("library_whole")

    # a canonical corrected: it stays the canonical, and the feed says what changed
    corrected = [PIER[0].replace("about four million", "about four and a half million"), *PIER[1:], CORRECTION]
    _rewrite(w.paths["pier_original"], page(PIER_TITLE, corrected, site="Westmere Herald",
                                            host="westmereherald.example", byline="Rosa Lindgren", date="2025-06-12"))
    original_id = w.row("pier_original").id
    d.ingest([w.paths["pier_original"]])
    types = step("canonical corrected")
    assert types[0] == "article_updated", types
    updated = w.follower.events[-len(types)]
    assert updated["article_id"] == original_id and updated["data"]["length"]["new"] > updated["data"]["length"]["old"]
    assert w.canonical_of("pier_scraped") == w.url("pier_original") and w.cluster_of("pier_original") == pier
    assert CORRECTION in w.row("pier_original").text

    # an update that moves a page out of its cluster and into another
    _rewrite(w.paths["pier_republished"], page(LIBRARY_TITLE, LIBRARY_FIRST + LIBRARY_SECOND, site="Coast Wire",
                                               host="coastwire.example", date="2025-05-03"))
    d.ingest([w.paths["pier_republished"]])
    types = step("update moves a page")
    assert types[0] == "article_updated", types
    assert w.cluster_of("pier_republished") == w.cluster_of("library_whole") == library
    assert w.cluster_of("pier_original") == pier and w.url("pier_republished") not in {
        r.url for r in w.rows() if r.cluster_id == pier}

    # a re-processing with unchanged code: nothing moves, nothing is logged
    report = d.reprocess()
    events = step("reprocess")
    assert events == [], (events, w.follower.events[-len(events):])
    assert report["text_changed"] == 0 and report["cluster_moves"] == 0 and report["canonical_changes"] == 0
    assert report["pages"] == len(w.paths) and not report["flags_gained"] and not report["flags_lost"]

    # each kind of review, and its undo
    rid = d.review("canonical", [w.url("pier_spun")])
    assert step("review canonical")[0] == "review_applied"
    assert w.canonical_of("pier_original") == w.url("pier_spun")
    assert w.row("pier_spun").evidence["canonical"]["decided_by"] == "review"
    d.undo(rid)
    assert step("undo canonical")[0] == "review_undone"
    assert w.canonical_of("pier_original") == w.url("pier_original")

    rid = d.review("separate", [w.url("pier_scraped")])
    step("review separate")
    assert w.cluster_of("pier_scraped") != pier and w.row("pier_scraped").is_canonical
    d.undo(rid)
    step("undo separate")
    assert w.cluster_of("pier_scraped") == pier and not w.row("pier_scraped").is_canonical

    rid = d.review("merge", [w.url("otters"), w.url("pier_original")])
    step("review merge")
    assert w.cluster_of("otters") == pier and w.canonical_of("otters") == w.url("pier_original")
    d.undo(rid)
    step("undo merge")
    assert w.cluster_of("otters") != pier and w.row("otters").is_canonical

    # the pier story is now the original, a scraped and a spun copy: flagging the original leaves no unflagged
    # version to elect instead, so it stays the canonical, flagged by the review
    rid = d.review("flag", [w.url("pier_original")], flag="scraped", on=True)
    step("review flag on")
    assert "scraped" in w.row("pier_original").flags
    assert w.row("pier_original").evidence["scraped"]["decided_by"] == "review"
    d.undo(rid)
    step("undo flag on")
    assert "scraped" not in w.row("pier_original").flags and w.canonical_of("pier_spun") == w.url("pier_original")

    rid = d.review("flag", [w.url("pier_spun")], flag="spun", on=False)
    step("review flag off")
    assert "spun" not in w.row("pier_spun").flags
    d.undo(rid)
    step("undo flag off")
    assert "spun" in w.row("pier_spun").flags

    # a takedown of a canonical: the feed drops it, its cluster keeps going with a new canonical
    whole_id = w.row("library_whole").id
    d.forget(w.url("library_whole"), "publisher request")
    types = step("forget")
    assert types[0] == "article_removed", types
    assert whole_id not in w.follower.canonical
    assert w.url("library_whole") not in {r.url for r in w.rows()}
    assert w.canonical_of("library_first") == w.url("pier_republished")
    assert w.store.tombstone(w.url("library_whole"))["reason"] == "publisher request"


__all__ = ["CORRECTION", "Deployment", "EmbeddedDeployment", "Follower", "World", "run_scenario"]
