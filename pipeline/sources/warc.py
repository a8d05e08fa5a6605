"""WARC (and ARC) files → Pages, one per HTML ``response`` record, never crashing on a bad file.

warcio is lenient to a fault: a truncated record comes back short, and a truncated gzip member or a
half-written record header just ends the iteration silently. So three things are checked on top:
the record's declared length was fully present, the iteration ended exactly at the end of the file,
and the last gzip member was complete. Any fault yields one ``WarcError`` after the good records
before it, and reading stops (what follows a fault cannot be trusted to be framed correctly).

Resuming: ``iter_warc_offsets`` pairs every item with the byte offset of the next record, so a caller
that commits items in order can checkpoint that offset and a crashed run can continue there
(``WarcScope.start_offset``); ``WarcScope`` also filters by host and by WARC-Date.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator

from pipeline.errors import HTTPStatusError, NotHTML, ReprintError, ResponseTooLarge, WarcError
from pipeline.records import Page

HTML_TYPES = ("text/html", "application/xhtml+xml")
_HTML_SNIFF = re.compile(rb"<\s*(!doctype\s+html|html|head|body|title|meta|p|div|article)[\s>/]", re.I)
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "text/plain", "unk", "unknown", "no-type"})


class _CheckedIterator(ArchiveIterator):
    """ArchiveIterator that remembers whether the last gzip member was cut short, and keeps the
    WARC-Target-URI exactly as written (warcio strips ``<>`` and turns spaces into %20 in place)."""

    gzip_truncated = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tidy = self.loader._ensure_target_uri_format

        def keep_raw(rec_headers: Any) -> str | None:
            raw = rec_headers.get_header("WARC-Target-URI")
            fixed = tidy(rec_headers)  # warcio parses with the tidied URI ...
            if raw is not None and fixed != raw:
                rec_headers.replace_header("WARC-Target-URI", raw)  # ... reprint reports the written one
            return fixed

        self.loader._ensure_target_uri_format = keep_raw

    def close(self) -> None:
        reader = self.reader
        if reader is not None:
            decompressor = getattr(reader, "decompressor", None)
            self.gzip_truncated = decompressor is not None and not getattr(decompressor, "eof", True)
        super().close()


def is_html(content_type: str, payload_head: bytes) -> bool:
    """HTML by declared type, or, when the type is missing or generic, by a look at the first bytes."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in HTML_TYPES:
        return True
    return kind in _GENERIC_TYPES and bool(_HTML_SNIFF.search(payload_head[:2048]))


