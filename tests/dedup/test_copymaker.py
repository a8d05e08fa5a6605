"""Detection against the second copy-maker (tests/support/copymaker.py): pages are made, extracted and
judged as the pipeline does (extract → verify → decide); nothing here is the dev corpus's method."""

from __future__ import annotations

import re

import pytest

from pipeline.dedup.canonical import decide
from pipeline.dedup.verify import verify_articles
from pipeline.extract.extractor import extract
from pipeline.records import Article, MemberDecision, Page
from pipeline.text import tokenize
from tests.support.copymaker import Segment, _drop_link, article_page, make_copy, read_story

ORIGINAL_URL = "https://harbour-news.example/2025/03/ferry-terminal"

# A made-up local story: links sit in running text, next to words the spinner has rewrites for.
PARAGRAPHS = [
    "City officials said on Tuesday that the long delayed ferry terminal would finally open next spring, "
    "according to [a report by the harbour authority](https://harbour.example/report) that was published "
    "after a meeting of the port board.",
    "The project, which will cost more than forty million dollars, was approved in order to replace a "
    "terminal that [was damaged by the storm](https://harbour-news.example/storm) three winters ago and has "
    "been closed to passengers ever since.",
    "Supporters of the plan argued that the new building would help local businesses, bring visitors back "
    "to the old town and give commuters a faster way to reach [the business district](https://city.example/d) "
    "on the other side of the bay.",
    "Critics warned that the budget had already increased twice and pointed out that [the original estimate]"
    "(https://harbour-news.example/estimate) was less than half of the current figure, a gap that the "
    "authority has never fully explained to residents.",
    "In a statement, the mayor said the terminal was an important part of a wider plan to improve public "
    "transport and that the city would keep an eye on the costs until [the last contract](https://city.example/c) "
    "is signed later this year.",
    "Residents who spoke at the meeting were mostly in favour, although several of them asked whether the "
    "ticket prices would rise once the new service starts and whether [the night ferries](https://ferry.example/n) "
    "would return as well.",
    "The harbour authority said it expected to announce the timetable in the coming weeks and that a number "
    "of trial crossings would take place before the official opening, so that staff could find out how the "
    "new ramps behave at low tide.",
    "Local officials [in Harbourside](https://city.example/hs) warned that the timetable could still change, "
    "and critics [of the board](https://port.example/board) claimed that the company [behind the ferries]"
    "(https://ferry.example/co) decided to buy the new boats before the ramps were tested. Residents "
    "[near the pier](https://harbour-news.example/pier) asked for a public meeting, and several experts "
    "[at the college](https://college.example) think the crossings will start late.",
    "On Wednesday evening, the harbour master told reporters that the first crossings would be free of "
    "charge. “We want people to try the new boats before they decide how they travel,” she said. The trial "
    "runs were cancelled last week because the wind was far too strong for the new ramps. Ticket prices "
    "for the first year will be set by the port board, the transport minister said.",
    "Work on the site is expected to continue through the winter, with crews working at night to avoid "
    "disrupting [the fish market](https://market.example) that stands next to the terminal and opens every "
    "day before dawn.",
]


def _original(paragraphs: list[str] = PARAGRAPHS) -> str:
    return article_page(
        "Ferry terminal to open next spring after years of delay", paragraphs, byline="Maria Lindqvist",
        published="2025-03-04T08:00:00+00:00", site="harbour-news.example", canonical=ORIGINAL_URL,
        related=[("Storm damage closes the old pier", "https://harbour-news.example/pier"),
                 ("Port board elects a new chair", "https://harbour-news.example/chair")],
        captions=["The terminal under construction in January. Photo: Staff"],
    )


