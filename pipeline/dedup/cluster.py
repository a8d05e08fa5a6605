"""Cluster stage: turn verified pair relations into clusters, independent of arrival order.

Connected components alone would let one short text chain two different articles that both quote
it (A ⊇ B ⊆ C). So whole-version relations (same / spun) form *cores*, and a core that is only a part
of bigger ones (an excerpt) attaches to exactly one bigger root core: the one it matches best.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pipeline.records import PairVerdict


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
    whole = [(a, b, v) for (a, b), v in edges.items() if v.relation != "subset"]
    # strongest relations first, ties by URL: the same edges always build the same cores
    for a, b, _v in sorted(whole, key=lambda e: (-e[2].similarity, min(keys[e[0]], keys[e[1]]),
                                                  max(keys[e[0]], keys[e[1]]))):
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            continue
        if compatible is not None and not all(compatible(x, y) for x in cores[ra] for y in cores[rb]):
            continue
        uf.union(ra, rb)
        keep = uf.find(ra)
        cores[keep] = cores.pop(ra) | cores.pop(rb)

    def core_size(root: int) -> int:
        return max(sizes[i] for i in cores[root])

    def core_key(root: int) -> str:
        return min(keys[i] for i in cores[root])

    def rank(root: int) -> tuple[int, str]:
        return (-core_size(root), core_key(root))

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
    for r in order:
        parents = sorted(
            ((score, core_key(p), p) for p, score in links.get(r, {}).items() if root_of.get(p) == p),
            key=lambda t: (-t[0], t[1]),
        )
        root_of[r] = r
        for _score, _key, parent in parents:
            if compatible is None or all(compatible(a, b) for a in cores[r] for b in groups[parent]):
                root_of[r] = parent
                break
        groups.setdefault(root_of[r], set()).update(cores[r])
    return sorted(groups.values(), key=lambda g: min(keys[i] for i in g))
