"""Extraction: a Page → an Article (trafilatura), keeping what the canonicalizer needs: paragraphs, in-body
links and where their text stood, byline, dates, site name, rel=canonical, attribution lines; bounded
(``ExtractLimits``), in this process or in worker processes that a deadline or a memory cap stops
(``IsolatedExtractor``, ``extract_isolated``). Names are imported on first use, so a process that only sends
pages to workers never loads trafilatura (the workers do).
"""

from pipeline._lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_LIMITS": "pipeline.extract.limits",
    "ExtractLimits": "pipeline.extract.limits",
    "IsolatedExtractor": "pipeline.extract.isolated",
    "WorkerUsage": "pipeline.extract.isolated",
    "close_shared": "pipeline.extract.isolated",
    "decode_html": "pipeline.extract.extractor",
    "extract": "pipeline.extract.extractor",
    "extract_isolated": "pipeline.extract.isolated",
    "shared_extractor": "pipeline.extract.isolated",
    "shared_usage": "pipeline.extract.isolated",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports("pipeline.extract", _EXPORTS)
