"""Extraction: a Page → an Article (trafilatura), keeping what the canonicalizer needs: paragraphs, in-body
links and where their text stood, byline, dates, site name, rel=canonical, attribution lines.
"""

from pipeline._lazy import lazy_exports

_EXPORTS = {
    "extract": "pipeline.extract.extractor",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports("pipeline.extract", _EXPORTS)
