"""Flat cost at scale, as behaviour: the index lives in the store, candidates are screened before any text is
read, and a story carried by many sites is one cluster decided in bounded steps, whatever the arrival order."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import delete, func, select

import pipeline.dedup.deduplicator
from pipeline.dedup import DecisionPolicy, Deduplicator
from pipeline.dedup.index import VERIFY_MAX, StoreLSHIndex
from pipeline.dedup.panel import PANEL, SMALL_CLUSTER
from pipeline.ingest.steps import ingest_page
from pipeline.records import Page
from pipeline.settings import Settings
from pipeline.store import ArticleRow, EdgeRow, Store
from pipeline.store.schema import LSHBandRow, MarkRow
from tests.support.pages import UNRELATED_PARAGRAPHS
from tests.support.world import PIER, PIER_TITLE, page, scrape, spin

ORIGINAL = "https://westmereherald.example/2025/pier"


def story(copies: int) -> list[tuple[Page, str]]:
    """The original and ``copies`` copies on other sites: verbatim, spun, scraped (link texts cut, byline
    gone), attributed; with the kind of each."""
    credit = f'<p>This article was first published by <a href="{ORIGINAL}">Westmere Herald</a>.</p>'
    pages = [(Page(ORIGINAL, page(PIER_TITLE, PIER, site="Westmere Herald", host="westmereherald.example",
                                  date="2025-06-01", byline="Rosa Lindgren")), "original")]
    kinds = ("verbatim", "spun", "scraped", "attributed")
    for n in range(copies):
        kind = kinds[n % len(kinds)]
        host = f"site{n:03d}.example"
        paragraphs = [spin(p) for p in PIER] if kind == "spun" else [scrape(p) for p in PIER] \
            if kind == "scraped" else PIER
        body = page(PIER_TITLE, paragraphs, site=f"Site {n}", host=host, date="2025-07-01",
                    byline=None if kind == "scraped" else "Rosa Lindgren", extra=credit if kind == "attributed" else "")
        pages.append((Page(f"https://{host}/news/pier-{n}", body), kind))
    return pages


def ingest_all(store: Store, pages: list[tuple[Page, str]], every: int = 7) -> Deduplicator:
    """Through the per-page step, deciding every ``every`` related arrivals (batches cut the story in parts)."""
    dedup = Deduplicator(store, Settings(), policy=DecisionPolicy(every=every, seconds=3600))
    for p, _kind in pages:
        ingest_page(p, store, dedup, None)
    dedup.flush()
    return dedup


def decisions(store: Store) -> dict[str, tuple[frozenset[str], bool, tuple[str, ...]]]:
    """url → (its cluster's URLs, canonical, flags): what must not depend on arrival order."""
    with store.session() as s:
        rows = s.execute(select(ArticleRow.url, ArticleRow.cluster_id, ArticleRow.is_canonical,
                                ArticleRow.flags)).all()
    members: dict[int, set[str]] = {}
    for url, cluster, _c, _f in rows:
        members.setdefault(cluster, set()).add(url)
    return {url: (frozenset(members[cluster]), bool(canonical), tuple(sorted(flags or [])))
            for url, cluster, canonical, flags in rows}


def test_a_story_on_many_sites_is_one_cluster_decided_in_bounded_steps(store: Store, tmp_path) -> None:
    copies = 3 * SMALL_CLUSTER
    pages = story(copies)
    rng = random.Random(5)
    rng.shuffle(pages)
    ingest_all(store, pages)
    got = decisions(store)
    kind_of = {p.url: kind for p, kind in pages}
    assert len({cluster for cluster, _c, _f in got.values()}) == 1  # one story, one cluster
    assert [url for url, (_m, canonical, _f) in got.items() if canonical] == [ORIGINAL]
    assert {url for url, (_m, _c, flags) in got.items() if "spun" in flags} == \
        {url for url, kind in kind_of.items() if kind == "spun"}
    assert {url for url, (_m, _c, flags) in got.items() if "scraped" in flags} == \
        {url for url, kind in kind_of.items() if kind == "scraped"}
    with store.session() as s:
        relations = s.scalar(select(func.count()).select_from(EdgeRow))
        evidence = {url: ev for url, ev in s.execute(select(ArticleRow.url, ArticleRow.evidence))}
    # relations are O(copies): each arrival is aligned with at most VERIFY_MAX of its closest candidates
    assert relations <= VERIFY_MAX * (copies + 1)
    judged = [url for url, ev in evidence.items() if ev.get("judged_against") == ORIGINAL]
    assert len(judged) == copies + 1 - PANEL  # beyond the panel, every member is judged against the canonical

    # the same pages in another order, other batches: the same clusters, canonical and flags
    other = Store(f"sqlite:///{tmp_path / 'reversed.db'}")
    try:
        ingest_all(other, list(reversed(pages)), every=11)
        assert decisions(other) == got
    finally:
        other.close()


def test_the_index_lives_in_the_store(store: Store) -> None:
    """A second deduplicator (another run, another process) finds what the first indexed without loading the
    store: entries the first still held in memory (it stopped before writing them) are put back from their
    signatures; written ones are in the table, with the mark past them. A store written before the index
    existed is indexed from its signatures when it is opened."""
    pages = story(2)
    first = ingest_all(store, pages[:1])  # never saved: as if the process had died
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(LSHBandRow)) == 0
    second = Deduplicator(store, Settings())
    assert ingest_page(pages[1][0], store, second, None).related == 1
    second.save_index()
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(LSHBandRow)) > 0
    assert store.mark(StoreLSHIndex.MARK) == max(store.indexed_articles()) == 2
    third = Deduplicator(store, Settings())
    assert ingest_page(pages[2][0], store, third, None).related == 2
    del first

    with store.session() as s:  # an old store: signatures, no index, no mark
        s.execute(delete(LSHBandRow))
        s.execute(delete(MarkRow))
    later = Deduplicator(store, Settings())
    assert isinstance(later.index, StoreLSHIndex) and len(later.index) == 3


