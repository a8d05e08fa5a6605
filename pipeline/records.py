"""The records that cross a module line: Page → Article → Signature → PairVerdict → ClusterDecision on the way
through the stages, what the runners report (SourceItem, PageResult, ErrorNote, IngestSummary), and the living
articles' records (Review: an operator's decision; PageVersion: what a page was before an update;
ReprocessReport: what a re-processing changed).

Every record is a frozen, slotted dataclass except the summary, which a run fills in as it goes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np

    from pipeline.errors import ReprintError


@dataclass(frozen=True, slots=True)
class Page:
    """Bytes as fetched (or read from a WARC / file), before any interpretation."""

    url: str
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    fetched_at: datetime | None = None
    final_url: str | None = None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


@dataclass(frozen=True, slots=True)
class SourceItem:
    """One unit of work (or one problem) discovered in a source."""

    source: str  # the SOURCE spec it came from, as the user typed it
    url: str | None = None  # a URL to fetch (page is None) or the page's URL
    page: Page | None = None  # content already at hand (WARC record, local file, fetched article)
    error: ReprintError | None = None  # a problem to record against the source; carries no work
    resume_at: int | None = None  # WARC: offset of the next record, the checkpoint once this item is stored
    lastmod: datetime | None = None  # sitemap URL: its <lastmod> (aware UTC, end of the period it names)


@dataclass(frozen=True, slots=True)
class Link:
    """An in-body hyperlink: its text, target, and where the text stood in the article text."""

    text: str
    href: str
    start: int
    paragraph: int


@dataclass(frozen=True, slots=True)
class Article:
    """What extraction keeps of a page: the text and what the canonicalizer needs to judge it."""

    url: str
    title: str
    text: str
    paragraphs: tuple[str, ...]
    links: tuple[Link, ...] = ()
    byline: str | None = None
    published: str | None = None
    site: str | None = None
    canonical_url: str | None = None
    language: str | None = None
    attribution: tuple[str, ...] = ()
    attribution_urls: tuple[str, ...] = ()

    def meta(self) -> dict[str, Any]:
        """The structured parts that are stored as JSON beside the text (paragraphs are the text split
        on blank lines, so they are not stored twice)."""
        return {
            "links": [[link.text, link.href, link.start, link.paragraph] for link in self.links],
            "byline": self.byline,
            "language": self.language,
            "attribution": list(self.attribution),
            "attribution_urls": list(self.attribution_urls),
        }


@dataclass(frozen=True, slots=True)
class Signature:
    """MinHash values of one article, one array per signature kind, plus the token count."""

    values: dict[str, np.ndarray]
    n_tokens: int


@dataclass(frozen=True, slots=True)
class PairVerdict:
    """The verified relation between two articles, from aligning their token sequences.

    ``relation`` is one of ``same`` (boilerplate differences only), ``subset`` (one is an excerpt of,
    or lost spans from, the other), ``spun`` (word-level substitution), ``unrelated``.
    """

    relation: str
    similarity: float
    coverage_a: float
    coverage_b: float
    substitution_rate: float
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def related(self) -> bool:
        return self.relation != "unrelated"


@dataclass(frozen=True, slots=True)
class MemberDecision:
    """One member's place in its cluster: canonical or not, its flags, and why."""

    article_id: int
    canonical: bool
    flags: tuple[str, ...]
    similarity: float
    evidence: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ClusterDecision:
    """The canonicalizer's verdict on a whole cluster."""

    canonical_id: int
    members: tuple[MemberDecision, ...]
    reason: str


@dataclass(slots=True)
class PageResult:
    """What ingesting one page did: ``stored`` a new article, ``updated`` a stored one (its content changed), or
    left it ``unchanged``, ``older`` (a record older than the stored version) or ``forgotten`` (taken down).
    ``update`` is ``steps.known_page``'s answer for a page whose stored article must be updated."""

    status: str
    article_id: int | None = None
    cluster_id: int | None = None
    related: int = 0
    warnings: list[tuple[str, str, str]] = field(default_factory=list)  # (stage, kind, message)
    verified: int = 0  # candidate pairs that reached alignment
    changes: list[dict[str, Any]] = field(default_factory=list)  # what re-deciding clusters changed (updates)


@dataclass(frozen=True, slots=True)
class ErrorNote:
    """One recorded error or warning, kept for the printed summary."""

    source: str
    url: str | None
    stage: str
    kind: str
    message: str
    level: str = "error"


