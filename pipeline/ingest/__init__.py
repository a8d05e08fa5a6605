"""Ingesting: what happens to one source and one page (``steps``, called by every runner), the embedded runner
(``runner``: one process, SQLite by default, fetches on an event loop, one store thread), and what happens to
stored pages afterwards: re-processing (``reprocess``), operator reviews (``reviews``), takedowns and retention
(``living``).
"""

from pipeline._lazy import lazy_exports

_EXPORTS = {
    "allow": "pipeline.ingest.living",
    "forget": "pipeline.ingest.living",
    "ingest": "pipeline.ingest.runner",
    "ingest_page": "pipeline.ingest.steps",
    "prune": "pipeline.ingest.living",
    "run_ingest": "pipeline.ingest.runner",
    "run_reprocess": "pipeline.ingest.reprocess",
    "update_article": "pipeline.ingest.steps",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports("pipeline.ingest", _EXPORTS)
