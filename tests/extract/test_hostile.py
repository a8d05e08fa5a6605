"""The hostile HTML corpus (tests/support/hostile.py) through the extraction API and through `reprint ingest`.

Every page ends, within the default bounds (limits, deadline, memory cap), as an article, reduced with a
warning that says how, or as a clear error recorded against it; the ordinary pages of the same run are
unaffected. A page past the deadline gets PageTimeout, keeps its stored HTML, and a later run extracts it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.errors import DecodeError, EmptyPage, ExtractError, PageTooComplex
from pipeline.extract import DEFAULT_LIMITS, ExtractLimits, IsolatedExtractor, extract
from pipeline.records import Article, Page
from pipeline.settings import Settings
from pipeline.store import Store
from tests.support.cli import cli
from tests.support.hostile import BODY_CAP, HOSTILE, STORY
from tests.support.pages import original_page, unrelated_page
from tests.support.warc import write_warc

pytestmark = pytest.mark.usefixtures("reprint_env")

HTML = "text/html; charset=utf-8"
#: Each page's outcome: an error type, or the article with a warning holding this text (None: no warning).
EXPECTED: dict[str, type[ExtractError] | str | None] = {
    "nested-100k": PageTooComplex,
    "links-200k": "page cut after its first 10000 links (extract_max_links)",
    "paragraphs-60k": "page cut after its first 5000 paragraphs (extract_max_paragraphs)",
    "attribute-5mb": "1 attribute value(s) over 1000000 characters dropped",
    "word-1mb": "1 word(s) over 1000 characters cut (extract_max_word_chars)",
    "nul-bytes": "NUL characters dropped",
    "mixed-encodings": DecodeError,
    "comment-bomb": None,
    "deep-tables": PageTooComplex,
    "one-script": EmptyPage,
}
ORIGINAL = "https://wire.example/news/pier"
UNRELATED = "https://echo.example/news/otters"


def url_of(name: str) -> str:
    return f"https://hostile.example/{name}"


def assert_within(article: Article, limits: ExtractLimits) -> None:
    assert len(article.links) <= limits.max_links
    assert len(article.paragraphs) <= limits.max_paragraphs
    assert len(article.text) <= limits.max_text_chars
    assert max(map(len, article.text.split())) <= limits.max_word_chars
    assert all(len(link.href) <= limits.max_attribute_chars for link in article.links)
    assert len(article.title) <= limits.max_field_chars


@pytest.fixture(scope="module")
def isolated() -> Iterator[IsolatedExtractor]:
    with IsolatedExtractor.from_settings(Settings()) as extractor:
        yield extractor


def test_the_corpus_is_what_it_says() -> None:
    assert set(EXPECTED) == set(HOSTILE)
    assert all(len(make()) < BODY_CAP for make in HOSTILE.values())


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_each_page_ends_as_an_article_or_a_clear_error(name: str, isolated: IsolatedExtractor) -> None:
    page = Page(url_of(name), HOSTILE[name](), headers={"content-type": HTML})
    expected = EXPECTED[name]
    if isinstance(expected, type):
        with pytest.raises(expected) as raised:
            isolated.extract(page)
        assert (raised.value.stage, raised.value.url) == ("extract", page.url)
        return
    article, warning = isolated.extract(page)
    assert_within(article, DEFAULT_LIMITS)
    assert [p for p in article.paragraphs if p in STORY] == STORY  # the article inside is whole
    assert warning == expected if expected is None else expected in warning


def test_reprint_ingest_records_each_page_and_the_ordinary_ones_are_unaffected(sqlite_url: str,
                                                                                tmp_path: Path) -> None:
    hostile = {url_of(name): make() for name, make in HOSTILE.items()}
    records = [(ORIGINAL, original_page(), HTML), *((url, body, HTML) for url, body in hostile.items()),
               (UNRELATED, unrelated_page(), HTML)]
    warc = tmp_path / "hostile.warc.gz"
    write_warc(warc, records)
    result = cli("ingest", str(warc), "--db", sqlite_url, "--no-progress")
    assert result.exit_code == 1, result.output  # some pages are errors; the run went to its end
    store = Store(sqlite_url)
    try:
        errors = {e.url: (e.stage, e.kind) for e in store.errors() if e.level == "error"}
        warnings = {e.url: e.message for e in store.errors() if e.level == "warning"}
        for name, expected in EXPECTED.items():
            url = url_of(name)
            page_id, _hash, article_id, *_rest = store.stored_page(url)
            assert store.page_html(page_id) == hostile[url]  # every page is kept, article or not
            if isinstance(expected, type):
                assert errors[url] == ("extract", expected.__name__) and article_id is None
            else:
                assert article_id is not None and url not in errors
                assert_within(store.articles([article_id])[article_id], DEFAULT_LIMITS)
                assert (expected in warnings[url]) if expected else url not in warnings
        for url, body in ((ORIGINAL, original_page()), (UNRELATED, unrelated_page())):
            _page_id, _hash, article_id, *_rest = store.stored_page(url)
            stored = store.articles([article_id])[article_id]
            alone, _ = extract(Page(url, body, headers={"content-type": HTML}))
            assert (stored.text, stored.title, stored.links) == (alone.text, alone.title, alone.links)
            assert url not in errors and url not in warnings
        assert store.counts()["articles"] == 2 + sum(not isinstance(e, type) for e in EXPECTED.values())
    finally:
        store.close()


def test_a_page_past_the_deadline_is_page_timeout_and_a_later_run_extracts_it(
        sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slow = url_of("links-200k")
    body = HOSTILE["links-200k"]()  # a second of work at least, where the ordinary pages take milliseconds
    warc = tmp_path / "slow.warc.gz"
    write_warc(warc, [(ORIGINAL, original_page(), HTML), (slow, body, HTML), (UNRELATED, unrelated_page(), HTML)])
    monkeypatch.setenv("REPRINT_EXTRACT_DEADLINE", "0.25")
    first = cli("ingest", str(warc), "--db", sqlite_url, "--no-progress")
    assert first.exit_code == 1 and "PageTimeout" in first.output
    store = Store(sqlite_url)
    try:
        (error,) = [e for e in store.errors() if e.level == "error"]
        assert (error.url, error.stage, error.kind) == (slow, "extract", "PageTimeout")
        assert "0.25 s deadline" in error.message
        page_id, _hash, article_id, *_rest = store.stored_page(slow)
        assert article_id is None and store.page_html(page_id) == body  # the page is kept for a retry
        assert all(store.stored_page(url)[2] is not None for url in (ORIGINAL, UNRELATED))
        monkeypatch.delenv("REPRINT_EXTRACT_DEADLINE")
        again = cli("ingest", str(warc), "--db", sqlite_url, "--no-progress")
        assert again.exit_code == 0, again.output
        assert store.stored_page(slow)[2] is not None
        assert store.counts()["articles"] == 3
    finally:
        store.close()
