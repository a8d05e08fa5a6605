"""The poison-message guard: deliveries counted per task id in Redis, and a dead-letter list.

With ``task_acks_late`` and ``task_reject_on_worker_lost`` a task whose page kills its worker (a
segfault in a parser, an OOM kill, ``os._exit``) is put back on its queue every time, and would take
down worker after worker forever. So each delivery increments a counter keyed by the task id before the
task body runs, and a delivery that ends in any way the process survives (success, exception, retry)
deletes it. A counter that is still there at the next delivery therefore counts deliveries that never
finished. Once it passes ``max_deliveries``, the task is not run again: its name, arguments, queue and
last error go to a Redis list (the dead letters), and the message is acknowledged so the rest of the
queue drains. ``reprint deadletters list|replay`` shows them and sends them again.

Celery keeps a task's id across redeliveries and retries, which is what makes the id the right key.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
from billiard.exceptions import WorkerLostError
from celery import Celery, Task
from celery.exceptions import Reject
from celery.worker.request import Request

from pipeline.settings import Settings, get_settings
from pipeline.shared import keys
from pipeline.shared.latency import record_task_latency

log = logging.getLogger(__name__)

#: Environment variable holding a JSON test hook (see ``run_test_hook``); never set in production.
TEST_HOOK_ENV = "REPRINT_TEST_HOOK"

#: Seconds to wait between attempts to reach Redis before a delivery is put back unguarded.
GUARD_RETRY_WAITS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)

_clients: dict[tuple[int, str], redis.Redis] = {}


def redis_client(settings: Settings | None = None) -> redis.Redis:
    """One Redis client per process and URL (redis-py pools are not fork-safe to share across pids)."""
    settings = settings or get_settings()
    key = (os.getpid(), settings.redis_url)
    client = _clients.get(key)
    if client is None:
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=30, socket_connect_timeout=10,
                                      health_check_interval=10, retry_on_timeout=True)
        _clients[key] = client
    return client


class DeliveryGuard:
    """Delivery counters and the dead-letter list of one deployment (one Redis key prefix)."""

    def __init__(self, client: redis.Redis, prefix: str, max_deliveries: int, ttl: float) -> None:
        self.client = client
        self.prefix = prefix
        self.max_deliveries = max_deliveries
        #: A counter outlives the longest possible gap between two deliveries, then expires on its own.
        self.ttl = max(60, int(ttl))

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> DeliveryGuard:
        """The guard of the configured deployment (key prefix, limit and counter lifetime from settings)."""
        settings = settings or get_settings()
        ttl = settings.visibility_timeout * (settings.max_deliveries + 2)
        return cls(redis_client(settings), settings.redis_prefix, settings.max_deliveries, ttl)

    @property
    def list_key(self) -> str:
        """The dead-letter list, ``<prefix>:deadletters`` (``reprint status`` counts it too)."""
        return keys.dead_letters(self.prefix)

    def _key(self, task_id: str) -> str:
        return keys.deliveries(self.prefix, task_id)

    def begin(self, task_id: str, *, hostname: str | None = None) -> tuple[int, dict[str, str]]:
        """Count one delivery; returns the count and what the previous unfinished delivery left."""
        key = self._key(task_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.hgetall(key)
        pipe.hincrby(key, "count", 1)
        pipe.hset(key, mapping={"started_at": f"{time.time():.3f}", "host": hostname or socket.gethostname(),
                                "pid": str(os.getpid())})
        pipe.expire(key, self.ttl)
        previous, count, *_ = pipe.execute()
        return int(count), {k.decode(): v.decode() for k, v in previous.items()}

    def note_lost(self, task_id: str, error: str) -> None:
        """Remember why the last delivery ended without finishing (called in the worker's main process)."""
        key = self._key(task_id)
        if self.client.exists(key):
            self.client.hset(key, "last_error", error)

    def end(self, task_id: str) -> None:
        """The delivery finished in a way the process survived: it no longer counts toward the limit."""
        self.client.delete(self._key(task_id))

    def bury(self, entry: dict[str, Any]) -> None:
        """Append a dead letter and forget the task's counter (a replay starts from zero)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.rpush(self.list_key, json.dumps(entry, sort_keys=True))
        pipe.delete(self._key(entry["id"]))
        pipe.execute()

    def letters(self) -> list[dict[str, Any]]:
        """Every dead letter, oldest first."""
        return [json.loads(raw) for raw in self.client.lrange(self.list_key, 0, -1)]

    def _raw(self) -> Iterator[tuple[bytes, dict[str, Any]]]:
        for raw in self.client.lrange(self.list_key, 0, -1):
            yield raw, json.loads(raw)

    def replay(self, app: Celery, task_ids: list[str] | None = None) -> list[dict[str, Any]]:
        """Send dead letters again (all, or those with these task ids) as fresh tasks on their queues.

        The message is sent before the letter is removed: a crash in between replays it twice, which
        idempotent tasks absorb, rather than losing it.
        """
        replayed = []
        for raw, entry in list(self._raw()):
            if task_ids and entry["id"] not in task_ids:
                continue
            result = app.send_task(entry["task"], args=entry.get("args") or [], kwargs=entry.get("kwargs") or {},
                                   queue=entry.get("queue") or None)
            self.client.lrem(self.list_key, 1, raw)
            replayed.append({**entry, "replayed_as": result.id})
        return replayed

    def purge(self) -> int:
        """Drop every dead letter; returns how many there were."""
        pipe = self.client.pipeline(transaction=True)
        pipe.llen(self.list_key)
        pipe.delete(self.list_key)
        return int(pipe.execute()[0])


def run_test_hook(task_name: str, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Test-only fault injection, active only when ``REPRINT_TEST_HOOK`` holds a JSON object.

    ``{"task": name, "match": substring of the JSON arguments, "action": "exit" | "pause",
    "seconds": float, "marker_dir": path}``: ``exit`` ends the process at once (``os._exit``, as a
    crashing C extension would), ``pause`` writes a marker file and sleeps, so a test can SIGKILL the
    worker while the task is in the middle of running.
    """
    spec = os.environ.get(TEST_HOOK_ENV)
    if not spec:
        return
    hook = json.loads(spec)
    if hook.get("task") not in (None, task_name):
        return
    if hook.get("match") and hook["match"] not in json.dumps([list(args), kwargs], sort_keys=True):
        return
    if hook.get("marker_dir"):
        marker = Path(hook["marker_dir"]) / f"{task_name}.{os.getpid()}.{time.time_ns()}"
        marker.write_text(json.dumps({"id": task_id, "args": list(args), "kwargs": kwargs}))
    if hook.get("action") == "exit":
        os._exit(int(hook.get("code", 3)))
    if hook.get("action") == "pause":
        time.sleep(float(hook.get("seconds", 5)))


class GuardedRequest(Request):
    """Runs in the worker's main process: records why a pool process was lost, for the dead letter."""

    def on_failure(self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> None:
        exc = getattr(exc_info, "exception", None)
        if isinstance(exc, WorkerLostError):
            try:
                DeliveryGuard.from_settings().note_lost(self.id, f"{type(exc).__name__}: {exc}")
            except redis.RedisError:  # the note is a courtesy; requeueing must go on
                log.warning("could not record the lost worker for task %s", self.id, exc_info=True)
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


class GuardedTask(Task):
    """Base class of every reprint task: counts deliveries and dead-letters a task that keeps crashing."""

    Request = "workers.deadletter:GuardedRequest"

    def on_dead_letter(self, entry: dict[str, Any]) -> None:
        """Called once a task is dead-lettered (subclasses close the work it stood for)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        if request.called_directly or not request.id:
            return self.run(*args, **kwargs)
        guard = DeliveryGuard.from_settings()
        count, previous = self._begin(guard)
        request.delivery_count = count
        if count > guard.max_deliveries:
            entry = self._dead_letter_entry(count - 1, previous, args, kwargs)
            guard.bury(entry)
            log.error("task %s[%s] dead-lettered after %d unfinished deliveries: %s", self.name, request.id,
                      count - 1, entry["last_error"])
            self.on_dead_letter(entry)
            return None
        run_test_hook(self.name, request.id, args, kwargs)
        started = time.perf_counter()
        try:
            return self.run(*args, **kwargs)
        finally:
            try:
                guard.end(request.id)
                # every delivery that ran, whatever its outcome: what ``/metrics`` shows as task latency
                record_task_latency(guard.client, self.name, time.perf_counter() - started, prefix=guard.prefix)
            except redis.RedisError:  # the counter expires on its own; a lost sample is only a sample
                log.warning("could not clear the delivery counter of %s", request.id, exc_info=True)

    def _begin(self, guard: DeliveryGuard) -> tuple[int, dict[str, str]]:
        """Count this delivery, waiting out a short Redis outage (a few seconds) before giving up."""
        request = self.request
        for wait in GUARD_RETRY_WAITS:
            with contextlib.suppress(redis.RedisError):
                return guard.begin(request.id, hostname=request.hostname)
            time.sleep(wait)
        try:
            return guard.begin(request.id, hostname=request.hostname)
        except redis.RedisError as err:
            # Without the counter the guard cannot protect this delivery: put the message back. It is not
            # lost (if the broker is Redis and down too, the visibility timeout restores it); the waits above
            # keep a Redis restart from spending RabbitMQ's delivery limit in a burst of instant requeues.
            raise Reject(f"delivery guard unavailable: {err}", requeue=True) from err

    def _routed_queue(self) -> str | None:
        try:
            return self.app.amqp.router.route({}, self.name)["queue"].name
        except Exception:  # no route: the replay goes to the default queue
            return None

    def _dead_letter_entry(self, deliveries: int, previous: dict[str, str], args: tuple[Any, ...],
                           kwargs: dict[str, Any]) -> dict[str, Any]:
        request = self.request
        last_error = previous.get("last_error") or (
            f"worker lost: delivery {deliveries} started at {previous.get('started_at', '?')} on "
            f"{previous.get('host', '?')} (pid {previous.get('pid', '?')}) never finished")
        delivery_info = request.delivery_info or {}
        return {
            "id": request.id,
            "task": self.name,
            "args": list(args),
            "kwargs": dict(kwargs),
            # the route first: on RabbitMQ a retried task arrives with a delayed-delivery routing key
            "queue": self._routed_queue() or delivery_info.get("routing_key"),
            "deliveries": deliveries,
            "last_error": last_error,
            "dead_lettered_at": time.time(),
            "host": request.hostname,
        }
