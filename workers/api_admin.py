"""What the read API and ``reprint status`` need from the distributed deployment, behind plain functions.

``pipeline/`` never imports Celery; it finds these two entry points by name
(``pipeline.serve.api.ADMIN_BACKEND_FACTORY`` and ``pipeline.serve.status.WORKER_INSPECTOR``) only when a broker
is configured, so the embedded deployment never loads Celery and the API keeps working when the workers package
is absent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipeline.settings import Settings


class CeleryAdmin:
    """The admin endpoints over Celery and the workers' dead-letter list (``pipeline.serve.api.AdminBackend``)."""

    def __init__(self, settings: Settings) -> None:
        from workers.app import make_app
        from workers.deadletter import DeliveryGuard

        self.app = make_app(settings)
        self.guard = DeliveryGuard.from_settings(settings)

    def rerun_source(self, spec: str) -> str:
        """Enqueue the scheduled-ingest task for one source now (the same task beat sends)."""
        return str(self.app.send_task("reprint.scheduled_ingest", args=[spec], queue="discover").id)

    def dead_letters(self, limit: int) -> list[dict[str, Any]]:
        """Newest first, in the API's shape (payload = what a replay sends again)."""
        out = []
        for entry in reversed(self.guard.letters()):
            at = entry.get("dead_lettered_at")
            out.append({
                "id": str(entry.get("id")),
                "task": entry.get("task"),
                "payload": {"args": entry.get("args") or [], "kwargs": entry.get("kwargs") or {},
                            "queue": entry.get("queue")},
                "error": entry.get("last_error"),
                "deliveries": entry.get("deliveries"),
                "at": datetime.fromtimestamp(float(at), UTC).isoformat().replace("+00:00", "Z") if at else None,
            })
            if len(out) >= limit:
                break
        return out

    def replay(self, ids: list[str] | None) -> int:
        return len(self.guard.replay(self.app, ids))


def admin_backend(settings: Settings) -> CeleryAdmin:
    """Factory named by ``pipeline.serve.api.ADMIN_BACKEND_FACTORY``."""
    return CeleryAdmin(settings)


def inspect_workers(broker_url: str, timeout: float) -> dict[str, Any]:
    """Workers alive and their tasks, through Celery's remote control (``pipeline.serve.status.WORKER_INSPECTOR``).

    One broadcast per question, each waiting at most ``timeout`` for replies: a worker that does not answer
    within it is reported as not alive. ``scheduled`` counts tasks held with an ETA, which is where retries
    wait out their backoff.
    """
    from celery import Celery

    app = Celery("reprint-status", broker=broker_url, set_as_current=False)
    try:
        inspect = app.control.inspect(timeout=timeout)
        alive = sorted((inspect.ping() or {}).keys())
        if not alive:
            return {"alive": [], "active": 0, "reserved": 0, "scheduled": 0, "running": []}
        active = inspect.active() or {}
        reserved = inspect.reserved() or {}
        scheduled = inspect.scheduled() or {}
        running = sorted(f"{t.get('name')}[{t.get('id')}]@{w}" for w, tasks in active.items() for t in tasks)
        return {
            "alive": alive,
            "active": sum(len(v) for v in active.values()),
            "reserved": sum(len(v) for v in reserved.values()),
            "scheduled": sum(len(v) for v in scheduled.values()),
            "running": running[:50],
        }
    finally:
        app.close()
