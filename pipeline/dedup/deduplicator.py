"""Dedup stage: fingerprint → match → verify → cluster → canonicalize, for one new article.

Every candidate the index returns is verified (not only the first that matches), so the set of
relations, and therefore the clusters (``cluster.partition``), canonicals and flags, do not depend on
the order in which pages arrive. The index and the lock around re-clustering are pluggable: in-process
by default, shared (Redis, PostgreSQL) when workers on several machines add articles at once. When the
clusters of related arrivals are decided is the ``DecisionPolicy``'s to say (``policy.py``).

Living articles: ``update`` replaces a stored article (its index entries, its relations, verified again, and the
cluster decisions around it), ``remove`` takes one down, and ``redecide`` re-decides the components of a few
articles together (after a relation was dropped, a component may fall apart: its parts are decided in one call,
so the part that keeps the cluster id is the biggest). Every decision applies the operator reviews in force
around ``partition`` and ``decide`` (``reviews.ReviewSet``). All of it touches the article's own index entries,
relations and component, never the rest of the store.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol, TypeVar

from pipeline.dedup.canonical import decide
from pipeline.dedup.cluster import partition
from pipeline.dedup.deadline import Deadline
from pipeline.dedup.fingerprint import estimate_jaccard, fingerprint_tokens
from pipeline.dedup.index import VERIFY_MAX, StoreLSHIndex, band_keys, screen
from pipeline.dedup.panel import SMALL_CLUSTER, decide_large
from pipeline.dedup.policy import DecisionPolicy
from pipeline.dedup.refingerprint import require_current_signatures
from pipeline.dedup.reviews import EMPTY, ReviewSet
from pipeline.dedup.verify import MIN_JACCARD3, spun_part, verify_articles
from pipeline.errors import PageTimeout
from pipeline.records import Article, DedupOutcome, MemberDecision, PageVersion, PairVerdict, Signature
from pipeline.settings import Settings, get_settings
from pipeline.store import Store
from pipeline.text import tokenize, trigram_set

T = TypeVar("T")

#: Judgments and relations kept for large clusters (entries, least recently used dropped first).
MEMO_SIZE = 100_000
#: A shorter text this much contained in a longer one is a part of it, whatever their Jaccard.
EXCERPT_CONTAINED = 0.8


class LRUDict(OrderedDict):  # type: ignore[type-arg]
    """A dict keyed by pairs of article ids that forgets its least recently written entries past ``size``, and
    every entry naming an article on demand (``drop``: an updated or removed article)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self._by_id: dict[int, set[Any]] = {}

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        for i in key:
            self._by_id.setdefault(i, set()).add(key)
        while len(self) > self.size:
            self._unlink(self.popitem(last=False)[0])

    def _unlink(self, key: Any) -> None:
        for i in key:
            keys = self._by_id.get(i)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_id[i]

    def drop(self, article_id: int) -> None:
        """Forget every entry that names ``article_id``."""
        for key in list(self._by_id.get(article_id, ())):
            if key in self:
                super().__delitem__(key)
            self._unlink(key)


class CandidateIndex(Protocol):
    """What the dedup stage needs of an index: an atomic query-then-insert."""

    def query_insert(self, article_id: int, sig: Signature) -> set[int]: ...


