"""Extract stage on its own: decoding, the Article's fields, links and their offsets, attribution lines,
JSON-LD read with a bounded fallback, and the errors for pages that hold no article."""

from __future__ import annotations

import html
import json

import pytest
from pydantic import ValidationError

from pipeline.errors import EmptyPage, NotHTML
from pipeline.extract import extractor
from pipeline.extract.extractor import JSON_LD_FALLBACK_CHARS, decode_html, extract
from pipeline.extract.limits import ExtractLimits
from pipeline.records import Page
from pipeline.settings import Settings
from pipeline.text import shingles, tokenize

URL = "https://herald.example/news/2025/pier-rebuild"
PARAGRAPHS = [
    "The harbour board voted on Tuesday to rebuild the old stone pier, ending a decade of argument over "
    "whether the crumbling structure should be repaired, replaced or left to the sea.",
    "Engineers told the board that the pier's foundations had shifted after the winter storms, and that "
    "without work the outer section could collapse within five years.",
    "Fishing crews, who still land most of their catch at the pier, welcomed the vote but asked that work "
    "be phased so that at least one berth stays open through the summer season.",
]


def page_html(*, head: str = "", body_extra: str = "", byline: bool = True, paragraphs: list[str] | None = None,
              lang: str = "en") -> str:
    paras = "\n".join(f"<p>{p}</p>" for p in (paragraphs or [html.escape(p) for p in PARAGRAPHS]))
    author = '<p class="byline">By Rosa Lindgren</p>' if byline else ""
    return f"""<!DOCTYPE html><html lang="{lang}"><head><title>Pier to be rebuilt | Westmere Herald</title>
<meta property="og:site_name" content="Westmere Herald">{head}</head>
<body><nav><a href="/">Home</a> <a href="/news">News</a></nav>
<article><h1>Pier to be rebuilt</h1>{author}<time datetime="2025-06-12">12 June 2025</time>
{paras}{body_extra}</article><footer>&copy; Westmere Herald</footer></body></html>"""


def test_the_article_carries_what_the_canonicalizer_needs() -> None:
    credit = ('<p>This article was originally published by '
              '<a href="https://origin.example/story">The Origin</a>.</p>')
    head = '<link rel="canonical" href="/news/2025/pier-rebuild?ref=home">'
    article, warning = extract(Page(URL, page_html(head=head, body_extra=credit).encode(),
                                    headers={"content-type": "text/html; charset=utf-8"}))
    assert warning is None
    assert article.url == URL
    assert article.title == "Pier to be rebuilt"
    assert article.byline == "Rosa Lindgren"
    assert article.published == "2025-06-12"
    assert article.site == "Westmere Herald"
    assert article.language == "en"
    assert article.canonical_url == "https://herald.example/news/2025/pier-rebuild?ref=home"
    for paragraph in PARAGRAPHS:
        assert paragraph in article.paragraphs
    assert article.text == "\n\n".join(article.paragraphs)
    assert article.attribution and "originally published" in article.attribution[0]
    assert article.attribution_urls == ("https://origin.example/story",)


def test_links_keep_their_text_offset_and_paragraph_and_resolve_against_the_page() -> None:
    paragraphs = [
        html.escape(PARAGRAPHS[0]) + ' See <a href="#comments">the comments</a> below.',
        html.escape(PARAGRAPHS[1]) + ' Read <a href="/reports/pier.pdf">the engineers\' report</a> first.',
        html.escape(PARAGRAPHS[2]) + ' Photos by <a href="//cdn.example/pier">our photographer</a> here.',
    ]
    article, _ = extract(Page(URL, page_html(paragraphs=paragraphs).encode()))
    by_text = {link.text: link for link in article.links}
    assert by_text["the comments"].href == URL + "#comments"  # a fragment stays on this page
    assert by_text["the engineers' report"].href == "https://herald.example/reports/pier.pdf"
    assert by_text["our photographer"].href == "https://cdn.example/pier"  # the page's scheme
    for link in article.links:
        assert article.text[link.start : link.start + len(link.text)] == link.text
        assert link.text in article.paragraphs[link.paragraph]


def test_charset_comes_from_the_header_then_the_meta_tag() -> None:
    text = page_html(paragraphs=[html.escape(p) + " Café déjà vu." for p in PARAGRAPHS])
    latin = text.encode("latin-1")
    decoded, warning = decode_html(Page(URL, latin, headers={"content-type": "text/html; charset=ISO-8859-1"}))
    assert "Café déjà vu" in decoded and warning is None
    with_meta = text.replace("<head>", '<head><meta charset="iso-8859-1">').encode("latin-1")
    decoded, warning = decode_html(Page(URL, with_meta))
    assert "Café déjà vu" in decoded and warning is None
    # the header wins over the meta tag
    decoded, _ = decode_html(Page(URL, text.replace("<head>", '<head><meta charset="iso-8859-1">').encode(),
                                  headers={"content-type": "text/html; charset=utf-8"}))
    assert "Café déjà vu" in decoded


def test_an_unknown_or_wrong_charset_is_a_warning_not_a_loss() -> None:
    text = page_html(paragraphs=[html.escape(p) + " Café." for p in PARAGRAPHS])
    article, warning = extract(Page(URL, text.encode(), headers={"content-type": "text/html; charset=x-klingon"}))
    assert "Café" in article.text and "unknown charset 'x-klingon'" in warning
    undeclared = text.replace("<head>", '<head><meta charset="utf-8">').encode("cp1252")
    article, warning = extract(Page(URL, undeclared))
    assert "does not decode" in warning and "by detection" in warning
    assert "Caf" in article.text