#: How many error lines a summary keeps for printing; every error is in the database anyway.
MAX_NOTES = 500


@dataclass(slots=True)
class IngestSummary:
    """What one run did, embedded or distributed; the counts are also stored with the run."""

    run_id: int
    sources: list[str]
    pages_seen: int = 0
    articles: int = 0
    unchanged: int = 0
    updated: int = 0  # stored articles whose page came back with other content
    older: int = 0  # records older than the version stored (an older WARC): not applied
    forgotten: int = 0  # pages taken down (tombstoned): skipped
    joined: int = 0
    verified: int = 0  # candidate pairs that reached alignment (near the true relatives, whatever the store size)
    clusters: int = 0
    multi_clusters: int = 0
    articles_total: int = 0
    flags: dict[str, int] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    notes: list[ErrorNote] = field(default_factory=list)
    failed_sources: set[str] = field(default_factory=set)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no source had an error (warnings do not count)."""
        return not self.errors

    def note(self, note: ErrorNote, *, failed_source: str | None = None) -> None:
        """Count one recorded error or warning (and keep it for printing, up to MAX_NOTES)."""
        if note.level == "error":
            self.errors[note.kind] += 1
            if failed_source:
                self.failed_sources.add(failed_source)
        else:
            self.warnings[note.kind] += 1
        if len(self.notes) < MAX_NOTES:
            self.notes.append(note)

    def count(self, result: PageResult) -> None:
        """Count one page's outcome."""
        if result.status == "stored":
            self.articles += 1
            self.joined += result.related > 0
            self.verified += result.verified
        elif result.status == "updated":
            self.updated += 1
            self.verified += result.verified
        elif result.status == "older":
            self.older += 1
        elif result.status == "forgotten":
            self.forgotten += 1
        else:
            self.unchanged += 1

    def take_totals(self, totals: dict[str, Any]) -> None:
        """The store-wide figures (``Store.totals``) at the end of the run."""
        self.articles_total = totals["articles"]
        self.clusters = totals["clusters"]
        self.multi_clusters = totals["multi_clusters"]
        self.flags = dict(totals["flags"])

    def counts(self) -> dict[str, Any]:
        """The JSON-able counts stored with the run."""
        return {
            "pages_seen": self.pages_seen,
            "articles": self.articles,
            "unchanged": self.unchanged,
            "updated": self.updated,
            "older": self.older,
            "forgotten": self.forgotten,
            "joined": self.joined,
            "verified_pairs": self.verified,
            "clusters": self.clusters,
            "multi_clusters": self.multi_clusters,
            "articles_total": self.articles_total,
            "flags": dict(self.flags),
            "errors": dict(self.errors),
            "warnings": dict(self.warnings),
            "failed_sources": sorted(self.failed_sources),
            "elapsed": round(self.elapsed, 3),
        }


@dataclass(slots=True)
class DedupOutcome:
    """What adding one article did: where it landed and what changed because of it."""

    article_id: int
    cluster_id: int
    candidates: int = 0
    related: int = 0
    changes: list[dict[str, Any]] = field(default_factory=list)

@dataclass(slots=True)
class Alignment:
    """Counts from one alignment, seen from side a and side b."""

    n_a: int
    n_b: int
    equal: int
    anchored: int
    sub_a: int
    sub_b: int
    substitutions: list[tuple[str, str]]
    swaps: list[tuple[str, str]]  # isolated one-word substitutions between two real words
    lost_a: list[tuple[int, int]]  # spans of a missing from b
    lost_b: list[tuple[int, int]]  # spans of b missing from a
    # (a_start, a_end, b_start, b_end) of every run of non-equal opcodes between equal runs
    regions: list[tuple[int, int, int, int]] = field(default_factory=list)
    # isolated rewrites of a short phrase into another ("more than" → "in excess of"): a spinner's
    # other edit besides the one-word swap
    phrases: list[tuple[str, str]] = field(default_factory=list)

    @property
    def unmatched_a(self) -> int:
        """Words of a that no word of b stands for: the surplus of a over b summed over the regions."""
        return sum(max(0, (e - s) - (u - t)) for s, e, t, u in self.regions)

    @property
    def unmatched_b(self) -> int:
        return sum(max(0, (u - t) - (e - s)) for s, e, t, u in self.regions)


