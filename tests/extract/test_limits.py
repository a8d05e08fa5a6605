"""The extraction limits one by one, on small pages with small limits: a page past a limit is reduced
and warned about (or refused, past the parser's own depth limit); a page within every limit is read
exactly as without them."""

from __future__ import annotations

import dataclasses
import html

import pytest

from pipeline.errors import PageTooComplex
from pipeline.extract import DEFAULT_LIMITS, ExtractLimits, extract
from pipeline.records import Article, Page
from pipeline.settings import Settings
from tests.support.hostile import STORY, page_html, story_html

URL = "https://river.example/news/towpath"
#: Limits far below the defaults, so that small pages can cross them.
SMALL = ExtractLimits(max_elements=60, max_links=10, max_attribute_chars=5_000, max_script_chars=20_000,
                      max_paragraphs=12, max_text_chars=2_000, max_word_chars=40, max_field_chars=50)


def read(body: str, limits: ExtractLimits = SMALL) -> tuple[Article, str | None]:
    return extract(Page(URL, body.encode(), headers={"content-type": "text/html; charset=utf-8"}), limits)


def linked_paragraph(start: int, count: int) -> str:
    links = " ".join(f'<a href="/story/{i}">story number {i}</a>' for i in range(start, start + count))
    return f"<p>More on the towpath closure in {links} and elsewhere.</p>"


def assert_links_point_into_the_text(article: Article) -> None:
    for link in article.links:
        assert article.text[link.start : link.start + len(link.text)] == link.text
        assert link.text in article.paragraphs[link.paragraph]


def test_a_page_within_every_limit_is_read_as_without_limits() -> None:
    body = page_html(f"<article>{story_html()}{linked_paragraph(0, 3)}</article>")
    generous = ExtractLimits(**{field.name: 10**9 for field in dataclasses.fields(ExtractLimits)
                                 if isinstance(getattr(DEFAULT_LIMITS, field.name), int)})
    article, warning = read(body, SMALL)
    assert warning is None
    assert (article, warning) == read(body, generous) == read(body, DEFAULT_LIMITS)


def test_links_past_the_limit_cut_the_page_before_them() -> None:
    body = page_html(f"<article>{story_html()}" + "".join(linked_paragraph(i * 4, 4) for i in range(6)) + "</article>")
    article, warning = read(body)
    assert "page cut after its first 10 links (extract_max_links)" in warning
    assert len(article.links) < 10  # the navigation's link counts too
    assert [p for p in article.paragraphs if p in STORY] == STORY  # the article before the cut is whole
    assert "story number 7" in article.text and "story number 12" not in article.text
    assert_links_point_into_the_text(article)


def test_elements_past_the_limit_cut_the_page_before_them() -> None:
    spans = "".join(f"<li><span>Towpath notice {i}</span></li>" for i in range(40))
    article, warning = read(page_html(f"<article>{story_html()}<ul>{spans}</ul></article>"))
    assert "page cut after its first 60 elements (extract_max_elements)" in warning
    assert STORY[0] in article.paragraphs and "notice 39" not in article.text


def test_paragraphs_past_the_limit_are_not_read_nor_kept() -> None:
    filler = "".join(f"<p>Update {i} on the diversion through the meadows.</p>" for i in range(30))
    article, warning = read(page_html(f"<article>{story_html()}{filler}</article>"))
    assert "page cut after its first 12 paragraphs (extract_max_paragraphs)" in warning
    assert len(article.paragraphs) <= 12 and article.paragraphs[:4] == tuple(STORY)
    # blocks that are not <p> count once extracted
    blocks = "".join(f"<h2>Notice {i}</h2><p>Update {i} on the diversion.</p>" for i in range(10))
    article, warning = read(page_html(f"<article>{blocks}</article>"))
    assert "article cut to its first 12 paragraphs (extract_max_paragraphs)" in warning
    assert len(article.paragraphs) == 12


def test_the_text_is_cut_at_a_word_within_the_limit_and_its_links_follow() -> None:
    long_story = story_html(STORY * 3) + linked_paragraph(0, 3)
    article, warning = read(page_html(f"<article>{long_story}</article>"))
    assert "article text cut at 2000 characters (extract_max_text_chars)" in warning
    assert len(article.text) <= 2_000 and article.text == "\n\n".join(article.paragraphs)
    last = article.paragraphs[-1]
    whole = next(p for p in STORY if p.startswith(last))
    assert len(last) < len(whole) and whole[len(last)] == " "  # cut, after a whole word
    assert_links_point_into_the_text(article)