def _json_ld_page(block: str) -> bytes:
    head = f'<script type="application/ld+json">{block}</script>'
    return page_html(head=head, byline=False).encode()


def test_json_ld_gives_the_byline() -> None:
    block = json.dumps({"@context": "https://schema.org", "@type": "NewsArticle",
                        "author": {"@type": "Person", "name": "Mara Quist"}})
    article, _ = extract(Page(URL, _json_ld_page(block)))
    assert article.byline == "Mara Quist"


def test_broken_json_ld_is_read_by_the_fallback_within_its_bound() -> None:
    """A block that is not JSON still gives its early fields; past the bound nothing is read, so one
    huge broken block (a live blog's) cannot cost seconds of regular expressions."""
    broken = '"headline":"Pier" "section":"News"}'  # no comma between two members: not JSON
    early = '{"@context":"https://schema.org","@type":"NewsArticle","author":{"@type":"Person",' \
            '"name":"Mara Quist"},' + broken
    article, _ = extract(Page(URL, _json_ld_page(early)))
    assert article.byline == "Mara Quist"
    filler = ",".join(f'"k{i}":"{"v" * 40}"' for i in range(JSON_LD_FALLBACK_CHARS // 40))
    late = '{"@context":"https://schema.org","@type":"NewsArticle",' + filler + \
           ',"author":{"@type":"Person","name":"Mara Quist"},' + broken
    article, _ = extract(Page(URL, _json_ld_page(late)))
    assert article.byline is None
    assert PARAGRAPHS[0] in article.text  # the rest of the page is read as usual


@pytest.mark.parametrize(
    ("body", "headers", "error"),
    [
        (b"", {}, EmptyPage),
        (b"   \n ", {"content-type": "text/html"}, EmptyPage),
        (b"\x89PNG\r\n\x1a\n\x00\x00", {"content-type": "image/png"}, NotHTML),
        (b"%PDF-1.7 binary stream", {}, NotHTML),
        (b"<html><head><title>x</title></head><body></body></html>", {"content-type": "text/html"}, EmptyPage),
    ],
)
def test_pages_without_an_article_raise_a_clear_error(body: bytes, headers: dict[str, str], error: type) -> None:
    with pytest.raises(error) as raised:
        extract(Page(URL, body, headers=headers))
    assert raised.value.url == URL and raised.value.message


def test_a_page_with_only_a_description_keeps_it_and_says_so() -> None:
    head = '<meta name="description" content="The harbour board voted to rebuild the old stone pier.">'
    body = f"<!DOCTYPE html><html><head><title>Pier</title>{head}</head><body><nav>Home</nav></body></html>"
    article, warning = extract(Page(URL, body.encode()))
    assert article.text == "The harbour board voted to rebuild the old stone pier."
    assert "kept the page description" in warning


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_shingles_are_every_run_of_n_tokens(n: int) -> None:
    tokens = tokenize(" ".join(PARAGRAPHS))
    expected = {" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}
    assert shingles(tokens, n) == expected
    assert shingles(tokens[: n - 1], n) == ({" ".join(tokens[: n - 1])} if n > 1 else set())
    assert shingles((), n) == set()


def _extraction_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record, for every run of trafilatura's extraction, whether it took the fast path (the run itself is real)."""
    calls: list[bool] = []
    real = extractor.trafilatura.bare_extraction

    def recorded(*args, **kwargs):
        calls.append(bool(kwargs.get("fast")))
        return real(*args, **kwargs)

    monkeypatch.setattr(extractor.trafilatura, "bare_extraction", recorded)
    return calls


def test_the_fast_path_alone_reads_an_ordinary_page_as_the_full_cascade_does(monkeypatch: pytest.MonkeyPatch) -> None:
    page = Page(URL, page_html().encode(), headers={"content-type": "text/html; charset=utf-8"})
    calls = _extraction_calls(monkeypatch)
    auto, _ = extract(page)
    assert calls == [True]  # the body covers the page's paragraphs: no fallback extractor ran
    calls.clear()
    always, _ = extract(page, ExtractLimits(fallbacks="always"))
    assert calls == [False]
    assert auto == always
    assert auto.paragraphs[-3:] == tuple(PARAGRAPHS)


def test_a_fast_body_that_leaves_most_of_the_paragraph_text_out_gets_the_fallbacks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    teasers = "".join(f"<p>Teaser {i}: the council, the pier and the harbour board in another week of news.</p>"
                      for i in range(30))
    body = page_html().replace("<footer>", f'<aside class="related">{teasers}</aside><footer>')
    calls = _extraction_calls(monkeypatch)
    article, _ = extract(Page(URL, body.encode(), headers={"content-type": "text/html; charset=utf-8"}))
    assert calls == [True, False]  # the fast body held under 60% of the <p> text: the cascade ran again
    assert article.paragraphs[-3:] == tuple(PARAGRAPHS)


def test_the_fallbacks_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="fallbacks must be one of auto, always"):
        ExtractLimits(fallbacks="sometimes")
    with pytest.raises(ValidationError, match="extract_fallbacks"):
        Settings(extract_fallbacks="sometimes")
    assert ExtractLimits.from_settings(Settings(extract_fallbacks="always")).fallbacks == "always"