@dataclass(frozen=True, slots=True)
class SourcePlan:
    """A source as a runner reads it: its store id, and for a WARC the checkpoint key it resumes from."""

    spec: str
    kind: str
    source_id: int
    checkpoint: str | None = None  # WARC: the checkpoint key (file plus filters)
    options: dict[str, Any] = field(default_factory=dict)  # keyword options for ``discover``
    resume_at: int = 0  # WARC: the committed offset the read starts from

@dataclass(frozen=True, slots=True)
class Work:
    """What one discovered item asks for.

    ``fail``: a page that could not be discovered (its error is ``error``); ``source_error``: a problem of
    the source itself, not a page; ``page``: content at hand to ingest; ``fetch``: a URL to fetch;
    ``unchanged``: a sitemap URL whose ``<lastmod>`` has not moved since it was fetched (no request).
    """

    action: Literal["fail", "source_error", "page", "fetch", "unchanged", "nothing"]
    url: str | None = None
    page: Page | None = None
    error: ReprintError | None = None
    lastmod: datetime | None = None

    @property
    def is_page(self) -> bool:
        """Whether the item counts as a page seen (a source that cannot be read is not a page)."""
        return self.action not in ("source_error", "nothing")

@dataclass(frozen=True, slots=True)
class ArticleFilter:
    """The filters of ``GET /articles``; ``canonical=None`` means every article, copies included."""

    canonical: bool | None = True
    site: str | None = None
    published_since: date | datetime | None = None
    ingested_since: datetime | None = None
    flag: str | None = None
    q: str | None = None
    cluster_id: int | None = None


@dataclass(frozen=True, slots=True)
class Review:
    """An operator's decision in force (``pipeline.dedup.reviews``): ``canonical`` (``a`` is its cluster's
    canonical), ``separate`` (``a`` stands alone, its relations ignored), ``merge`` (``a`` and ``b`` are one
    article) or ``flag`` (``a`` carries ``flag`` when ``on``, not when not). Later reviews (higher ids) win."""

    id: int
    kind: Literal["canonical", "separate", "merge", "flag"]
    a: int
    b: int | None = None
    flag: str | None = None
    on: bool | None = None
    who: str = ""
    note: str | None = None
    at: str | None = None

    def brief(self) -> dict[str, Any]:
        """What a decision's evidence says of the review."""
        out: dict[str, Any] = {"review": self.id, "kind": self.kind, "who": self.who}
        if self.kind == "flag":
            out |= {"flag": self.flag, "on": self.on}
        if self.note:
            out["note"] = self.note
        if self.at:
            out["at"] = self.at
        return out


@dataclass(frozen=True, slots=True)
class PageVersion:
    """The page an article came from before an update: its content hash and when it was fetched."""

    content_hash: str | None
    fetched_at: datetime | None