def test_a_long_word_keeps_its_first_characters_and_links_after_it_keep_their_place() -> None:
    word = "x" * 500
    body = page_html(f'<article>{story_html()}<p>Before {word} after, see <a href="/map">the map</a> '
                     f'and <a href="/long">{"y" * 90}</a> too.</p></article>')
    article, warning = read(body)
    assert "2 word(s) over 40 characters cut (extract_max_word_chars)" in warning
    assert max(len(w) for w in article.text.split()) == 40
    assert "Before " + "x" * 40 + " after" in article.text
    by_href = {link.href: link for link in article.links}
    assert by_href["https://river.example/map"].text == "the map"
    assert by_href["https://river.example/long"].text == "y" * 40
    assert_links_point_into_the_text(article)


def test_attribute_values_past_the_limit_are_dropped() -> None:
    state = "s" * 6_000
    body = page_html(f'<article data-state="{state}">{story_html()}'
                     f'<p>Read <a href="https://river.example/?q={state}">the notice</a> here.</p></article>')
    article, warning = read(body)
    assert "2 attribute value(s) over 5000 characters dropped" in warning
    assert STORY[0] in article.paragraphs
    assert all(len(link.href) < 5_000 for link in article.links)


def test_script_bulk_past_the_limit_is_emptied_but_json_ld_is_kept() -> None:
    ld = '{"@context":"https://schema.org","@type":"NewsArticle","author":{"@type":"Person","name":"Ada Brook"}}'
    code = "var towpath = 1;" * 2_000
    head = f'<script type="application/ld+json">{ld}</script><script>{code}</script><style>p{{}}</style>'
    article, warning = read(page_html(f"<article>{story_html()}</article>", head=head))
    assert "script and style text over 20000 characters dropped" in warning
    assert article.byline == "Ada Brook" and article.paragraphs == tuple(STORY)
    article, warning = read(page_html(f"<article>{story_html()}</article>", head=head), DEFAULT_LIMITS)
    assert warning is None and article.byline == "Ada Brook"


def test_fields_past_the_limit_are_cut() -> None:
    title = "Towpath " * 20
    article, warning = read(page_html(f"<article>{story_html()}</article>", title=html.escape(title)))
    assert "a field over 50 characters cut (extract_max_field_chars)" in warning
    assert len(article.title) == 50 and title.startswith(article.title)


def test_tags_inside_comments_and_scripts_are_not_counted() -> None:
    fake = "".join(f'<a href="/x{i}">x</a><p>x</p>' for i in range(40))
    body = page_html(f"<!-- {fake} --><article>{story_html()}</article>",
                     head=f"<script>var html = '{fake}';</script>")
    article, warning = read(body)
    assert warning is None and article.paragraphs == tuple(STORY)


def test_nul_characters_are_dropped_as_a_browser_drops_them() -> None:
    story = story_html([p.replace(" ", " \x00") for p in STORY])
    article, warning = read(page_html(f"<article>{story}</article>"))
    assert warning == "NUL characters dropped"
    assert article.paragraphs == tuple(STORY)


def test_a_page_nested_past_the_parsers_depth_limit_is_refused() -> None:
    body = page_html("<div>" * 300 + f"<article>{story_html()}</article>" + "</div>" * 300)
    with pytest.raises(PageTooComplex, match="Excessive depth") as raised:
        read(body, DEFAULT_LIMITS)
    assert (raised.value.stage, raised.value.kind, raised.value.url) == ("extract", "PageTooComplex", URL)
    article, _ = read(page_html("<div>" * 200 + f"<article>{story_html()}</article>" + "</div>" * 200),
                      DEFAULT_LIMITS)
    assert article.paragraphs == tuple(STORY)


def test_limits_come_from_the_settings_and_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRINT_EXTRACT_MAX_LINKS", "77")
    limits = ExtractLimits.from_settings(Settings())
    assert limits == dataclasses.replace(DEFAULT_LIMITS, max_links=77)
    assert ExtractLimits.from_settings(Settings(_env_file=None, extract_max_links=1)).max_links == 1
    with pytest.raises(ValueError, match="max_text_chars"):
        ExtractLimits(max_text_chars=0)
    monkeypatch.setenv("REPRINT_EXTRACT_MAX_WORD_CHARS", "0")
    with pytest.raises(ValueError):
        Settings()
