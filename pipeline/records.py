"""The records that flow one way through the stages: Page → Article → Signature → ClusterDecision."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class Page:
    """Bytes as fetched (or read from a WARC / file), before any interpretation."""

    url: str
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    fetched_at: datetime | None = None
    final_url: str | None = None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


@dataclass(frozen=True, slots=True)
class Link:
    """An in-body hyperlink: its text, target, and where the text stood in the article text."""

    text: str
    href: str
    start: int
    paragraph: int


@dataclass(frozen=True, slots=True)
class Article:
    """What extraction keeps of a page: the text and what the canonicalizer needs to judge it."""

    url: str
    title: str
    text: str
    paragraphs: tuple[str, ...]
    links: tuple[Link, ...] = ()
    byline: str | None = None
    published: str | None = None
    site: str | None = None
    canonical_url: str | None = None
    language: str | None = None
    attribution: tuple[str, ...] = ()
    attribution_urls: tuple[str, ...] = ()

    def meta(self) -> dict[str, Any]:
        """The structured parts that are stored as JSON beside the text (paragraphs are the text split
        on blank lines, so they are not stored twice)."""
        return {
            "links": [[link.text, link.href, link.start, link.paragraph] for link in self.links],
            "byline": self.byline,
            "language": self.language,
            "attribution": list(self.attribution),
            "attribution_urls": list(self.attribution_urls),
        }


@dataclass(frozen=True, slots=True)
class Signature:
    """MinHash values of one article, one array per signature kind, plus the token count."""

    values: dict[str, np.ndarray]
    n_tokens: int


@dataclass(frozen=True, slots=True)
class PairVerdict:
    """The verified relation between two articles, from aligning their token sequences.

    ``relation`` is one of ``same`` (boilerplate differences only), ``subset`` (one is an excerpt of,
    or lost spans from, the other), ``spun`` (word-level substitution), ``unrelated``.
    """

    relation: str
    similarity: float
    coverage_a: float
    coverage_b: float
    substitution_rate: float
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def related(self) -> bool:
        return self.relation != "unrelated"


@dataclass(frozen=True, slots=True)
class MemberDecision:
    """One member's place in its cluster: canonical or not, its flags, and why."""

    article_id: int
    canonical: bool
    flags: tuple[str, ...]
    similarity: float
    evidence: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ClusterDecision:
    """The canonicalizer's verdict on a whole cluster."""

    canonical_id: int
    members: tuple[MemberDecision, ...]
    reason: str
