"""Operator reviews as constraints on a cluster decision: an operator's word outranks the algorithm until undone.

The deduplicator decides a related component in three steps (``partition``, then ``canonical.decide`` or
``panel.decide_large`` per group); a ``ReviewSet`` wraps each of them and never changes them:

- **before partition** (``constrain_edges``): a *separated* page's relations are dropped, so it stands alone and
  nothing joins a group through it;
- **after partition** (``constrain_groups``): a *merge* is a forced relation: the groups holding its two pages
  become one, whatever the compatibility checks said;
- **after the decision** (``overrule``): a *flag* review sets or clears a flag; a *canonical* review makes its page
  the canonical of the group it is in. When a flag review takes the flag off a page that stands before the
  canonical (``canonical.standing``), or puts one on the canonical, the canonical is elected again among the
  unflagged members in standing order. Whenever the canonical changes, every member's similarity and relation
  are taken against the new one (``relation(a, b)``: the stored verdict or one aligned for it).

Conflicts are settled by review id: a later review wins over an earlier one (a merge made after a page was
separated joins it again; one made before does not; of two canonical reviews in one group the later stands).
So a decision is a pure function of (pages, relations, reviews in force): the order pages arrived in and the
order the reviews were read in change nothing. Every member a review touched carries it in its evidence
(``evidence["reviews"]``, and ``decided_by: "review"`` on the canonical or flag it forced).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pipeline.records import Article, ClusterDecision, MemberDecision, PairVerdict, Review
from pipeline.store.schema import FLAG_NAMES

#: What a review can say.
KINDS = ("canonical", "separate", "merge", "flag")
#: Characters of a review's note (the API's and the web UI's bound too).
NOTE_MAX = 2000
#: Flags a review can set or clear, in the order a decision lists them.
FLAG_ORDER = FLAG_NAMES


class ReviewSet:
    """The reviews in force over one component, indexed for the three constraints (see the module docstring)."""

    def __init__(self, reviews: Iterable[Review] = ()) -> None:
        self.reviews = sorted(reviews, key=lambda r: r.id)
        self.separated: dict[int, Review] = {}
        self.canonical: dict[int, Review] = {}
        self.flags: dict[tuple[int, str], Review] = {}
        merges: list[Review] = []
        for r in self.reviews:  # in id order: a later review replaces an earlier one of the same kind and page
            if r.kind == "separate":
                self.separated[r.a] = r
            elif r.kind == "canonical":
                self.canonical[r.a] = r
            elif r.kind == "flag" and r.flag is not None:
                self.flags[(r.a, r.flag)] = r
            elif r.kind == "merge" and r.b is not None:
                merges.append(r)
        # a merge holds unless one of its pages was separated after it
        self.links = [r for r in merges if all(self.separated.get(x, r).id <= r.id for x in (r.a, r.b))]

    def __bool__(self) -> bool:
        return bool(self.reviews)

    def named(self) -> set[int]:
        """Every article a review in force names."""
        return {x for r in self.reviews for x in (r.a, r.b) if x is not None}

    # --- around partition ----------------------------------------------------------------------------------------
    def constrain_edges(self, edges: Mapping[tuple[int, int], PairVerdict]) -> dict[tuple[int, int], PairVerdict]:
        """The relations partition may use: none that touches a separated page."""
        if not self.separated:
            return dict(edges)
        return {k: v for k, v in edges.items() if k[0] not in self.separated and k[1] not in self.separated}

    def constrain_groups(self, groups: list[set[int]]) -> list[set[int]]:
        """The groups with every merge applied: the groups holding a merge's two pages become one. The result keeps
        the order of the groups it came from (a merged group stands where its first part stood)."""
        if not self.links:
            return groups
        where = {i: k for k, g in enumerate(groups) for i in g}
        parent = list(range(len(groups)))

        def find(k: int) -> int:
            while parent[k] != k:
                parent[k] = parent[parent[k]]
                k = parent[k]
            return k

        for r in self.links:
            if r.a in where and r.b in where:
                x, y = find(where[r.a]), find(where[r.b])
                if x != y:
                    parent[max(x, y)] = min(x, y)
        merged: dict[int, set[int]] = {}
        for k, g in enumerate(groups):
            merged.setdefault(find(k), set()).update(g)
        return [merged[k] for k in sorted(merged)]

    # --- after the decision --------------------------------------------------------------------------------------
    def overrule(self, decision: ClusterDecision, articles: Mapping[int, Article], sizes: Mapping[int, int],
                 relation: Callable[[int, int], PairVerdict]) -> ClusterDecision:
        """``decision`` (of the group ``articles``; ``sizes`` are token counts) with the group's reviews applied.

        ``relation(a, b)`` (a < b) gives the verdict of two members, for the similarities to a new canonical."""
        group = set(articles)
        if not any(r.a in group or r.b in group for r in self.reviews):
            return decision
        members = {m.article_id: m for m in decision.members}
        flags = {i: list(m.flags) for i, m in members.items()}
        evidence = {i: dict(m.evidence) for i, m in members.items()}
        notes: dict[int, list[dict[str, Any]]] = {}

        def note(i: int, r: Review) -> None:
            notes.setdefault(i, []).append(r.brief())

        gained, lost = self._flags(group, flags, evidence, note)
        for i, r in self.separated.items():
            if i in group:
                note(i, r)
        for r in self.links:
            if r.a in group and r.b in group:
                note(r.a, r)
                note(r.b, r)

        canonical, reason = decision.canonical_id, decision.reason
        forced = [r for i, r in self.canonical.items() if i in group]
        by: Review | None = None
        if forced:
            by = max(forced, key=lambda r: r.id)
            canonical = by.a
            reason = f"made canonical by review #{by.id} ({by.who})"
            note(canonical, by)
        elif gained or lost:
            from pipeline.dedup.canonical import standing  # here: this module is read by the API, which never decides

            order = standing(articles, sizes)
            rank = {i: k for k, i in enumerate(order)}
            eligible = [i for i in order if not flags[i]]
            promoted = any(i in lost and not flags[i] and rank[i] < rank[canonical] for i in group)
            if eligible and (canonical in gained or promoted) and eligible[0] != canonical:
                canonical = eligible[0]
                reason = "elected after review " + ", ".join(
                    f"#{r['review']}" for i in sorted(gained | lost) for r in notes.get(i, ()) if r["kind"] == "flag")

        out = []
        for m in decision.members:
            i = m.article_id
            ev, similarity = evidence[i], m.similarity
            if canonical != decision.canonical_id:
                if i == canonical:
                    ev.pop("relation", None)
                    similarity = 1.0
                elif i == decision.canonical_id or m.canonical:
                    ev.pop("canonical", None)
                if i != canonical:
                    a, b = sorted((i, canonical))
                    v = relation(a, b)
                    similarity = v.similarity
                    ev["relation"] = {"to_canonical": v.relation, "similarity": v.similarity,
                                      "jaccard3": v.evidence.get("jaccard3")}
            if i == canonical and (by is not None or canonical != decision.canonical_id):
                ev["canonical"] = {"reason": reason, "decided_by": "review",
                                   "algorithm": {"canonical": articles[decision.canonical_id].url,
                                                 "reason": decision.reason}}
                if by is not None:
                    ev["canonical"]["review"] = by.id
            if i in notes:
                ev["reviews"] = notes[i]
            ordered = tuple(f for f in FLAG_ORDER if f in flags[i]) + tuple(
                f for f in flags[i] if f not in FLAG_ORDER)
            out.append(MemberDecision(i, i == canonical, ordered, similarity, ev))
        return ClusterDecision(canonical, tuple(out), reason)

    def _flags(self, group: set[int], flags: dict[int, list[str]], evidence: dict[int, dict[str, Any]],
               note: Callable[[int, Review], None]) -> tuple[set[int], set[int]]:
        """Apply the group's flag reviews in place; returns (members that gained a flag, members that lost one)."""
        gained: set[int] = set()
        lost: set[int] = set()
        for (i, flag), r in sorted(self.flags.items(), key=lambda kv: kv[1].id):
            if i not in group:
                continue
            note(i, r)
            if r.on:
                if flag not in flags[i]:
                    flags[i].append(flag)
                    gained.add(i)
                evidence[i][flag] = {**(evidence[i].get(flag) or {}), "decided_by": "review", "review": r.id}
            elif flag in flags[i]:
                flags[i].remove(flag)
                evidence[i].pop(flag, None)
                lost.add(i)
        return gained, lost


EMPTY = ReviewSet()

__all__ = ["EMPTY", "FLAG_ORDER", "KINDS", "NOTE_MAX", "ReviewSet"]
