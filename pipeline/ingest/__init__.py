"""Ingesting: what happens to one source and one page (``steps``, called by every runner), and the embedded
runner (``runner``: one process, SQLite by default, fetches on an event loop, one store thread).
"""

from pipeline._lazy import lazy_exports

_EXPORTS = {
    "ingest": "pipeline.ingest.runner",
    "ingest_page": "pipeline.ingest.steps",
    "run_ingest": "pipeline.ingest.runner",
    "update_article": "pipeline.ingest.steps",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports("pipeline.ingest", _EXPORTS)
