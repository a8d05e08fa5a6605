"""Deciding a large cluster at a cost that grows with its size, not with its square.

``canonical.decide`` weighs every member against every other (pairwise relations, a consensus of all whole
versions, losses against the most original members). That is right for the few versions of an ordinary
story, and quadratic for a wire story carried by 2,000 sites. So a cluster of more than ``SMALL_CLUSTER``
members is decided in two steps:

1. **The panel**: the ``PANEL`` members that stand first (``canonical.standing``: credit, a self-declared
   canonical, completeness, the earliest date, length) are decided in full, with ``decide``, as a cluster of
   their own: that elects the canonical and flags the panel.
2. **Everyone else** is judged against the canonical alone, as a cluster of two (``decide`` again), which
   flags a spun copy (its swapped words are the rarer ones) or a scraped one (link texts, spans or a byline
   lost against the canonical) and gives its similarity to the canonical.

Both steps depend only on the members, never on the order they arrived in. A member's judgment is kept
(``memo``) until the canonical changes, so a cluster that grows by a batch judges only the batch, and is
judged anew only when a better version arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from itertools import combinations

from pipeline.dedup.canonical import decide, standing
from pipeline.records import Article, ClusterDecision, MemberDecision, PairVerdict

#: Clusters up to this many members are decided in full (``canonical.decide``).
SMALL_CLUSTER = 24
#: Members decided in full in a large cluster.
PANEL = 8


def decide_large(
    articles: Mapping[int, Article],
    sizes: Mapping[int, int],
    tokens: Callable[[int], Sequence[str]],
    verdict: Callable[[int, int], PairVerdict],
    memo: MutableMapping[tuple[int, int], MemberDecision] | None = None,
) -> ClusterDecision:
    """Decide a large cluster: ``sizes`` are token counts, ``tokens(i)`` a member's tokens and ``verdict(a, b)``
    the relation of two members (a < b; stored or computed), ``memo`` (member, canonical) → judgment."""
    memo = {} if memo is None else memo
    order = standing(articles, sizes)
    panel = order[:PANEL]
    panel_tokens = {i: tokens(i) for i in panel}
    panel_edges: dict[tuple[int, int], PairVerdict] = {}
    for a, b in combinations(sorted(panel), 2):
        v = verdict(a, b)
        if v.related:
            panel_edges[(a, b)] = v
    head = decide({i: articles[i] for i in panel}, panel_edges, panel_tokens)
    canonical = head.canonical_id
    decided = {m.article_id: m for m in head.members}
    for x in order[PANEL:]:
        judged = memo.get((x, canonical))
        if judged is None:
            judged = _against(x, canonical, articles, panel_tokens[canonical], tokens(x), verdict)
            memo[(x, canonical)] = judged
        decided[x] = judged
    ids = sorted(articles, key=lambda i: articles[i].url)
    return ClusterDecision(canonical, tuple(decided[i] for i in ids), head.reason)


def _against(x: int, canonical: int, articles: Mapping[int, Article], canonical_tokens: Sequence[str],
             x_tokens: Sequence[str], verdict: Callable[[int, int], PairVerdict]) -> MemberDecision:
    """x judged as a cluster of two with the canonical: its flags, similarity and evidence."""
    a, b = sorted((x, canonical))
    v = verdict(a, b)
    pair = decide({x: articles[x], canonical: articles[canonical]}, {(a, b): v} if v.related else {},
                  {x: x_tokens, canonical: canonical_tokens})
    mine = next(m for m in pair.members if m.article_id == x)
    evidence = dict(mine.evidence)
    evidence.pop("canonical", None)
    if "relation" not in evidence:
        evidence["relation"] = {"to_canonical": v.relation, "similarity": v.similarity,
                                "jaccard3": v.evidence.get("jaccard3")}
    evidence["judged_against"] = articles[canonical].url
    similarity = mine.similarity if not mine.canonical else v.similarity
    return MemberDecision(x, False, mine.flags, similarity, evidence)
