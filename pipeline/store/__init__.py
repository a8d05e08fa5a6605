"""The store: the schema (``schema``), how values are kept (``codecs``), the unit of work with the pipeline's
writes and typed reads (``store``), and the Alembic migrations with their runner (``migrations``)."""

from pipeline.store.codecs import content_hash, url_key
from pipeline.store.schema import (
    ArticleRow,
    Base,
    ClusterRow,
    EdgeRow,
    ErrorRow,
    EventRow,
    PageRow,
    RunRow,
    SignatureRow,
    SourceRow,
)
from pipeline.store.store import Store, make_engine

__all__ = [
    "ArticleRow", "Base", "ClusterRow", "EdgeRow", "ErrorRow", "EventRow", "PageRow", "RunRow", "SignatureRow",
    "SourceRow", "Store", "content_hash", "make_engine", "url_key",
]