def _short_links_original() -> str:
    """The story with links only in one paragraph, each two or three words long between words the spinner
    rewrites ("officials [in Harbourside] warned"): cut, they leave holes the swaps crowd in on."""
    plain = [re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", p) if "Harbourside" not in p else p for p in PARAGRAPHS]
    return _original(plain)


def _article(url: str, html: str) -> Article:
    article, _warning = extract(Page(url, html.encode(), headers={"content-type": "text/html; charset=utf-8"}))
    return article


def _judge(copy_html: str, original_html: str | None = None) -> dict[str, MemberDecision]:
    """Extract both pages, verify the pair and decide the cluster, as the pipeline does."""
    original = _article(ORIGINAL_URL, original_html or _original())
    copy = _article("https://www.newsbeat.example/story/ferry", copy_html)
    verdict = verify_articles(original.url, tokenize(original.text), copy.url, tokenize(copy.text), "en")
    assert verdict.related, verdict.evidence
    decision = decide({1: original, 2: copy}, {(1, 2): verdict})
    by_id = {m.article_id: m for m in decision.members}
    return {"original": by_id[1], "copy": by_id[2]}


# --- the copy-maker itself --------------------------------------------------------------------------------

def test_copies_are_deterministic_for_a_seed_and_differ_between_seeds():
    page = _original()
    a = make_copy(page, ["spin", "links", "boilerplate"], strength="medium", seed=7)
    b = make_copy(page, ["spin", "links", "boilerplate"], strength="medium", seed=7)
    c = make_copy(page, ["spin", "links", "boilerplate"], strength="medium", seed=8)
    assert a.html == b.html and a.changes == b.changes
    assert c.html != a.html


def test_the_spinner_works_on_phrases_inflections_and_clause_order():
    copy = make_copy(_original(), ["spin"], strength="heavy", seed=3)
    kinds = {change.split(":")[0] for change in copy.changes["spin"]}
    assert {"phrase", "word", "inflection", "reorder"} <= kinds, copy.changes["spin"]
    assert copy.spun and not copy.scraped
    assert any(" " in change.split(":", 1)[1].split("→")[0].strip() for change in copy.changes["spin"]
               if change.startswith("phrase")), "a multi-word phrase was rewritten"


def test_the_scraper_drops_link_texts_bylines_and_blocks_and_boilerplate_is_added():
    page = _original()
    copy = make_copy(page, ["links", "byline", "blocks", "boilerplate"], strength="heavy", seed=1)
    story, original = read_story(copy.html), read_story(page)
    links_before = [s.text for b in original.blocks if b.kind == "p" for s in b.segments if s.href]
    links_after = {s.text for b in story.blocks for s in b.segments if s.href}
    assert len(copy.changes["links"]) == len(links_before) and not links_after & set(links_before)
    assert story.byline is None and story.published is None and original.byline == "Maria Lindqvist"
    assert not [b for b in story.blocks if b.kind in ("related", "caption")]
    assert "Advertisement" in copy.html or "ADVERTISEMENT" in copy.html
    assert copy.scraped and not copy.spun


def test_link_texts_are_cut_with_or_without_the_punctuation_around_them():
    def cut(with_punctuation: bool) -> str:
        segments = [Segment("the plan ("), Segment("the report", "https://x.example/r"), Segment(") and, "),
                    Segment("the map", "https://x.example/m"), Segment(", were shown")]
        _drop_link(segments, 1, with_punctuation)
        _drop_link(segments, 3, with_punctuation)
        return "".join(s.text for s in segments)

    assert cut(False) == "the plan () and, , were shown"  # orphaned punctuation left behind
    assert cut(True) == "the plan  and,  were shown"


# --- detection --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("strength", "seed"), [("medium", 8), ("medium", 12), ("heavy", 3)])
def test_spun_and_scraped_copy_with_link_texts_lost_next_to_swaps_is_flagged_both_ways(strength, seed):
    original = _short_links_original()
    copy = make_copy(original, ["spin", "links"], strength=strength, seed=seed)
    assert copy.spun and copy.scraped
    judged = _judge(copy.html, original)
    assert set(judged["copy"].flags) == {"spun", "scraped"}
    scraped = judged["copy"].evidence["scraped"]
    assert scraped["against"] == ORIGINAL_URL
    # every cut link text is found where it stood, those with swapped words around them too, and the
    # evidence names the losses and the swaps
    assert "link_text_lost" in scraped["reasons"]
    assert sorted(scraped["lost_links_sample"]) == sorted(text.strip() for text in copy.changes["links"])
    assert scraped["links_lost_next_to_swaps"] >= 1 and scraped["swaps_next_to_losses"]
    assert scraped["short_spans_lost"] == 0  # the rewritten phrases are not holes
    spun = judged["copy"].evidence["spun"]
    assert spun["against"] == ORIGINAL_URL and spun["sample"]
    assert judged["original"].canonical and judged["original"].flags == ()


@pytest.mark.parametrize("strength", ["medium", "heavy"])
def test_spun_copy_that_only_lost_its_byline_is_not_scraped(strength):
    copy = make_copy(_original(), ["spin", "byline"], strength=strength, seed=5)
    assert copy.spun and copy.changes["byline"] and not copy.scraped
    judged = _judge(copy.html)
    assert "spun" in judged["copy"].flags
    assert "scraped" not in judged["copy"].flags, judged["copy"].evidence.get("scraped")
    assert judged["original"].canonical and judged["original"].flags == ()


def test_spun_copy_that_lost_its_byline_is_scraped_when_other_losses_agree():
    copy = make_copy(_original(), ["spin", "byline", "links"], strength="heavy", seed=5)
    judged = _judge(copy.html)
    assert {"spun", "scraped"} <= set(judged["copy"].flags)
    reasons = judged["copy"].evidence["scraped"]["reasons"]
    assert "byline_lost" in reasons and "link_text_lost" in reasons


def test_unspun_copy_that_lost_its_byline_is_scraped():
    copy = make_copy(_original(), ["byline"], strength="light", seed=2)
    judged = _judge(copy.html)
    assert judged["copy"].flags == ("scraped",)
    assert judged["copy"].evidence["scraped"]["reasons"] == ["byline_lost"]


def test_reordered_clauses_and_rewritten_phrases_are_not_lost_spans():
    copy = make_copy(_original(), ["spin"], strength="heavy", seed=13)
    assert any(change.startswith("reorder") for change in copy.changes["spin"])
    judged = _judge(copy.html)
    assert judged["copy"].flags == ("spun",)


def test_boilerplate_in_the_copy_flags_nobody_and_the_original_stays_canonical():
    copy = make_copy(_original(), ["boilerplate"], strength="heavy", seed=4)
    judged = _judge(copy.html)
    assert judged["copy"].flags == () and judged["original"].flags == ()
    assert judged["original"].canonical
