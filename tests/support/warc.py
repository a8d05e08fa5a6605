"""WARC files for tests, written with warcio: single response records, files of given records, a small
sample with noise (request, metadata, non-HTML, 404 and 301 records), and a file of dated records."""

from __future__ import annotations

import io
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

ODD_URI = "http://Example.com/%7Ealice/Straße?b=2&a=1&utm_source=x#frag"


def article(n: int) -> bytes:
    """A tiny HTML page, different for every ``n``."""
    return f"<html><head><title>Story {n}</title></head><body><p>Story number {n}.</p></body></html>".encode()


def warc_record(
    writer: WARCWriter,
    uri: str,
    body: bytes,
    *,
    status: str = "200 OK",
    content_type: str | None = "text/html; charset=utf-8",
    extra: list[tuple[str, str]] | None = None,
) -> None:
    """Append one HTTP response record to a WARC (no Content-Type header when ``content_type`` is None)."""
    headers = [("Content-Type", content_type)] if content_type else []
    headers += extra or []
    headers.append(("Content-Length", str(len(body))))
    http = StatusAndHeaders(status, headers, protocol="HTTP/1.1")
    writer.write_record(writer.create_warc_record(uri, "response", payload=io.BytesIO(body), http_headers=http))


def write_warc(path: Path, records: list[tuple[str, bytes, str]], *, gzip_records: bool = True) -> bytes:
    """A WARC of (uri, body, content type) response records; returns its bytes."""
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=gzip_records)
    writer.write_record(writer.create_warcinfo_record(path.name, {"software": "reprint tests"}))
    for uri, body, content_type in records:
        warc_record(writer, uri, body, content_type=content_type)
    data = buffer.getvalue()
    path.write_bytes(data)
    return data


def write_sample_warc(path: Path, *, gzip_records: bool = True, pages: int = 2, noise: bool = True) -> bytes:
    """A small WARC: warcinfo, ``pages`` HTML responses (the first at ODD_URI), and, with ``noise``,
    a request record, a metadata record, a PNG response, a 404 page and a 301."""
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=gzip_records)
    writer.write_record(writer.create_warcinfo_record(path.name, {"software": "reprint tests"}))
    for n in range(pages):
        uri = ODD_URI if n == 0 else f"http://example.com/story/{n}"
        if noise and n == 0:
            req = StatusAndHeaders("GET /story HTTP/1.1", [("Host", "example.com")], is_http_request=True)
            writer.write_record(writer.create_warc_record(uri, "request", payload=io.BytesIO(b""), http_headers=req))
        warc_record(writer, uri, article(n), extra=[("Set-Cookie", "a=1"), ("set-cookie", "b=2")])
    if noise:
        meta = writer.create_warc_record("http://example.com/story/0", "metadata", payload=io.BytesIO(b"x: y\n"))
        writer.write_record(meta)
        warc_record(writer, "http://example.com/logo.png", b"\x89PNG\r\n\x1a\n....", content_type="image/png")
        warc_record(writer, "http://example.com/gone", b"<html><body>gone</body></html>", status="404 Not Found")
        warc_record(writer, "http://example.com/moved", b"", status="301 Moved", extra=[("Location", "/story/1")])
    data = buffer.getvalue()
    path.write_bytes(data)
    return data


RECORDS = [  # (uri, WARC-Date)
    ("https://www.alpha.example/a1", "2024-03-01T10:00:00Z"),
    ("https://beta.example/b1", "2024-03-01T23:59:59Z"),
    ("https://news.alpha.example/a2", "2024-03-02T00:00:00Z"),
    ("https://gamma.example/c1", "2024-03-02T12:00:00Z"),
    ("https://beta.example/b2", "2024-03-03T08:00:00Z"),
    ("https://notalpha.example/x", "2024-03-03T09:00:00Z"),
]


def write_dated(path: Path, *, gzip_records: bool = True) -> None:
    """A WARC of the RECORDS, each an HTML page of its URI with its own WARC-Date."""
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=gzip_records)
    writer.write_record(writer.create_warcinfo_record(path.name, {"software": "reprint tests"}))
    for uri, date in RECORDS:
        body = f"<html><head><title>{uri}</title></head><body><p>{uri}</p></body></html>".encode()
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))],
                                protocol="HTTP/1.1")
        record = writer.create_warc_record(uri, "response", payload=io.BytesIO(body), http_headers=http,
                                           warc_headers_dict={"WARC-Date": date})
        writer.write_record(record)
    path.write_bytes(buffer.getvalue())



def write_dated_pages(path: Path, records: list[tuple[str, bytes, str]]) -> None:
    """A WARC of (uri, HTML body, WARC-Date) response records."""
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True)
    writer.write_record(writer.create_warcinfo_record(path.name, {"software": "reprint tests"}))
    for uri, body, date in records:
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                           ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(uri, "response", payload=io.BytesIO(body), http_headers=http,
                                                      warc_headers_dict={"WARC-Date": date}))
    path.write_bytes(buffer.getvalue())