def test_an_index_write_undone_with_its_unit_is_redone(store: Store) -> None:
    """Entries written inside a unit that rolls back (a page that failed) are put back from the mark."""
    pages = story(3)
    dedup = Deduplicator(store, Settings())
    index = StoreLSHIndex(store, merge_every=1)
    dedup._index = index
    ingest_page(pages[0][0], store, dedup, None)
    assert store.mark(StoreLSHIndex.MARK) == 1
    with pytest.raises(RuntimeError), store.unit():
        ingest_page(pages[1][0], store, dedup, None)  # written and marked inside the unit...
        raise RuntimeError("the batch fails")
    index.rolled_back()  # ...which rolled back: what the mark says is not written comes back from the store
    assert store.mark(StoreLSHIndex.MARK) == 1
    assert ingest_page(pages[2][0], store, dedup, None).related >= 1


def test_candidates_are_screened_before_any_text_is_read(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even when the index returns every stored article, unrelated ones are dropped on their signatures:
    no text is loaded for them and nothing is aligned."""
    dedup = Deduplicator(store, Settings())
    for n in range(12):
        words = [f"{p} {n}" for p in UNRELATED_PARAGRAPHS]
        rng = random.Random(n)
        for p in range(len(words)):
            tokens = words[p].split()
            rng.shuffle(tokens)
            words[p] = " ".join(tokens)
        ingest_page(Page(f"https://u{n}.example/a", page(f"Story {n}", words, site=f"U{n}", host=f"u{n}.example")),
                    store, dedup, None)
    everything = set(range(1, 100))
    monkeypatch.setattr(dedup.index, "query_insert", lambda article_id, sig: everything - {article_id})
    loaded: list[set[int]] = []
    real_articles = Deduplicator.articles
    monkeypatch.setattr(Deduplicator, "articles", lambda self, ids: loaded.append(set(ids)) or real_articles(self, ids))
    aligned: list[int] = []
    real_verify = pipeline.dedup.deduplicator.verify_articles
    monkeypatch.setattr(pipeline.dedup.deduplicator, "verify_articles",
                        lambda *a, **k: aligned.append(1) or real_verify(*a, **k))
    outcome = dedup.add(store.add_page(Page("https://v.example/a", b"x"), None),
                        pipeline.dedup.deduplicator.Article(url="https://v.example/a", title="t",
                                                            text="\n\n".join(PIER), paragraphs=tuple(PIER)))
    assert outcome.candidates == 0 and outcome.related == 0
    assert not aligned and not [ids for ids in loaded if ids]
