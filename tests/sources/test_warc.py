"""WARC reading: HTML responses become Pages, everything else is skipped or reported, faults never crash."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest
from warcio.warcwriter import WARCWriter

from pipeline.errors import HTTPStatusError, NotHTML, ResponseTooLarge, WarcError
from pipeline.records import Page
from pipeline.sources.warc import is_html, iter_warc
from tests.support.warc import ODD_URI, article, warc_record, write_sample_warc


@pytest.mark.parametrize("compressed", [True, False])
def test_html_responses_become_pages(tmp_path: Path, compressed: bool) -> None:
    path = tmp_path / ("a.warc.gz" if compressed else "a.warc")
    write_sample_warc(path, gzip_records=compressed)
    items = list(iter_warc(path))
    pages = [item for item in items if isinstance(item, Page)]
    errors = [item for item in items if not isinstance(item, Page)]
    assert [page.url for page in pages] == [ODD_URI, "http://example.com/story/1"]  # byte for byte
    assert pages[0].body == article(0)
    assert pages[0].status == 200
    assert pages[0].headers["content-type"] == "text/html; charset=utf-8"
    assert pages[0].headers["set-cookie"] == "a=1, b=2"
    assert "content-length" not in pages[0].headers
    assert pages[0].fetched_at is not None
    assert [type(e) for e in errors] == [NotHTML, HTTPStatusError]  # png reported; request/metadata/301 skipped
    assert errors[0].url == "http://example.com/logo.png" and "not HTML" in errors[0].message
    assert errors[1].status == 404


def test_encoded_payload_is_decoded(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True)
    body = gzip.compress(article(7))
    chunked = hex(len(body))[2:].encode() + b"\r\n" + body + b"\r\n0\r\n\r\n"
    encoding = [("Content-Encoding", "gzip"), ("Transfer-Encoding", "chunked")]
    warc_record(writer, "http://example.com/z", chunked, extra=encoding)
    (tmp_path / "z.warc.gz").write_bytes(buffer.getvalue())
    (page,) = list(iter_warc(tmp_path / "z.warc.gz"))
    assert isinstance(page, Page) and page.body == article(7)
    assert "content-encoding" not in page.headers and "transfer-encoding" not in page.headers


def test_html_sniffed_when_type_missing(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=False)
    warc_record(writer, "http://example.com/untyped", article(1), content_type=None)
    warc_record(writer, "http://example.com/data", b'{"not": "html"}', content_type=None)
    (tmp_path / "u.warc").write_bytes(buffer.getvalue())
    items = list(iter_warc(tmp_path / "u.warc"))
    assert isinstance(items[0], Page) and isinstance(items[1], NotHTML)
    assert is_html("application/xhtml+xml", b"") and not is_html("image/png", b"<html>")


@pytest.mark.parametrize("compressed", [True, False])
@pytest.mark.parametrize("keep", [0.55, 0.8, 0.95])
def test_truncated_warc_keeps_good_records_then_reports(tmp_path: Path, compressed: bool, keep: float) -> None:
    data = write_sample_warc(tmp_path / "full.warc", gzip_records=compressed, pages=6, noise=False)
    cut = tmp_path / ("cut.warc.gz" if compressed else "cut.warc")
    cut.write_bytes(data[: int(len(data) * keep)])
    items = list(iter_warc(cut))
    assert items, "a truncated WARC must report something"
    *good, last = items
    assert isinstance(last, WarcError)
    assert all(isinstance(item, Page) for item in good)
    assert 1 <= len(good) < 6
    assert [page.body for page in good] == [article(n) for n in range(len(good))]  # no short bodies


@pytest.mark.parametrize("content", [b"", b"this is not a warc at all\n" * 20, b"\x1f\x8b\x08\x00garbage"])
def test_garbage_files_are_an_error_item(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "bad.warc.gz").write_bytes(content)
    items = list(iter_warc(tmp_path / "bad.warc.gz"))
    assert len(items) == 1 and isinstance(items[0], WarcError)


def test_unreadable_path_is_an_error_item(tmp_path: Path) -> None:
    (item,) = list(iter_warc(tmp_path / "missing.warc.gz"))
    assert isinstance(item, WarcError) and "cannot read" in item.message


def test_record_over_cap_is_reported(tmp_path: Path) -> None:
    write_sample_warc(tmp_path / "a.warc.gz", noise=False)
    items = list(iter_warc(tmp_path / "a.warc.gz", max_bytes=50))
    assert all(isinstance(item, ResponseTooLarge) for item in items) and len(items) == 2


def test_target_uri_kept_as_written(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True)
    for uri in ("http://example.com/a page?q=x y", "<http://example.com/wget>"):
        warc_record(writer, uri, article(1))
    (tmp_path / "w.warc.gz").write_bytes(buffer.getvalue())
    pages = list(iter_warc(tmp_path / "w.warc.gz"))
    assert [p.url for p in pages if isinstance(p, Page)] == [
        "http://example.com/a page?q=x y",
        "<http://example.com/wget>",
    ]
