"""The UI's word-level diff: what it marks, where, and that it never lets stored text become markup."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from pipeline.serve.ui.diff import DiffText, render_inline, render_side, word_diff

CANONICAL = ("The council voted on Tuesday to build a tram line to the hospital, paid from the regional transport "
             "grant awarded in March.\n\nThe leader said the route would change how people get to work.\n\n"
             "This article was first published by Kelsford Post.")
LINK_TEXT = "regional transport grant"


def text_of(markup: str) -> str:
    """What a browser shows of ``markup``: its text content, entities decoded."""
    parts: list[str] = []
    parser = HTMLParser()
    parser.handle_data = parts.append  # type: ignore[method-assign]
    parser.feed(markup)
    return "".join(parts)


def canonical() -> DiffText:
    start = CANONICAL.index(LINK_TEXT)
    return DiffText(CANONICAL, ((LINK_TEXT, "https://post.example/grant", start),),
                    ("This article was first published by Kelsford Post.",), "Ada Brennan")


def test_swaps_are_pairs_with_one_number_on_both_sides() -> None:
    spun = CANONICAL.replace("voted", "balloted").replace("change", "transmute")
    d = word_diff(canonical(), DiffText(spun))
    assert [(kind, a, b) for _, kind, a, b in d.pairs] == [("swap", "voted", "balloted"),
                                                           ("swap", "change", "transmute")]
    left, right = render_side(d, "canonical"), render_side(d, "member")
    assert re.search(r'<mark class="swap" data-pair="1" id="c1"[^>]*>voted</mark>', left)
    assert re.search(r'<mark class="swap" data-pair="1" id="m1"[^>]*>balloted</mark>', right)
    inline = render_inline(d)
    assert re.search(r'<del class="pair-a swap"[^>]*>voted</del><ins class="swap pair-b" data-pair="1"[^>]*>'
                     r"balloted</ins>", inline)
    assert d.swap_summary == [("voted", "balloted", 1), ("change", "transmute", 1)]


def test_lost_link_text_is_a_hole_where_it_stood() -> None:
    scraped = CANONICAL.replace(LINK_TEXT + " ", "")
    d = word_diff(canonical(), DiffText(scraped))
    assert [(h.kind, h.text, h.href) for h in d.member.holes] == [
        ("lost-link", LINK_TEXT, "https://post.example/grant")]
    hole = d.member.holes[0]
    assert scraped[:hole.at].endswith("paid from the"), "the hole stands right after the word before it"
    assert re.search(r'<mark class="lost-link"[^>]*>regional transport grant</mark>', render_side(d, "canonical"))
    assert "paid from the <del class=\"hole lost-link\"" in render_side(d, "member")


def test_lost_spans_and_blocks_are_told_apart() -> None:
    member = CANONICAL.replace(" on Tuesday", "").replace("The leader said the route would change how people get "
                                                           "to work.\n\n", "")
    d = word_diff(canonical(), DiffText(member))
    assert [(h.kind, h.words) for h in d.member.holes] == [("lost-span", 2), ("lost-block", 12)]


def test_orphaned_punctuation_is_marked() -> None:
    member = CANONICAL.replace("in March", "in")
    member = member.replace("in.", "in .")
    d = word_diff(canonical(), DiffText(member))
    assert d.counts["orphan"] == 1
    assert '<mark class="orphan" title="orphaned punctuation"> .</mark>' in render_side(d, "member")


def test_attribution_and_byline_lines_are_marked() -> None:
    member = "By Ada Brennan\n\n" + CANONICAL
    d = word_diff(canonical(), DiffText(member, attribution=("This article was first published by Kelsford Post.",),
                                        byline="Ada Brennan"))
    right = render_side(d, "member")
    assert '<div class="ln byline"><span class="tag line-tag">byline</span>' in right
    assert right.count('<div class="ln attribution">') == 1
    assert render_side(d, "canonical").count('<div class="ln attribution">') == 1


def test_stored_markup_stays_text() -> None:
    evil = CANONICAL.replace("voted", "<script>alert(1)</script>").replace("hospital", '<img src=x onerror="y()">')
    d = word_diff(canonical(), DiffText(evil, links=(("<b>x</b>", "javascript:alert(1)", 0),)))
    for html in (render_side(d, "canonical"), render_side(d, "member"), render_inline(d)):
        assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "<script>alert(1)</script>" in text_of(render_side(d, "member"))
    assert '<img src=x onerror="y()">' in text_of(render_side(d, "member"))


def test_identical_texts_mark_nothing() -> None:
    d = word_diff(canonical(), canonical())
    assert not d.pairs and not d.member.holes and not [m for m in d.member.marks if m.kind != "orphan"]
