"""Detection: fingerprints, verification verdicts, clustering, canonical election and flags."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from pipeline.dedup.canonical import decide, orphaned_punctuation
from pipeline.dedup.cluster import partition
from pipeline.dedup.deduplicator import Deduplicator
from pipeline.dedup.fingerprint import _prototype, fingerprint_tokens
from pipeline.dedup.index import LSHIndex
from pipeline.dedup.verify import verify
from pipeline.records import Article, Link, Page, PairVerdict
from pipeline.settings import Settings
from pipeline.store import Store
from pipeline.text import tokenize

SEEDS = Path(__file__).parent / "fixtures" / "seeds"

ORIGINAL = [
    "The city council voted on Tuesday to expand the public library network with three new branches, "
    "a decision that officials said would bring books and computers within walking distance of most families.",
    "The plan, which will cost about twelve million dollars over five years, was approved after a long debate "
    "in which several members questioned whether the money should instead go to road repairs.",
    "Supporters argued that the libraries serve as community centres where children can study after school, "
    "older people can learn to use the internet and job seekers can print their applications for free.",
    "The first branch is expected to open next spring in the northern district, where the nearest library is "
    "currently more than an hour away by bus for many residents who do not own a car.",
    "The mayor said the project showed that the city was willing to invest in education and that the new "
    "buildings would be designed to use little energy, with solar panels on the roofs and large windows.",
    "Critics on the council said they would watch the costs closely and warned that the budget for staff "
    "had not yet been settled, which could delay the opening of the second and third branches.",
    "Residents who spoke at the meeting were mostly in favour, and several parents described long trips "
    "across the city each week so that their children could borrow books and attend reading groups.",
]
LINKS = ["public library network", "twelve million dollars", "the northern district", "solar panels"]

UNRELATED_SAME_TOPIC = [
    "The city council on Tuesday also heard a report on library opening hours, which have been cut twice "
    "in the past decade because of staff shortages and rising energy bills across the region.",
    "Librarians told members that weekend visits had doubled since the pandemic and that demand for "
    "computer classes was far higher than the service could meet with its current team of volunteers.",
    "A proposal to extend evening hours at the central library until nine o'clock will be discussed next "
    "month, together with a plan to recruit more part-time workers from the local university.",
    "Some members said the council should first review how the money for books is spent, noting that the "
    "digital lending budget had grown faster than the budget for printed books over recent years.",
    "The head librarian said that the service needed stable funding more than new buildings, and that the "
    "council had not consulted the staff before drawing up its plans for the next five years.",
]

SYNONYMS = {
    "voted": "balloted", "expand": "amplify", "decision": "determination", "officials": "functionaries",
    "bring": "convey", "families": "households", "debate": "disputation", "questioned": "interrogated",
    "money": "lucre", "argued": "contended", "children": "offspring", "older": "elder", "learn": "ascertain",
    "expected": "anticipated", "open": "unbar", "currently": "presently", "residents": "denizens",
    "showed": "evinced", "willing": "disposed", "invest": "capitalise", "designed": "contrived",
    "windows": "casements", "watch": "scrutinise", "warned": "forewarned", "delay": "postpone",
    "mostly": "predominantly", "described": "delineated", "trips": "excursions", "borrow": "cadge",
}


def make_article(url: str, paragraphs: list[str], *, links: tuple[str, ...] = (), byline: str | None = None,
                 canonical_url: str | None = None, published: str | None = None,
                 attribution_urls: tuple[str, ...] = ()) -> Article:
    text = "\n\n".join(paragraphs)
    found = []
    for phrase in links:
        start = text.find(phrase)
        if start >= 0:
            found.append(Link(phrase, f"https://example.org/{len(found)}", start, 0))
    return Article(url=url, title="Council backs new library branches", text=text, paragraphs=tuple(paragraphs),
                   links=tuple(found), byline=byline, published=published, site=url.split("/")[2],
                   canonical_url=canonical_url, language="en", attribution_urls=attribution_urls)


def spin(paragraphs: list[str]) -> list[str]:
    def swap(match: re.Match[str]) -> str:
        return SYNONYMS.get(match.group(0), match.group(0))

    return [re.sub(r"[A-Za-z]+", swap, p) for p in paragraphs]


def scrape(paragraphs: list[str]) -> list[str]:
    out = []
    for p in paragraphs:
        for phrase in LINKS:
            p = p.replace(phrase, "")
        out.append(p)
    return out


def tokens(paragraphs: list[str]) -> list[str]:
    return tokenize("\n\n".join(paragraphs))


# fingerprint and index ------------------------------------------------------------------------------------

def test_permutations_are_built_once_per_process():
    assert _prototype(128) is _prototype(128)


def test_signature_is_deterministic_and_index_finds_near_duplicates():
    a = fingerprint_tokens(tokens(ORIGINAL))
    b = fingerprint_tokens(tokens(ORIGINAL))
    assert all((a.values[k] == b.values[k]).all() for k in a.values)
    index = LSHIndex()
    index.insert(1, a)
    index.insert(2, fingerprint_tokens(tokens(UNRELATED_SAME_TOPIC)))
    assert 1 in index.query(fingerprint_tokens(tokens(spin(ORIGINAL))))
    assert 1 in index.query(fingerprint_tokens(tokens(ORIGINAL[:3])))  # an excerpt
    index.remove(1)
    assert 1 not in index.query(a)


# verify: one test per verdict --------------------------------------------------------------------------

def test_republished_with_attribution_is_same():
    copy = [*ORIGINAL, "This article was originally published by the Daily Example."]
    v = verify(tokens(ORIGINAL), tokens(copy), "en")
    assert v.relation == "same" and v.similarity > 0.95


def test_excerpt_is_subset():
    v = verify(tokens(ORIGINAL), tokens(ORIGINAL[:2]), "en")
    assert v.relation == "subset"
    assert v.coverage_b > 0.95 and v.coverage_a < 0.5


def test_scraped_copy_is_related():
    v = verify(tokens(ORIGINAL), tokens(scrape(ORIGINAL)), "en")
    assert v.related and v.relation in ("same", "subset")


def test_spun_copy_is_spun_with_rarer_words_on_the_spun_side():
    v = verify(tokens(ORIGINAL), tokens(spin(ORIGINAL)), "en")
    assert v.relation == "spun"
    assert v.evidence["swaps"] >= 10
    assert v.evidence["rarity_shift"]["rarer_b"] > v.evidence["rarity_shift"]["rarer_a"]


def test_spun_and_scraped_copy_is_spun_and_flagged_both_ways():
    v = verify(tokens(ORIGINAL), tokens(scrape(spin(ORIGINAL))), "en")
    assert v.relation == "spun"
    articles = {
        1: make_article("https://news.example/original", ORIGINAL, links=tuple(LINKS), byline="Ann Writer"),
        2: make_article("https://copy.example/republished", ORIGINAL, byline="Staff",
                        canonical_url="https://news.example/original"),
        3: make_article("https://both.example/spun-scraped", scrape(spin(ORIGINAL))),
    }
    by_id = {m.article_id: m for m in decide(articles, _edges(articles)).members}
    assert set(by_id[3].flags) == {"spun", "scraped"}
    assert by_id[3].evidence["scraped"]["links_lost"] >= 3
    assert by_id[1].canonical and by_id[2].flags == ()


def test_same_topic_different_article_is_unrelated():
    v = verify(tokens(ORIGINAL), tokens(UNRELATED_SAME_TOPIC), "en")
    assert v.relation == "unrelated"


def test_orphaned_punctuation_is_found():
    assert len(orphaned_punctuation("He has been establishing a . Police from , to — are there.")) == 2
    assert orphaned_punctuation("A normal sentence. Another one, with a comma.") == ()


# cluster ------------------------------------------------------------------------------------------------

def _verdict(relation: str, similarity: float = 0.9) -> PairVerdict:
    return PairVerdict(relation, similarity, 0.9, 0.9, 0.0)


def test_a_short_text_does_not_chain_two_articles_that_quote_it():
    sizes = {1: 1000, 2: 100, 3: 900}
    keys = {1: "a", 2: "b", 3: "c"}
    edges = {(1, 2): _verdict("subset", 0.5), (2, 3): _verdict("subset", 0.6)}
    groups = partition(sizes, keys, edges)
    assert sorted(map(sorted, groups)) == [[1], [2, 3]]


def test_whole_versions_and_their_excerpts_form_one_cluster():
    sizes = {1: 1000, 2: 990, 3: 200}
    keys = {1: "a", 2: "b", 3: "c"}
    edges = {(1, 2): _verdict("same"), (1, 3): _verdict("subset"), (2, 3): _verdict("subset")}
    assert partition(sizes, keys, edges) == [{1, 2, 3}]


def test_incompatible_versions_are_not_chained_into_one_cluster():
    sizes = {1: 40, 2: 30, 3: 45}
    keys = {1: "a", 2: "b", 3: "c"}
    edges = {(1, 3): _verdict("same", 0.9), (2, 3): _verdict("same", 0.6)}
    groups = partition(sizes, keys, edges, compatible=lambda a, b: {a, b} != {1, 2})
    assert sorted(map(sorted, groups)) == [[1, 3], [2]]


# canonical election and flags ---------------------------------------------------------------------------

def _family() -> dict[int, Article]:
    return {
        1: make_article("https://news.example/original", ORIGINAL, links=tuple(LINKS), byline="Ann Writer",
                        published="2025-01-01"),
        2: make_article("https://copy.example/republished", [*ORIGINAL, "Originally published by News."],
                        byline="Staff", published="2025-01-03",
                        attribution_urls=("https://news.example/original",)),
        3: make_article("https://scrape.example/scraped", scrape(ORIGINAL), published="2025-01-02"),
        4: make_article("https://spin.example/spun", spin(ORIGINAL), byline="Bot", published="2025-01-02"),
    }


def _edges(articles: dict[int, Article]) -> dict[tuple[int, int], PairVerdict]:
    ids = sorted(articles)
    out = {}
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            v = verify(tokenize(articles[a].text), tokenize(articles[b].text), "en")
            if v.related:
                out[(a, b)] = v
    return out


def test_decide_elects_the_original_and_flags_copies_with_evidence():
    articles = _family()
    decision = decide(articles, _edges(articles))
    by_id = {m.article_id: m for m in decision.members}
    assert decision.canonical_id == 1
    assert by_id[4].flags == ("spun",)
    assert by_id[4].evidence["spun"]["swap_rate"] > 0.02
    assert by_id[4].evidence["spun"]["sample"]
    assert "scraped" in by_id[3].flags and "spun" not in by_id[3].flags
    scraped = by_id[3].evidence["scraped"]
    assert scraped["links_lost"] >= 3 and "link_text_lost" in scraped["reasons"]
    assert by_id[2].flags == ()
    assert 0 < by_id[4].similarity < 1


def test_flags_are_decided_without_the_original():
    articles = _family()
    pair = {3: articles[3], 4: articles[4]}
    decision = decide(pair, _edges(pair))
    by_id = {m.article_id: m for m in decision.members}
    assert "spun" in by_id[4].flags
    assert "spun" not in by_id[3].flags


def _seed_article(name: str, site: str) -> Article:
    text = (SEEDS / name).read_text()
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    return make_article(f"https://{site}/story", paragraphs[1:])


def test_the_two_seeds_form_one_cluster_spun_and_scraped(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'seeds.db'}")
    dedup = Deduplicator(store, Settings())
    spun_id = dedup.add(store.add_page(Page("https://spinner.example/story", b"<html/>"), None),
                        _seed_article("spun.txt", "spinner.example")).article_id
    scraped_id = dedup.add(store.add_page(Page("https://scraper.example/story", b"<html/>"), None),
                           _seed_article("scraped.txt", "scraper.example")).article_id
    rows = store.article_rows([spun_id, scraped_id])
    assert rows[spun_id].cluster_id == rows[scraped_id].cluster_id
    assert "spun" in rows[spun_id].flags
    assert "scraped" in rows[scraped_id].flags and "spun" not in rows[scraped_id].flags
    assert rows[scraped_id].evidence["scraped"]["orphaned_punctuation"] >= 5


# order independence and re-election ---------------------------------------------------------------------

def _ingest(store: Store, articles: list[Article]) -> dict[str, tuple]:
    dedup = Deduplicator(store, Settings())
    for a in articles:
        dedup.add(store.add_page(Page(a.url, a.text.encode()), None), a)
    rows = list(store.export_rows())
    clusters: dict[int, set[str]] = {}
    for r in rows:
        clusters.setdefault(r.cluster_id, set()).add(r.url)
    return {r.url: (frozenset(clusters[r.cluster_id]), r.is_canonical, tuple(sorted(r.flags))) for r in rows}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_arrival_order_does_not_change_clusters_canonicals_or_flags(tmp_path, seed):
    family = list(_family().values())
    other = make_article("https://other.example/hours", UNRELATED_SAME_TOPIC)
    pages = [*family, other, make_article("https://excerpt.example/short", ORIGINAL[:3], byline="X")]
    first = _ingest(Store(f"sqlite:///{tmp_path / 'a.db'}"), pages)
    shuffled = pages[:]
    random.Random(seed).shuffle(shuffled)
    second = _ingest(Store(f"sqlite:///{tmp_path / f'b{seed}.db'}"), shuffled)
    assert first == second
    assert first["https://other.example/hours"][0] == {"https://other.example/hours"}


def test_canonical_moves_when_a_better_version_arrives_and_the_move_is_an_event(tmp_path):
    from sqlalchemy import select

    from pipeline.store import EventRow

    store = Store(f"sqlite:///{tmp_path / 'moves.db'}")
    dedup = Deduplicator(store, Settings())
    fam = _family()
    scraped = dedup.add(store.add_page(Page(fam[3].url, b"x"), None), fam[3])
    assert store.article_rows([scraped.article_id])[scraped.article_id].is_canonical
    original = dedup.add(store.add_page(Page(fam[1].url, b"y"), None), fam[1])
    rows = store.article_rows([scraped.article_id, original.article_id])
    assert rows[original.article_id].is_canonical and not rows[scraped.article_id].is_canonical
    with store.session() as s:
        moves = list(s.scalars(select(EventRow).where(EventRow.type == "canonical_changed")))
    assert any(e.data["new"] == original.article_id and e.data["old"] == scraped.article_id for e in moves)
