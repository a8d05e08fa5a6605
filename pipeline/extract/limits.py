"""What extraction reads and keeps of one page, at most: the bounds that keep its memory and time small.

A page past a bound is *reduced* and the article gets a warning that says what was cut; the run goes on.
(A page the HTML parser itself refuses, nesting past its depth limit, is an error instead:
``PageTooComplex``; see ``pipeline.extract.extractor``.) Every bound is a setting, ``REPRINT_EXTRACT_<NAME>``
(``pipeline.settings``, whose defaults are the ones here), and the defaults sit far above what real
news pages need: on the dev corpus the largest page has 4,100 elements, 572 links, 234 KB in one
attribute, 2.1 MB of script, 162 paragraphs, 38,000 characters of text and a 108-character word.

This module imports nothing heavy: the settings and the parent side of the isolated extraction read it
without loading the extractor.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

FALLBACKS = ("auto", "always")


@dataclass(frozen=True)
class ExtractLimits:
    """Bounds on one page's extraction. Counted before the structure they bound is built, where that can be:

    - ``max_elements`` / ``max_links``: start tags (a ``<script>``/``<style>`` with its content counts once,
      comments not at all) and ``<a>`` tags, counted in the decoded text before it is parsed. The page is
      cut before the first tag past either bound, so the parsed tree and everything built from it stay
      small. Most of one page's memory goes there: trafilatura needs several KB per link.
    - ``max_attribute_chars``: a longer attribute value is dropped from the tree (the element stays).
    - ``max_script_chars``: past this much ``<script>``/``<style>`` text, scripts and styles are emptied
      before metadata is read (JSON-LD blocks are kept while they fit in the bound).
    - ``max_paragraphs``, ``max_text_chars``: the article keeps its first paragraphs within both (the
      text handed to dedup is bounded: its alignment is quadratic in the number of words).
    - ``max_word_chars``: a longer run of non-space characters keeps only its first ``max_word_chars``.
    - ``max_field_chars``: title, byline, site name and canonical URL are cut to this length.

    And one choice of how much work the body costs, ``fallbacks``: ``"auto"`` (the default) runs trafilatura's
    fast path first and its fallback extractors (readability, jusText) only when that body leaves most of the
    page's paragraph text out (``pipeline.extract.extractor``); ``"always"`` runs them on every page, as
    trafilatura does by default.
    """

    max_elements: int = 50_000
    max_links: int = 10_000
    max_attribute_chars: int = 1_000_000
    max_script_chars: int = 4_000_000
    max_paragraphs: int = 5_000
    max_text_chars: int = 300_000
    max_word_chars: int = 1_000
    max_field_chars: int = 2_000
    fallbacks: str = "auto"

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, int) and value < 1:
                raise ValueError(f"ExtractLimits.{field.name} must be at least 1")
        if self.fallbacks not in FALLBACKS:
            raise ValueError(f"ExtractLimits.fallbacks must be one of {', '.join(FALLBACKS)}, not {self.fallbacks!r}")

    @classmethod
    def from_settings(cls, settings: Any) -> ExtractLimits:
        """The limits from a ``Settings`` (its ``extract_<name>`` fields)."""
        return cls(**{field.name: getattr(settings, f"extract_{field.name}") for field in fields(cls)})


DEFAULT_LIMITS = ExtractLimits()
