"""Operator reviews as constraints on decisions (``pipeline.dedup.reviews``): each constraint on its own, the
conflict rule (a later review wins), and, through real ingests, that the result depends on the pages and the
reviews in force, never on the order the pages arrived in or the reviews were read in."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pipeline.dedup.canonical import decide
from pipeline.dedup.reviews import EMPTY, ReviewSet
from pipeline.ingest import reviews
from pipeline.ingest.runner import run_ingest
from pipeline.records import Article, PairVerdict, Review
from pipeline.serve.export import export_jsonl
from pipeline.settings import Settings
from pipeline.store import Store
from pipeline.text import tokenize
from tests.support.world import write_pages

SAME = PairVerdict("same", 0.95, 1.0, 1.0, 0.0, {"jaccard3": 0.9})


def _article(url: str, words: int, *, published: str = "2025-01-01") -> Article:
    text = " ".join(f"word{i}" for i in range(words))
    return Article(url=url, title="t", text=text, paragraphs=(text,), published=published)


def test_a_separated_page_loses_its_relations_and_a_merge_joins_two_groups() -> None:
    edges = {(1, 2): SAME, (2, 3): SAME, (4, 5): SAME}
    rs = ReviewSet([Review(1, "separate", 2)])
    assert rs.constrain_edges(edges) == {(4, 5): SAME}
    merged = ReviewSet([Review(1, "merge", 3, 5)]).constrain_groups([{1, 2}, {3}, {4, 5}, {6}])
    assert merged == [{1, 2}, {3, 4, 5}, {6}]
    assert EMPTY.constrain_groups([{1}, {2}]) == [{1}, {2}] and EMPTY.constrain_edges(edges) == edges


def test_a_later_review_wins() -> None:
    separated_then_merged = ReviewSet([Review(1, "separate", 2), Review(2, "merge", 2, 9)])
    assert [r.id for r in separated_then_merged.links] == [2], "a merge made after the separation holds"
    merged_then_separated = ReviewSet([Review(1, "merge", 2, 9), Review(2, "separate", 2)])
    assert merged_then_separated.links == [], "a separation made after the merge undoes it"
    shuffled = [Review(3, "flag", 1, flag="spun", on=True), Review(5, "flag", 1, flag="spun", on=False),
                Review(4, "canonical", 2), Review(6, "canonical", 1)]
    for order in (shuffled, shuffled[::-1]):
        rs = ReviewSet(order)
        assert rs.flags[(1, "spun")].id == 5 and rs.canonical[1].id == 6


def _group() -> tuple[dict[int, Article], dict[tuple[int, int], PairVerdict]]:
    articles = {1: _article("https://a.example/1", 200, published="2025-01-01"),
                2: _article("https://b.example/2", 200, published="2025-01-02"),
                3: _article("https://c.example/3", 200, published="2025-01-03")}
    return articles, {(1, 2): SAME, (1, 3): SAME, (2, 3): SAME}


def _relation(edges: dict[tuple[int, int], PairVerdict]):  # noqa: ANN202
    return lambda a, b: edges[(a, b)]


def test_a_canonical_review_forces_the_canonical_and_says_so() -> None:
    articles, edges = _group()
    tokens = {i: tokenize(a.text) for i, a in articles.items()}
    decision = decide(articles, edges, tokens)
    assert decision.canonical_id == 1  # the earliest of equal versions
    out = ReviewSet([Review(7, "canonical", 3, who="ed", note="the wire's own copy")]).overrule(
        decision, articles, {i: len(t) for i, t in tokens.items()}, _relation(edges))
    members = {m.article_id: m for m in out.members}
    assert out.canonical_id == 3 and members[3].canonical and not members[1].canonical
    assert members[3].similarity == 1.0 and members[1].similarity == SAME.similarity
    assert members[3].evidence["canonical"]["decided_by"] == "review"
    assert members[3].evidence["canonical"]["review"] == 7
    assert members[3].evidence["canonical"]["algorithm"]["canonical"] == "https://a.example/1"
    assert members[3].evidence["reviews"][0]["note"] == "the wire's own copy"
    assert "canonical" not in members[1].evidence and members[1].evidence["relation"]["to_canonical"] == "same"
    assert out.reason.startswith("made canonical by review #7")


def test_flag_reviews_set_and_clear_flags_and_re_elect_the_canonical() -> None:
    articles, edges = _group()
    tokens = {i: tokenize(a.text) for i, a in articles.items()}
    sizes = {i: len(t) for i, t in tokens.items()}
    decision = decide(articles, edges, tokens)
    flagged = ReviewSet([Review(1, "flag", 1, flag="scraped", on=True, who="ed")]).overrule(
        decision, articles, sizes, _relation(edges))
    members = {m.article_id: m for m in flagged.members}
    assert members[1].flags == ("scraped",) and members[1].evidence["scraped"]["decided_by"] == "review"
    assert flagged.canonical_id == 2, "the canonical flagged by a review: the next in standing is elected"
    # a flag taken off a member that stands first makes it the canonical again
    both = ReviewSet([Review(1, "flag", 1, flag="scraped", on=True), Review(2, "flag", 1, flag="scraped", on=False)])
    again = both.overrule(decision, articles, sizes, _relation(edges))
    assert again.canonical_id == 1 and {m.article_id: m for m in again.members}[1].flags == ()
    # a flag off on a member that does not carry it, on a member that is not the canonical: nothing moves
    quiet = ReviewSet([Review(3, "flag", 3, flag="spun", on=False)]).overrule(decision, articles, sizes,
                                                                                 _relation(edges))
    assert quiet.canonical_id == 1 and [m.flags for m in quiet.members] == [m.flags for m in decision.members]


def _export(store: Store, root: Path) -> dict[str, tuple[tuple[str, ...], bool, tuple[str, ...], str]]:
    """file name → (its cluster's file names, canonical, flags, the reviews in its evidence): what must not depend
    on the order."""
    import io

    buffer = io.StringIO()
    export_jsonl(store, buffer)
    prefix = root.resolve().as_uri() + "/"
    rows = [json.loads(line.replace(prefix, "")) for line in buffer.getvalue().splitlines()]
    members: dict[int, list[str]] = {}
    for row in rows:
        members.setdefault(row["cluster_id"], []).append(row["url"])
    return {row["url"]: (tuple(sorted(members[row["cluster_id"]])), row["canonical"], tuple(row["flags"]),
                         json.dumps([r["kind"] for r in row["evidence"].get("reviews", [])]))
            for row in rows}


@pytest.mark.parametrize("seed", [1, 2])
def test_the_result_depends_on_the_pages_and_reviews_not_on_arrival_order(tmp_path: Path, seed: int) -> None:
    names = ["pier_original", "pier_scraped", "pier_spun", "pier_republished", "library_first", "library_second",
             "library_whole", "otters"]
    outcomes, orders = [], []
    for run in range(2):
        root = tmp_path / f"run{run}"
        root.mkdir()
        paths = write_pages(root)
        url = f"sqlite:///{root / 'r.db'}"
        store = Store(url)
        settings = Settings(database_url=url)
        order = list(names)
        random.Random(seed * 10 + run).shuffle(order)
        orders.append(order)
        early, late = order[:4], order[4:]
        try:
            for name in early:
                assert run_ingest([str(paths[name])], store, settings, progress=False).ok

            def review(kind: str, *who: str, root: Path = root, store: Store = store, settings: Settings = settings,
                       **kw: object) -> None:
                urls = [(root / f"{n}.html").resolve().as_uri() for n in who]
                if all(store.article_by_url(u) for u in urls):
                    reviews.apply(store, kind, urls, who="ed", settings=settings, **kw)  # type: ignore[arg-type]

            pending = [("separate", ("pier_scraped",), {}), ("merge", ("otters", "library_whole"), {}),
                       ("canonical", ("pier_spun",), {}), ("flag", ("pier_republished",),
                                                            {"flag": "spun", "on": True})]
            # a review can only name a page that is stored: those whose pages came late are made after them
            for kind, who, kw in pending:
                review(kind, *who, **kw)
            for name in late:
                assert run_ingest([str(paths[name])], store, settings, progress=False).ok
            for kind, who, kw in pending:
                if not all(n in early for n in who):
                    review(kind, *who, **kw)
            outcomes.append(_export(store, root))
        finally:
            store.close()
    # the reviews were made at other moments and in another order of ids: what is in force decides
    assert orders[0] != orders[1]
    assert outcomes[0] == outcomes[1]
    assert outcomes[0]["pier_spun.html"][1] is True, "the reviewed canonical"
    assert outcomes[0]["pier_scraped.html"][0] == ("pier_scraped.html",), "kept out of its cluster"
    assert outcomes[0]["otters.html"][0] == outcomes[0]["library_whole.html"][0], "merged"
    assert outcomes[0]["pier_republished.html"][2] == ("spun",)
