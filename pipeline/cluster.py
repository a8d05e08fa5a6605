"""Cluster stage: turn verified pair relations into clusters, independent of arrival order.

Connected components alone would let one short text chain two different articles that both quote
it (A ⊇ B ⊆ C). So whole-version relations (same / spun) form *cores*, and a core that is only a part
of bigger ones (an excerpt) attaches to exactly one bigger root core: the one it matches best.
"""

from __future__ import annotations

from collections.abc import Mapping

from .records import PairVerdict


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
    sizes: Mapping[int, int], keys: Mapping[int, str], edges: Mapping[tuple[int, int], PairVerdict]
) -> list[set[int]]:
    """Group articles (id → token count; key → stable tie-break, e.g. the URL) into clusters."""
    uf = _UnionFind(sizes)
    for (a, b), v in edges.items():
        if v.relation != "subset":
            uf.union(a, b)
    cores: dict[int, set[int]] = {}
    for i in sizes:
        cores.setdefault(uf.find(i), set()).add(i)

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
    for r in order:
        parents = [(score, core_key(p), p) for p, score in links.get(r, {}).items() if root_of.get(p) == p]
        if parents:
            best = sorted(parents, key=lambda t: (-t[0], t[1]))[0][2]
            root_of[r] = best
        else:
            root_of[r] = r
    groups: dict[int, set[int]] = {}
    for r, members in cores.items():
        groups.setdefault(root_of[r], set()).update(members)
    return sorted(groups.values(), key=lambda g: min(keys[i] for i in g))
