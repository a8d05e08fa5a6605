"""The read side: the REST API (``api``, with ``problems``, ``models``, ``fast``, ``limits``), its queries
(``queries``, ``shapes``, ``cursors``, ``readers``), ``/metrics`` (``metrics``), ``reprint status``
(``status``), the JSONL export (``export``) and the web UI (``ui``: ``mount_ui``, which ``create_app`` calls).
"""

from pipeline._lazy import lazy_exports

_EXPORTS = {
    "AdminBackend": "pipeline.serve.api",
    "CursorError": "pipeline.serve.cursors",
    "Metrics": "pipeline.serve.metrics",
    "app_from_env": "pipeline.serve.api",
    "collect_status": "pipeline.serve.status",
    "create_app": "pipeline.serve.api",
    "decode_cursor": "pipeline.serve.cursors",
    "encode_cursor": "pipeline.serve.cursors",
    "export_jsonl": "pipeline.serve.export",
    "export_record": "pipeline.serve.export",
    "export_since": "pipeline.serve.export",
    "serve": "pipeline.serve.api",
    "serve_in_thread": "pipeline.serve.api",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports("pipeline.serve", _EXPORTS)