@dataclass(slots=True)
class ReprocessReport:
    """What one re-processing did (``reprint reprocess``): pages read, what their articles became, and what the
    re-decided clusters changed, net: an article that moved twice and came back did not move.

    While the run goes on, ``count_changes`` keeps the state each article and cluster had before the run first
    changed it (``touched``: with a stamp, so the parts of a run done by several workers combine); ``settle`` then
    compares those with the store as it ends, for the cluster moves, canonical changes and flags gained and lost."""

    pages: int = 0
    unchanged: int = 0
    text_changed: int = 0  # articles whose extracted article changed (``article_updated``)
    added: int = 0  # pages that had no article and now have one
    rematched: int = 0  # articles whose matching a dedup deadline had cut short, matched again
    pruned: int = 0  # pages whose raw HTML was pruned: skipped
    failed: int = 0  # pages that could not be extracted (recorded as errors; their stored article is kept)
    relations_changed: int = 0  # articles whose stored relations changed verdict
    cluster_moves: int = 0  # articles in another cluster than before (``settle``)
    canonical_changes: int = 0  # clusters with another canonical than before (``settle``)
    flags_gained: Counter[str] = field(default_factory=Counter)
    flags_lost: Counter[str] = field(default_factory=Counter)
    changed_urls: list[str] = field(default_factory=list)  # the first pages whose text changed
    resumed_at: int = 0  # the page id a resumed run started after (0: from the start)
    elapsed: float = 0.0
    # kind (moves | flags | canon) → id (JSON key) → [stamp, the value before the run changed it]
    touched: dict[str, dict[str, list[Any]]] = field(default_factory=lambda: {"moves": {}, "flags": {}, "canon": {}})

    _COUNTS = ("pages", "unchanged", "text_changed", "added", "rematched", "pruned", "failed", "relations_changed")

    def take(self, other: ReprocessReport) -> None:
        """Add another part's counts (a batch, a worker's share) to these."""
        for name in self._COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for kind, items in other.touched.items():
            mine = self.touched.setdefault(kind, {})
            for key, (stamp, old) in items.items():
                if key not in mine or stamp < mine[key][0]:
                    mine[key] = [stamp, old]
        self.changed_urls.extend(other.changed_urls[: max(0, MAX_NOTES - len(self.changed_urls))])

    def count_changes(self, changes: list[dict[str, Any]]) -> None:
        """Keep what the re-decided clusters changed (the changes the deduplicator returns), first state first."""
        import time

        stamp = time.time()
        for change in changes:
            kind = change.get("type")
            if kind == "cluster_moved":
                self.touched["moves"].setdefault(str(change["article_id"]), [stamp, change.get("old")])
            elif kind == "canonical_changed" and change.get("cluster_id") is not None:
                self.touched["canon"].setdefault(str(change["cluster_id"]), [stamp, change.get("old")])
            elif kind == "flags_changed":
                self.touched["flags"].setdefault(str(change["article_id"]), [stamp, sorted(change.get("old") or ())])

    def settle(self, clusters: dict[int, int | None], flags: dict[int, list[str]],
               canonicals: dict[int, int | None]) -> None:
        """The net counts, from the store as the run ends: ``clusters`` (article → cluster), ``flags`` (article →
        flags) and ``canonicals`` (cluster → canonical, None for a cluster left empty) of the touched ids."""
        self.cluster_moves = sum(clusters.get(int(k)) != old for k, (_s, old) in self.touched["moves"].items())
        self.canonical_changes = sum(
            1 for k, (_s, old) in self.touched["canon"].items()
            if canonicals.get(int(k)) is not None and canonicals.get(int(k)) != old)
        self.flags_gained, self.flags_lost = Counter(), Counter()
        for k, (_s, old) in self.touched["flags"].items():
            now = set(flags.get(int(k), []))
            self.flags_gained.update(sorted(now - set(old)))
            self.flags_lost.update(sorted(set(old) - now))

    def touched_ids(self) -> tuple[set[int], set[int]]:
        """(articles, clusters) whose state ``settle`` needs."""
        return ({int(k) for k in self.touched["moves"]} | {int(k) for k in self.touched["flags"]},
                {int(k) for k in self.touched["canon"]})

    @property
    def changed(self) -> bool:
        return bool(self.text_changed or self.added or self.relations_changed or self.cluster_moves
                    or self.canonical_changes or self.flags_gained or self.flags_lost)

    def as_dict(self, *, touched: bool = False) -> dict[str, Any]:
        """The JSON-able counts (printed with ``--json``); ``touched`` adds what ``settle`` needs (the checkpoint
        keeps it between batches)."""
        out = {name: getattr(self, name) for name in self._COUNTS}
        out |= {"cluster_moves": self.cluster_moves, "canonical_changes": self.canonical_changes,
                "flags_gained": dict(self.flags_gained), "flags_lost": dict(self.flags_lost),
                "changed_urls": list(self.changed_urls), "resumed_at": self.resumed_at,
                "elapsed": round(self.elapsed, 3)}
        if touched:
            out["touched"] = self.touched
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReprocessReport:
        out = cls()
        for name in (*cls._COUNTS, "cluster_moves", "canonical_changes", "resumed_at"):
            setattr(out, name, int(data.get(name) or 0))
        out.flags_gained = Counter({k: int(v) for k, v in (data.get("flags_gained") or {}).items()})
        out.flags_lost = Counter({k: int(v) for k, v in (data.get("flags_lost") or {}).items()})
        out.changed_urls = list(data.get("changed_urls") or [])
        out.elapsed = float(data.get("elapsed") or 0.0)
        touched = data.get("touched") or {}
        out.touched = {kind: {k: list(v) for k, v in (touched.get(kind) or {}).items()}
                       for kind in ("moves", "flags", "canon")}
        return out
