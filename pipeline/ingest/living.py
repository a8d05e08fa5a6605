"""What an operator does to stored pages outside an ingest: take one down (``forget``), let a forgotten URL be
ingested again (``allow``), and bound the raw HTML kept (``prune``). The reviews are ``reviews.py``, the
re-processing ``reprocess.py``; all of them re-decide clusters through ``operator_deduplicator``.

- **forget(url)**: the page's HTML, article text and signature go, with its index entries (the store's table and,
  when the deployment has one, the shared Redis index), its relations, versions and reviews; a tombstone keeps the
  URL, the time, who and why, so no runner ingests the URL again (``steps.known_page``: ``forgotten``) until
  ``allow(url)``. What it was related to is re-decided, after an ``article_removed`` event. Forgetting a URL that
  is already forgotten is a no-op; forgetting a URL never stored is a ``LookupError``.
- **prune(days)**: stored HTML of pages fetched more than ``days`` ago is emptied; text and signatures stay, so
  reads, exports and matching are unchanged, an unchanged re-fetch is still a no-op (the content hash stays), and
  a re-processing skips those pages and says so.

Errors a user can make raise ``LookupError`` (an unknown URL) or ``ValueError`` (a bad value): the CLI turns them
into one line and exit code 2, the API into a 404 or 422.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.dedup.deduplicator import Deduplicator
from pipeline.dedup.policy import DecisionPolicy
from pipeline.settings import Settings, get_settings
from pipeline.store import Store

log = logging.getLogger(__name__)


def _shared_redis(settings: Settings) -> Any | None:
    """The deployment's Redis when one is configured explicitly (REPRINT_REDIS_URL) and answers, else None."""
    if "redis_url" not in settings.model_fields_set and not os.environ.get("REPRINT_REDIS_URL"):
        return None
    try:
        import redis

        client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
        client.ping()
        return client
    except Exception as err:  # the embedded store does not need it; say why it is not used
        log.warning("Redis at %s does not answer (%s): the shared index is not updated", settings.redis_url, err)
        return None


def operator_deduplicator(store: Store, settings: Settings | None = None) -> Deduplicator:
    """A deduplicator for one operator action: decisions at once, under the lock the workers and ingests take
    (so a review never interleaves with a worker's re-cluster), and, in a distributed deployment, the shared
    index (a page taken down leaves it)."""
    from pipeline.shared.locks import cluster_lock_for, workers_cluster_lock

    settings = settings or get_settings()
    client = _shared_redis(settings)
    if client is None:
        return Deduplicator(store, settings, lock=cluster_lock_for(store), policy=DecisionPolicy.immediate())
    from pipeline.shared.redis_index import RedisLSHIndex

    index = RedisLSHIndex(client, settings.num_perm, settings.redis_prefix)
    return Deduplicator(store, settings, index=index, lock=workers_cluster_lock(store, client, settings.redis_prefix),
                        policy=DecisionPolicy.immediate())


def forget(store: Store, url: str, *, reason: str | None = None, who: str = "operator",
           settings: Settings | None = None) -> dict[str, Any]:
    """Take a stored page down (see the module docstring); returns what was done."""
    url = url.strip()
    if not url:
        raise ValueError("give the URL of the page to forget")
    if store.stored_page(url) is None:
        tomb = store.tombstone(url)
        if tomb is not None and not tomb["allowed"]:
            return {"url": url, "forgotten": False, "already": True, "article_id": tomb["article_id"],
                    "changes": 0, "tombstone": tomb}
        raise LookupError(f"no stored page at {url}")
    article_id, changes = operator_deduplicator(store, settings).remove(url, reason=reason, who=who)
    return {"url": url, "forgotten": True, "already": False, "article_id": article_id, "changes": len(changes),
            "tombstone": store.tombstone(url)}


def allow(store: Store, url: str) -> dict[str, Any]:
    """Let a forgotten URL be ingested again; the tombstone stays as the record of the takedown."""
    found = store.allow_url(url.strip())
    if found is None:
        raise LookupError(f"{url} was never forgotten (no tombstone)")
    return found


def prune(store: Store, days: float, *, now: datetime | None = None) -> dict[str, Any]:
    """Drop the raw HTML of pages fetched more than ``days`` ago; returns (pages, bytes freed, cutoff)."""
    if days < 0:
        raise ValueError(f"--html-older-than must be 0 or more days, not {days:g}")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    pages, freed = store.prune_html(cutoff)
    return {"pages": pages, "bytes": freed, "cutoff": cutoff.isoformat(timespec="seconds")}


__all__ = ["allow", "forget", "operator_deduplicator", "prune"]