@dataclass(frozen=True, slots=True)
class WarcScope:
    """Which part of a WARC to read: where to start, and which records to keep.

    - ``start_offset``: byte offset of a record boundary (as yielded by ``iter_warc_offsets``) to resume
      from; the file header is still read from 0 to learn the format. A CC-NEWS file is one gzip member
      per record, so a record boundary is a place a fresh decompressor can start.
    - ``hosts``: keep only response records whose WARC-Target-URI host is one of these or a subdomain
      of one (``www.`` ignored on both sides). A crawl archive holds every site; a run may want a few.
    - ``since`` / ``until``: keep only records whose WARC-Date is in ``[since, until)`` (naive datetimes
      are UTC). A record without a readable WARC-Date is dropped when either bound is set, since it
      cannot be shown to be inside the window.
    """

    start_offset: int = 0
    hosts: frozenset[str] | None = None
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def build(
        cls,
        start_offset: int = 0,
        hosts: Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> WarcScope:
        """Normalises hosts (lower case, no ``www.``) and dates (aware, UTC when naive)."""
        wanted = frozenset(_bare_host(h) for h in hosts if h.strip()) if hosts is not None else None
        return cls(start_offset, wanted, _aware(since), _aware(until))

    def at(self, offset: int) -> WarcScope:
        """The same filters, reading from ``offset`` (a committed checkpoint)."""
        return dataclasses.replace(self, start_offset=offset)

    def filter_key(self) -> str:
        """The filters as text: part of a checkpoint's key, so a run with other filters starts afresh
        (its records before another run's checkpoint were never read)."""
        hosts = ",".join(sorted(self.hosts)) if self.hosts is not None else "*"
        since = self.since.isoformat() if self.since else ""
        until = self.until.isoformat() if self.until else ""
        return f"hosts={hosts};since={since};until={until}"

    def keeps(self, uri: str, date: datetime | None) -> bool:
        if self.hosts is not None:
            host = _bare_host(urlsplit(uri.strip().strip("<>")).hostname or "")
            if not any(host == h or host.endswith("." + h) for h in self.hosts):
                return False
        if self.since is not None or self.until is not None:
            if date is None:
                return False
            date = _aware(date)
            if self.since is not None and date < self.since:
                return False
            if self.until is not None and date >= self.until:
                return False
        return True


def _bare_host(host: str) -> str:
    """Lower case, no trailing dot, no ``www.``, internationalised names in their ASCII (IDNA) form."""
    host = host.strip().lower().rstrip(".")
    if not host.isascii():
        with contextlib.suppress(UnicodeError):  # not a valid IDN: compared as written
            host = host.encode("idna").decode("ascii")
    return host[4:] if host.startswith("www.") else host


def _aware(when: datetime | None) -> datetime | None:
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when


def iter_warc(
    path: str | os.PathLike[str], *, max_bytes: int = 10 * 1024 * 1024, scope: WarcScope | None = None
) -> Iterator[Page | ReprintError]:
    """``iter_warc_offsets`` without the offsets."""
    for item, _offset in iter_warc_offsets(path, max_bytes=max_bytes, scope=scope):
        yield item


def iter_warc_offsets(
    path: str | os.PathLike[str], *, max_bytes: int = 10 * 1024 * 1024, scope: WarcScope | None = None
) -> Iterator[tuple[Page | ReprintError, int]]:
    """Pages of the HTML response records, in file order, interleaved with per-record problems, each
    with the offset where the *next* record starts: once the item is committed, that offset is the
    checkpoint a resumed run passes as ``WarcScope.start_offset`` (nothing committed is read twice).
    Problems with the file itself carry the offset reading stopped at.

    - HTML 2xx response → ``Page(url=WARC-Target-URI exactly, headers from the HTTP headers)``
    - non-HTML response → ``NotHTML``; HTML 4xx/5xx response → ``HTTPStatusError``; 3xx → skipped
    - request / metadata / warcinfo / revisit / resource records → skipped
    - payload over ``max_bytes`` → ``ResponseTooLarge``; undecodable payload → ``WarcError``
    - truncated or corrupt file → ``WarcError`` (last item)
    """
    scope = scope or WarcScope()
    location = Path(path)
    try:
        handle: IO[bytes] = open(location, "rb")  # noqa: SIM115 - closed in the finally below
        size = os.fstat(handle.fileno()).st_size
    except OSError as exc:
        yield WarcError(f"cannot read WARC: {exc.strerror or exc}", url=str(path)), 0
        return
    try:
        yield from _records(handle, size, str(path), max_bytes, scope)
    finally:
        handle.close()


def _sniff_format(handle: IO[bytes]) -> str | None:
    """``warc`` or ``arc`` from the first bytes (inside the first gzip member if compressed)."""
    head = handle.read(65536)
    handle.seek(0)
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(31).decompress(head, 64)
        except zlib.error:
            return None
    if head.startswith(b"WARC/"):
        return "warc"
    if head.startswith(b"filedesc://"):
        return "arc"
    return None


def _records(
    handle: IO[bytes], size: int, name: str, max_bytes: int, scope: WarcScope
) -> Iterator[tuple[Page | ReprintError, int]]:
    start = scope.start_offset
    if size == 0:
        yield WarcError("empty WARC file", url=name), 0
        return
    file_format = _sniff_format(handle)
    if file_format is None:
        yield WarcError("not a WARC or ARC file (no WARC/ or filedesc:// header)", url=name), 0
        return
    if not 0 <= start <= size:
        yield WarcError(f"resume offset {start} is outside the file ({size} bytes)", url=name), start
        return
    if start == size:
        return  # a finished file: nothing left
    handle.seek(start)
    iterator = _CheckedIterator(handle, arc2warc=file_format == "arc")
    iterator.known_format = file_format  # no guessing "ARC" for garbage in the middle of a WARC
    count = 0
    try:
        for record in iterator:
            offset = iterator.offset
            if record.rec_type is None or record.length is None:
                problem = f"malformed record header at offset {offset} after {count} record(s)"
                yield WarcError(problem, url=name), offset
                return
            item = None
            if record.rec_type != "response" or scope.keeps(
                record.rec_headers.get_header("WARC-Target-URI") or "", _warc_date(record)
            ):
                item = _convert(record, max_bytes)
            iterator.read_to_end()
            remaining = getattr(record.raw_stream, "limit", 0)
            if remaining:
                missing = f"record {count + 1} at offset {offset} is truncated ({remaining} bytes missing)"
                yield WarcError(missing, url=name), offset
                return
            count += 1
            if item is not None:
                yield item, iterator.offset  # read_to_end left it at the next record's start
    except Exception as exc:  # noqa: BLE001 - warcio fails in many ways on broken input; none may escape
        near = max(iterator.offset, 0)
        yield WarcError(f"corrupt WARC after {count} record(s), near offset {near}: {exc!r}", url=name), near
        return
    if iterator.gzip_truncated:
        problem = f"truncated gzip member after {count} record(s), near offset {iterator.offset}"
        yield WarcError(problem, url=name), iterator.offset
    elif iterator.offset != size:
        yield WarcError(
            f"{size - iterator.offset} unreadable bytes after {count} record(s) at offset {iterator.offset}",
            url=name,
        ), iterator.offset


def _convert(record: Any, max_bytes: int) -> Page | ReprintError | None:
    if record.rec_type != "response":
        return None
    uri: str = record.rec_headers.get_header("WARC-Target-URI") or ""
    http = record.http_headers
    if http is None:
        kind = record.rec_headers.get_header("Content-Type") or "no content type"
        return NotHTML(f"WARC response record is not HTTP ({kind})", url=uri)
    try:
        status = int(http.get_statuscode() or 0)
    except ValueError:
        status = 0
    content_type = http.get_header("Content-Type") or ""
    if 300 <= status < 400:
        return None
    try:
        payload = record.content_stream().read(max_bytes + 1)
    except Exception as exc:  # noqa: BLE001 - bad Content-Encoding / chunking of one record
        return WarcError(f"payload cannot be decoded: {exc!r}", url=uri)
    if not is_html(content_type, payload):
        return NotHTML(f"not HTML ({content_type or 'no content type'})", url=uri)
    if not 200 <= status < 300:
        return HTTPStatusError(f"HTTP {status} in WARC record", url=uri, status=status)
    if len(payload) > max_bytes:
        return ResponseTooLarge(f"record payload is over the {max_bytes}-byte cap", url=uri)
    headers: dict[str, str] = {}
    for key, value in http.headers:
        lower = key.lower()
        if lower in _WIRE_HEADERS:
            continue
        headers[lower] = f"{headers[lower]}, {value}" if lower in headers else value
    return Page(url=uri, body=payload, status=status, headers=headers, fetched_at=_warc_date(record))


def _warc_date(record: Any) -> datetime | None:
    value = record.rec_headers.get_header("WARC-Date")
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return None
