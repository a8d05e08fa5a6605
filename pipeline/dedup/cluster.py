"""Cluster stage: turn verified pair relations into clusters, independent of arrival order.

Connected components alone would let one short text chain two different articles that both quote
it (A ⊇ B ⊆ C). So whole-version relations (same / spun) form *cores*, and a core that is only a part
of bigger ones (an excerpt) attaches to exactly one bigger root core: the one it matches best.

A join is vetoed unless the joining articles are compatible with the group's. A group is represented in
that check by its ``SAMPLE`` largest members (ties by key): every member of a small group, and for a story
on 2,000 sites its longest versions, so the check costs the same whatever the group's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from pipeline.records import PairVerdict

#: Members of a group that stand for it when a join is checked for compatibility.
SAMPLE = 8


class _UnionFind:
    def __init__(self, items) -> None:
        self.parent = {i: i for i in items}

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def partition(
    sizes: Mapping[int, int],
    keys: Mapping[int, str],
    edges: Mapping[tuple[int, int], PairVerdict],
    compatible: Callable[[int, int], bool] | None = None,
) -> list[set[int]]:
    """Group articles (id → token count; key → stable tie-break, e.g. the URL) into clusters.

    ``compatible(a, b)`` can veto an attachment: a part joins a group only if it is compatible with
    every article already in it (so a short quote never sits with versions it barely overlaps).
    """
    uf = _UnionFind(sizes)
    cores: dict[int, set[int]] = {i: {i} for i in sizes}

    def sample(members: Iterable[int]) -> list[int]:
        return sorted(members, key=lambda i: (-sizes[i], keys[i]))[:SAMPLE]

    samples: dict[int, list[int]] = {i: [i] for i in sizes}
    whole = [(a, b, v) for (a, b), v in edges.items() if v.relation != "subset"]
    # strongest relations first, ties by URL: the same edges always build the same cores
    for a, b, _v in sorted(whole, key=lambda e: (-e[2].similarity, min(keys[e[0]], keys[e[1]]),
                                                  max(keys[e[0]], keys[e[1]]))):
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            continue
        if compatible is not None and not all(compatible(x, y) for x in samples[ra] for y in samples[rb]):
            continue
        uf.union(ra, rb)
        keep = uf.find(ra)
        one, other = cores.pop(ra), cores.pop(rb)
        if len(one) < len(other):
            one, other = other, one
        one |= other  # the bigger set grows in place: merging a story copy by copy stays linear
        cores[keep] = one
        samples[keep] = sample(samples.pop(ra) + samples.pop(rb))

    size_of = {root: max(sizes[i] for i in members) for root, members in cores.items()}
    key_of = {root: min(keys[i] for i in members) for root, members in cores.items()}

    def core_key(root: int) -> str:
        return key_of[root]

    def rank(root: int) -> tuple[int, str]:
        return (-size_of[root], key_of[root])

    # best attachment of each core to a bigger core, through subset relations
    links: dict[int, dict[int, float]] = {}
    for (a, b), v in edges.items():
        if v.relation != "subset":
            continue
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            continue
        big, small = sorted((ra, rb), key=rank)
        score = v.similarity
        links.setdefault(small, {})
        links[small][big] = max(links[small].get(big, 0.0), score)
    order = sorted(cores, key=rank)
    root_of: dict[int, int] = {}
    groups: dict[int, set[int]] = {}
    group_samples: dict[int, list[int]] = {}
    for r in order:
        parents = sorted(
            ((score, core_key(p), p) for p, score in links.get(r, {}).items() if root_of.get(p) == p),
            key=lambda t: (-t[0], t[1]),
        )
        root_of[r] = r
        for _score, _key, parent in parents:
            if compatible is None or all(compatible(a, b) for a in samples[r] for b in group_samples[parent]):
                root_of[r] = parent
                break
        groups.setdefault(root_of[r], set()).update(cores[r])
        group_samples[root_of[r]] = sample(group_samples.get(root_of[r], []) + samples[r])
    return sorted(groups.values(), key=lambda g: min(keys[i] for i in g))