class Deduplicator:
    """Runs the dedup stage over one store, with an index (by default in-process, rebuilt from the store)."""

    def __init__(
        self,
        store: Store,
        settings: Settings | None = None,
        *,
        index: CandidateIndex | None = None,
        lock: Callable[[], AbstractContextManager[Any]] | None = None,
        cache_size: int = 2048,
        policy: DecisionPolicy | None = None,
    ) -> None:
        """``policy`` says when related arrivals are decided (default: at once); relations are stored as
        articles arrive either way, and ``flush()`` decides whatever waits. Without ``index`` an in-process
        one is built from the store's signatures when the first article is added."""
        self.store = store
        self.settings = settings or get_settings()
        require_current_signatures(store)
        self._index = index
        self._lock = lock or nullcontext
        self.policy = policy or DecisionPolicy.immediate()
        self._dirty: set[int] = store.pending() if self.policy.every > 1 else set()  # left by a run that stopped
        self._articles: OrderedDict[int, tuple[Article, Sequence[str]]] = OrderedDict()
        self._cache_size = cache_size
        # large clusters (``panel``): members' judgments against their canonical, and computed relations
        self._judged: LRUDict[tuple[int, int], MemberDecision] = LRUDict(MEMO_SIZE)
        self._verdicts: LRUDict[tuple[int, int], PairVerdict] = LRUDict(MEMO_SIZE)
        # where the store's content log stood when these caches were empty (``refresh``)
        self._seen_content = store.content_changes()[0]

    def refresh(self) -> None:
        """Forget what this deduplicator remembers of articles another process updated or took down since it
        last looked (the store's content log): a worker's caches outlive its tasks. Called before cached
        articles are used; one primary-key range read, empty almost always."""
        self._seen_content, changed = self.store.content_changes(self._seen_content)
        for article_id in changed:
            self._drop(article_id)

    @property
    def index(self) -> CandidateIndex:
        """The candidate index: the store's own (``StoreLSHIndex``) unless one was given. Opening it indexes
        what the store's mark says is not indexed yet (the last run's unwritten entries, or every article of
        a store written before the index existed)."""
        if self._index is None:
            self._index = StoreLSHIndex(self.store, self.settings.num_perm, min_tokens=self.settings.min_tokens)
        return self._index

    def save_index(self) -> None:
        """Write the index entries still held in memory (the end of a run; a crash before it loses nothing)."""
        merge = getattr(self._index, "merge", None)
        if merge is not None:
            merge()

    def _remember(self, article_id: int, article: Article, tokens: Sequence[str]) -> None:
        self._articles[article_id] = (article, tokens)
        self._articles.move_to_end(article_id)
        while len(self._articles) > self._cache_size:
            self._articles.popitem(last=False)

    def articles(self, ids: set[int]) -> dict[int, tuple[Article, Sequence[str]]]:
        """Articles with their tokens, from the cache or the store."""
        have = {i: self._articles[i] for i in ids if i in self._articles}
        missing = ids - have.keys()
        if missing:
            for i, a in self.store.articles(missing).items():
                have[i] = (a, tokenize(a.text))
                self._remember(i, *have[i])
        return have

    def add(self, page_id: int, article: Article) -> DedupOutcome:
        """Store the article and relate it to its verified near-duplicates; its cluster is decided when the
        policy says so (at once by default, else with the next batch or at ``flush()``).

        Matching that runs past ``dedup_deadline`` raises ``PageTimeout`` (stage dedup) with the article stored as
        a cluster of its own, no relation written, and marked unmatched (``Store.unmatched``): a caller inside a
        transaction commits it before reporting the error, and ``reprocess`` (or a redelivery) matches it again."""
        deadline = self._matching_deadline(article.url)
        tokens = tokenize(article.text)
        sig = fingerprint_tokens(tokens, self.settings.num_perm)
        article_id, cluster_id, created = self.store.add_article_once(page_id, article, sig)
        try:
            outcome = self._relate(article_id, cluster_id, article, tokens, sig, deadline)
            if not created:  # matched again (a redelivery, reprocess): whatever cut it short before is over
                self.store.clear_unmatched(article_id)
            if outcome.related and self.policy.due(self.pending):
                outcome.changes = self.flush()  # a decision past its deadline is handled there, not raised
                outcome.cluster_id = self.store.cluster_of([article_id])[article_id]
            return outcome
        except PageTimeout:  # from matching: nothing of its relations was written (edges come last)
            self.store.mark_unmatched(article_id)
            raise
        except BaseException:
            if created:  # the caller's transaction may undo the insert: keep no trace of the article here
                self.forget(article_id, sig)
            raise

    @property
    def pending(self) -> int:
        """How many related articles this deduplicator added wait for their clusters to be decided."""
        return len(self._dirty)

    def forget(self, article_id: int, sig: Signature | None = None) -> None:
        """Drop an article that was not committed (its unit rolled back) from the cache and the index: the
        entries the store's index holds in memory, or with ``sig`` the buckets of a shared index (which keeps
        no list of an article's buckets: Redis)."""
        self._articles.pop(article_id, None)
        self._dirty.discard(article_id)
        if isinstance(self._index, StoreLSHIndex):
            self._index.remove(article_id)
        elif self._index is not None and sig is not None:
            self._index.remove(article_id, sig)  # type: ignore[attr-defined]
        rolled_back = getattr(self._index, "rolled_back", None)
        if rolled_back is not None:  # the unit may have taken other articles' index writes with it
            rolled_back()

    def _drop(self, article_id: int) -> None:
        """An article changed or went: nothing this deduplicator remembers of it may be used again."""
        self._articles.pop(article_id, None)
        self._judged.drop(article_id)
        self._verdicts.drop(article_id)

    def _unindex(self, article_id: int, sig: Signature | None) -> None:
        """Take an article out of its index buckets: the index in use (the shared one in Redis, for a worker) and
        the store's own table (an embedded run's index; nothing to do when it holds nothing of the article)."""
        if sig is None:
            return
        if isinstance(self._index, StoreLSHIndex):
            self._index.remove(article_id, sig)  # its entries in memory and in the table
            return
        if self._index is not None:
            self._index.remove(article_id, sig)  # type: ignore[attr-defined]
        self.store.remove_bands(article_id, band_keys(sig, self.settings.num_perm))

    def update(self, article_id: int, article: Article, *, reason: str = "update",
               previous: PageVersion | None = None) -> DedupOutcome:
        """Replace a stored article by a new version of it (an updated page, or a re-extraction).

        The old version is kept (``Store.replace_article``), the new one re-fingerprinted; its entries in the
        index are replaced, its relations verified again from its new candidates, and the clusters it was and is
        now related to are re-decided at once: it may leave its cluster, join another, or become or stop being
        canonical. ``article_updated`` is logged first, then the events of its consequences.

        Matching past ``dedup_deadline`` keeps the new version, unmatched (as ``add`` does), re-decides what it was
        related to (it has no relation left), and raises ``PageTimeout``."""
        deadline = self._matching_deadline(article.url)
        self.refresh()
        tokens = tokenize(article.text)
        sig = fingerprint_tokens(tokens, self.settings.num_perm)
        old_sig = self.store.signatures_of([article_id]).get(article_id)
        cut: PageTimeout | None = None
        # under the lock: content-log entries are written one at a time, so ``refresh`` never steps over one
        with self._lock(), self.store.unit():
            cluster_id, neighbours = self.store.replace_article(article_id, article, sig, reason=reason,
                                                                previous=previous)
            self._drop(article_id)
            self._unindex(article_id, old_sig)
            try:
                outcome = self._relate(article_id, cluster_id, article, tokens, sig, deadline)
                self.store.clear_unmatched(article_id)
            except PageTimeout as err:
                self.store.mark_unmatched(article_id)
                outcome, cut = DedupOutcome(article_id, cluster_id), err
        outcome.changes = self.redecide({article_id} | neighbours)[1]
        outcome.cluster_id = self.store.cluster_of([article_id])[article_id]
        if cut is not None:
            raise cut
        return outcome

    def remove(self, url: str, *, reason: str | None, who: str) -> tuple[int | None, list[dict[str, Any]]]:
        """Take a stored page down (``Store.remove_article``: a tombstone, ``article_removed``) and re-decide what it
        was related to. Returns (the article id removed or None when no page is stored for ``url``, changes)."""
        found = self.store.article_by_url(url)
        sig = self.store.signatures_of([found[0]]).get(found[0]) if found else None
        keys = band_keys(sig, self.settings.num_perm) if sig is not None else None
        with self._lock(), self.store.unit():
            article_id, _cluster, related, _undone = self.store.remove_article(url, reason=reason, who=who,
                                                                               band_keys=keys)
            if article_id is None:
                return None, []
            self._drop(article_id)
            self._dirty.discard(article_id)
            changes = self._recluster(related)[0] if related else []
        if isinstance(self._index, StoreLSHIndex):
            self._index.remove(article_id)  # the entries it still held in memory (the table's went above)
        elif self._index is not None and sig is not None:
            self._index.remove(article_id, sig)  # type: ignore[attr-defined]
        return article_id, changes

    def redecide(self, seeds: set[int], write: Callable[[], T] | None = None) -> tuple[T | None, list[dict[str, Any]]]:
        """Re-decide the components of ``seeds`` together, now, under the lock and in one transaction; ``write``
        (a review, an undo) runs first in the same transaction. Returns (what ``write`` returned, changes)."""
        with self._lock(), self.store.unit():
            done = write() if write is not None else None
            return done, (self._recluster(set(seeds))[0] if seeds else [])

    def redecide_each(self, ids: Iterable[int], done: set[int]) -> list[dict[str, Any]]:
        """Re-decide the component of every article of ``ids`` not in ``done`` (the articles already decided in
        this pass), one component per lock; ``done`` grows by what was decided. An article with no relation and no
        review, alone in its cluster, is left as it is: like a new article without a near-duplicate it is its own
        canonical and was never decided (deciding it now would change its evidence, not what it is)."""
        changes: list[dict[str, Any]] = []
        for article_id in sorted(ids):
            if article_id in done:
                continue
            try:
                with self._lock(), self.store.unit():
                    if self.store.isolated(article_id):
                        more, component = [], {article_id}
                    else:
                        more, component = self._recluster(article_id, self._decision_deadline())
            except PageTimeout:
                more, component = [], self._undecided(article_id)
            changes.extend(more)
            done |= component | {article_id}
        return changes

    def _matching_deadline(self, url: str) -> Deadline:
        return Deadline(self.settings.dedup_deadline, url, "the article is kept unmatched for reprocess")

    def _decision_deadline(self) -> Deadline:
        return Deadline(self.settings.dedup_deadline)

    def _undecided(self, article_id: int) -> set[int]:
        """A component whose decision ran past ``dedup_deadline`` keeps its previous decision (its unit rolled
        back); the error is recorded against the article that asked for it. Returns the component."""
        component = self.store.component_edges(article_id)[0] | {article_id}
        url = self.store.article_urls([article_id]).get(article_id)
        self.store.record_error(stage="dedup", kind="PageTimeout", url=url, message=(
            f"deciding a cluster of {len(component)} related articles ran past its {self.settings.dedup_deadline:g} s "
            "deadline (dedup_deadline); it keeps its previous decision, and reprocess decides it again"))
        return component

    def _relate(self, article_id: int, cluster_id: int, article: Article, tokens: Sequence[str],
                sig: Signature, deadline: Deadline) -> DedupOutcome:
        outcome = DedupOutcome(article_id, cluster_id)
        # When the article was already stored (a redelivered task, a worker killed half-way), matching
        # runs again: every step from here is idempotent, so it completes what was cut short and
        # changes nothing that was already done.
        self._remember(article_id, article, tokens)
        if sig.n_tokens < self.settings.min_tokens:
            return outcome
        found = self._match(article_id, sig)
        mine = sig.values.get("w3")
        if found and mine is not None:
            candidates = screen(sig, *self.store.signature_values(found, "w3", len(mine)))
        else:
            candidates = sorted(found)[:VERIFY_MAX]
        outcome.candidates = len(candidates)
        if not candidates:
            return outcome
        self.refresh()  # only cached articles can be stale, and only candidates are read from the cache
        others = self.articles(set(candidates))
        edges: dict[tuple[int, int], PairVerdict] = {}
        for n, (other_id, (other, other_tokens)) in enumerate(others.items()):
            deadline.check(f"verifying {n} of {len(others)} candidates")
            language = min(filter(None, [article.language, other.language]), default=None)
            if other_id < article_id:
                verdict = verify_articles(other.url, other_tokens, article.url, tokens, language)
                key = (other_id, article_id)
            else:
                verdict = verify_articles(article.url, tokens, other.url, other_tokens, language)
                key = (article_id, other_id)
            if verdict.related:
                edges[key] = verdict
        outcome.related = len(edges)
        if not edges:
            return outcome
        self.store.add_edges(edges, pending=article_id)
        self._dirty.add(article_id)
        return outcome

    def _match(self, article_id: int, sig: Signature) -> set[int]:
        """Candidate near-duplicates from the index (which also takes this article in)."""
        return self.index.query_insert(article_id, sig) - {article_id}

    def flush(self) -> list[dict[str, Any]]:
        """Decide every pending article's cluster (each related component once), whoever added it: the
        pending set is the store's, so a worker's flush also decides what other workers left waiting."""
        changes: list[dict[str, Any]] = []
        done: set[int] = set()
        # In-process (no shared lock), one transaction decides the whole batch; with a shared lock each
        # component commits before its lock is released, so other workers see what it decided.
        with self.store.unit() if self._lock is nullcontext else nullcontext():
            waiting = self.store.pending() | self._dirty
            for article_id in sorted(waiting):
                if article_id in done:
                    continue
                try:  # one unit per component: a decision cut short by its deadline leaves nothing half-written
                    with self._lock(), self.store.unit():
                        more, component = self._recluster(article_id, self._decision_deadline())
                except PageTimeout:
                    more, component = [], self._undecided(article_id)
                changes.extend(more)
                done |= component
            self.store.clear_pending(waiting)
        self._dirty.clear()
        self.policy.decided()
        return changes

    def recluster(self, article_id: int) -> list[dict[str, Any]]:
        """Re-partition the related component of an article and re-decide each of its clusters."""
        return self._recluster({article_id})[0]

    def _recluster(self, seeds: int | set[int], deadline: Deadline | None = None
                   ) -> tuple[list[dict[str, Any]], set[int]]:
        """Partition the components of ``seeds`` (one article, or several decided together) and decide each group,
        with the reviews in force applied around partition and decide (``reviews.ReviewSet``). ``deadline`` is
        checked between comparisons (none: an operator's action, never cut short)."""
        deadline = deadline or Deadline.never()
        self.refresh()
        has_reviews = self.store.has_active_reviews()
        component, edges = self.store.component_edges(seeds, links=has_reviews)
        reviews = ReviewSet(self.store.active_reviews(component)) if has_reviews else EMPTY
        used = reviews.constrain_edges(edges)
        if len(component) <= SMALL_CLUSTER:
            loaded = self.articles(component)
            component = set(loaded)  # an article taken down since is no member of anything
            sizes = {i: len(t) for i, (_a, t) in loaded.items()}
            groups = partition(sizes, {i: a.url for i, (a, _t) in loaded.items()}, used,
                               self._exact_compatibility(component, deadline))
        else:  # a big story: compatibility from the stored signatures, no text read for it
            sigs = self.store.signatures_of(component)
            component = set(sigs)
            sizes = {i: sigs[i].n_tokens for i in component}
            groups = partition(sizes, self.store.article_urls(component), used,
                               self._estimated_compatibility(sigs, deadline))
        groups = reviews.constrain_groups(groups)
        changes: list[dict[str, Any]] = []
        cluster_ids = self.store.assign_clusters(groups, moves=changes)
        for group, cluster_id in zip(groups, cluster_ids, strict=True):
            deadline.check(f"deciding a group of {len(group)}")
            group_edges = {k: v for k, v in used.items() if k[0] in group and k[1] in group}
            loaded = self.articles(group)
            articles = {i: loaded[i][0] for i in group}
            if len(group) <= SMALL_CLUSTER:
                decision = decide(articles, group_edges, {i: loaded[i][1] for i in group})
            else:
                decision = decide_large(articles, {i: sizes[i] for i in group},
                                        lambda i, loaded=loaded: loaded[i][1],
                                        lambda a, b, e=group_edges, loaded=loaded: self._verdict(a, b, e, loaded,
                                                                                                 deadline),
                                        self._judged)
            if reviews:
                decision = reviews.overrule(decision, articles, {i: len(loaded[i][1]) for i in group},
                                            lambda a, b, e=group_edges, loaded=loaded: self._verdict(a, b, e, loaded))
            changes.extend(self.store.apply_decision(cluster_id, decision, touch=bool(reviews.named() & group)))
        return changes, component

    def _exact_compatibility(self, component: set[int], deadline: Deadline) -> Callable[[int, int], bool]:
        """May two articles of a small component share a group: their word 3-grams, exactly."""
        grams: dict[int, AbstractSet[str]] = {}

        def compatible(a: int, b: int) -> bool:
            deadline.check("partitioning")
            loaded = self.articles({a, b})
            for i in (a, b):
                if i not in grams:
                    grams[i] = trigram_set(loaded[i][1])
            shared = len(grams[a] & grams[b])
            union = len(grams[a]) + len(grams[b]) - shared
            if union and shared / union >= MIN_JACCARD3:
                return True
            smaller = min(len(grams[a]), len(grams[b]))
            if smaller and shared / smaller >= EXCERPT_CONTAINED:
                return True
            # below the 3-gram floor only when spinning broke the 3-grams of a text that is still there
            return spun_part(loaded[a][1], loaded[b][1])

        return compatible

    def _estimated_compatibility(self, sigs: dict[int, Signature], deadline: Deadline) -> Callable[[int, int], bool]:
        """The same test for a big component, from the MinHash estimate of the 3-gram Jaccard (and of the
        containment it implies); only a pair the estimate rejects has its texts aligned (``spun_part``)."""

        def compatible(a: int, b: int) -> bool:
            deadline.check("partitioning")
            jaccard = estimate_jaccard(sigs[a].values["w3"], sigs[b].values["w3"])
            if jaccard >= MIN_JACCARD3:
                return True
            na, nb = max(1, sigs[a].n_tokens - 2), max(1, sigs[b].n_tokens - 2)
            if jaccard * (na + nb) / (1 + jaccard) / min(na, nb) >= EXCERPT_CONTAINED:
                return True
            loaded = self.articles({a, b})
            return spun_part(loaded[a][1], loaded[b][1])

        return compatible

    def _verdict(self, a: int, b: int, edges: dict[tuple[int, int], PairVerdict],
                 loaded: dict[int, tuple[Article, Sequence[str]]],
                 deadline: Deadline | None = None) -> PairVerdict:
        """The relation of two members (a < b): stored, or aligned once and kept."""
        stored = edges.get((a, b))
        if stored is not None:
            return stored
        found = self._verdicts.get((a, b))
        if found is None:
            if deadline is not None:
                deadline.check("comparing members")
            (x, xt), (y, yt) = loaded[a], loaded[b]
            language = min(filter(None, [x.language, y.language]), default=None)
            found = verify_articles(x.url, xt, y.url, yt, language)
            self._verdicts[(a, b)] = found
        return found
