"""The error hierarchy. Every failure a source can cause is a ``ReprintError`` with a stage.

    ReprintError (stage, kind, url, message)
    ├── SourceError                 discover: a source cannot be read at all
    │   ├── WarcError               truncated or malformed WARC (earlier records are kept)
    │   ├── FeedError
    │   └── SitemapError
    ├── FetchError                  fetch: retry_after carries the server's Retry-After
    │   ├── HTTPStatusError         status
    │   ├── ResponseTooLarge, DeadlineExceeded, BlockedAddress, RobotsDisallowed,
    │   └── TooManyRedirects, UnsupportedContentType
    ├── ExtractError                extract: fetched, but no article
    │   ├── NotHTML, EmptyPage, DecodeError, PageTooComplex, PageOutOfMemory, ExtractorCrashed
    │   └── PageTimeout             past a deadline (stage extract, or dedup for matching)
    ├── ConfigError                 config: settings or the sources file
    └── UnexpectedError             anything else that broke one page; kind is the original type's name

Errors are data: every runner records them the same way (``pipeline.ingest.steps.record_error``), by
``stage``, ``kind``, ``url`` and ``message``; ``as_reprint_error`` wraps what is not one of ours.
"""

from __future__ import annotations


class ReprintError(Exception):
    """Base of every error reprint raises on purpose. ``stage`` names where it happened."""

    stage: str = "pipeline"

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.url = url

    @property
    def kind(self) -> str:
        return type(self).__name__

    def __str__(self) -> str:
        return f"{self.message} ({self.url})" if self.url else self.message


class SourceError(ReprintError):
    """A source cannot be read at all: unknown kind, unreadable path, malformed listing."""

    stage = "discover"


class WarcError(SourceError):
    """A WARC file is truncated or malformed; records before the fault are kept."""


class FetchError(ReprintError):
    """A URL could not be fetched. ``retry_after`` carries the server's Retry-After, when it sent one."""

    stage = "fetch"
    retry_after: float | None = None


class HTTPStatusError(FetchError):
    """The server answered with a non-success status."""

    def __init__(self, message: str, *, url: str | None = None, status: int = 0) -> None:
        super().__init__(message, url=url)
        self.status = status


class ResponseTooLarge(FetchError):
    """The body went past the size cap."""


class DeadlineExceeded(FetchError):
    """The request took longer than its wall-clock deadline."""


class BlockedAddress(FetchError):
    """The URL resolves to an address reprint may not connect to."""


class ExtractError(ReprintError):
    """A page was fetched but holds no article: not HTML, empty, undecodable."""

    stage = "extract"


class NotHTML(ExtractError):
    """The payload is not an HTML document."""


class EmptyPage(ExtractError):
    """The page has no article text."""


class DecodeError(ExtractError):
    """The bytes cannot be decoded in any declared or detected encoding."""


class PageTooComplex(ExtractError):
    """The HTML parser stopped before the end of the page (it nests past the parser's depth limit):
    what it read cannot be trusted to hold the article."""


class PageTimeout(ExtractError):
    """A page's work ran past its deadline and was stopped; the page stays stored for ``reprocess``. Extraction
    (``extract_deadline``: its process is killed) or dedup (``dedup_deadline``: matching stops between
    verifications, stage ``dedup``)."""

    def __init__(self, message: str, *, url: str | None = None, stage: str = "extract") -> None:
        super().__init__(message, url=url)
        self.stage = stage


class PageOutOfMemory(ExtractError):
    """Extraction needed more memory than ``extract_memory_mb`` allows. The page stays stored."""


class ExtractorCrashed(ExtractError):
    """The extraction process died (a signal, a crash in a C library) or could not be started."""


class ConfigError(ReprintError):
    """Settings or the sources file are wrong."""

    stage = "config"


class StaleSignatures(ConfigError):
    """The store's signatures were made by another fingerprint version than this code's: matching against them
    would miss copies. ``reprint index refingerprint`` brings them up to this version."""


class RobotsDisallowed(FetchError):
    """robots.txt forbids reprint's user agent to fetch the URL (or robots.txt is unreachable)."""


class TooManyRedirects(FetchError):
    """The redirect chain went past ``fetch_max_redirects``."""


class UnsupportedContentType(FetchError):
    """The server answered with a media type reprint never reads (images, video, PDF ...)."""


class FeedError(SourceError):
    """A feed (RSS, Atom, JSON Feed) cannot be parsed or is refused (entity expansion)."""


class SitemapError(SourceError):
    """A sitemap cannot be parsed, is refused (entity expansion) or nests too deep."""


class UnexpectedError(ReprintError):
    """Something outside the known failure modes broke one page; ``kind`` is the original type's name."""

    stage = "ingest"

    def __init__(self, err: BaseException, *, url: str | None = None, stage: str = "ingest") -> None:
        super().__init__(f"{type(err).__name__}: {err}", url=url)
        self.stage = stage
        self.original = type(err).__name__

    @property
    def kind(self) -> str:
        return self.original


def as_reprint_error(err: BaseException, url: str | None, stage: str) -> ReprintError:
    """``err`` itself when it is one of ours, else wrapped with the stage where it happened."""
    return err if isinstance(err, ReprintError) else UnexpectedError(err, url=url, stage=stage)
