"""RabbitMQ as the broker: quorum queues, the broker's own delivery limit, and its dead letters.

With ``REPRINT_BROKER_URL=amqp://…`` the four stage queues are quorum queues (replicated, on disk, a message
confirmed to the publisher survives a broker restart). RabbitMQ hands a message to another consumer as soon as
the connection of the one holding it unacknowledged closes: a worker whose process group is SIGKILLed or
OOM-killed has its in-flight and prefetched tasks back on the queue at once, and a machine that dies without
closing TCP is noticed after about two missed heartbeats (``broker_heartbeat``). Redis stays for the index,
locks, run state and the delivery guard.

Two limits stop a message that kills its worker every time. The delivery guard (``workers/deadletter.py``)
counts deliveries in Redis and dead-letters at ``max_deliveries``, with the task's last error. Behind it, each
queue has ``x-delivery-limit`` (``Settings.delivery_limit``, two more): if the guard could not act (Redis
unreachable for that long), RabbitMQ dead-letters the message to ``reprint.dead``. Those letters are moved into
the same Redis list by ``absorb_dead_letters``, which a worker runs every few seconds and ``reprint deadletters``
runs before it reads, so an operator sees and replays one list, and the run the task belonged to still ends.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from celery import Celery, bootsteps
from kombu import Connection, Exchange, Queue

from pipeline.settings import Settings

log = logging.getLogger(__name__)

#: Tasks are routed through one topic exchange (Celery's native delayed delivery, which retries with a
#: countdown use on quorum queues, needs a topic exchange; routing key = queue name).
TASK_EXCHANGE = "reprint"
#: Where RabbitMQ sends a message past its delivery limit, and the queue that keeps it for the guard.
DEAD_EXCHANGE = "reprint.dead"
DEAD_QUEUE = "reprint.dead"
#: Seconds between two sweeps of the broker's dead-letter queue in a worker.
ABSORB_INTERVAL = 5.0


def task_queues(settings: Settings, names: tuple[str, ...]) -> list[Queue]:
    """The stage queues as durable quorum queues with the delivery limit and the dead-letter exchange."""
    exchange = Exchange(TASK_EXCHANGE, type="topic", durable=True)
    arguments = {
        "x-queue-type": "quorum",
        "x-delivery-limit": settings.delivery_limit,
        "x-dead-letter-exchange": DEAD_EXCHANGE,
    }
    return [Queue(name, exchange, routing_key=name, durable=True, queue_arguments=arguments) for name in names]


def dead_letter_queue() -> Queue:
    """The queue RabbitMQ's dead letters land in (fanout: every stage's letters, whatever their key)."""
    return Queue(DEAD_QUEUE, Exchange(DEAD_EXCHANGE, type="fanout", durable=True), durable=True,
                 queue_arguments={"x-queue-type": "quorum"})


def declare_dead_letters(connection: Connection) -> None:
    """Create the dead-letter exchange and queue (idempotent); without them RabbitMQ would drop the letters."""
    dead_letter_queue()(connection.default_channel).declare()


def entry_from_message(message: Any, settings: Settings) -> dict[str, Any]:
    """A dead letter in the guard's format, from a task message that RabbitMQ dead-lettered."""
    headers = dict(message.headers or {})
    body = message.decode()
    args, kwargs = (list(body[0]), dict(body[1])) if isinstance(body, list | tuple) and len(body) >= 2 else ([], {})
    deaths = headers.get("x-death") or []
    death = dict(deaths[0]) if deaths else {}
    queue = death.get("queue") or (message.delivery_info or {}).get("routing_key")
    reason = death.get("reason", "delivery_limit")
    deliveries = int(headers.get("x-delivery-count") or settings.delivery_limit) + 1
    return {
        "id": headers.get("id") or message.properties.get("correlation_id") or "",
        "task": headers.get("task") or "",
        "args": args,
        "kwargs": kwargs,
        "queue": queue,
        "deliveries": deliveries,
        "last_error": (f"RabbitMQ dead-lettered the message ({reason}): handed out {deliveries} times without "
                       f"being acknowledged, past its delivery limit of {settings.delivery_limit}"),
        "dead_lettered_at": time.time(),
        "host": None,
        "by": "broker",
    }


def absorb_dead_letters(app: Celery, settings: Settings) -> list[dict[str, Any]]:
    """Move RabbitMQ's dead letters into the guard's Redis list and end the page or source each task stood for
    (so the run it belonged to can finish); returns the entries moved.

    Each letter is written to Redis before its message is acknowledged, so a crash in between keeps it in
    both places (a replay then runs it twice, which idempotent tasks absorb) rather than in neither.
    """
    from .deadletter import DeliveryGuard

    if not settings.broker_is_amqp:
        return []
    app.loader.import_default_modules()  # the tasks whose work a letter ends (`reprint deadletters` has none yet)
    guard = DeliveryGuard.from_settings(settings)
    moved: list[dict[str, Any]] = []
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=3)  # a broker that is down fails here, not forever
        queue = dead_letter_queue()(connection.default_channel)
        queue.declare()
        while (message := queue.get(no_ack=False)) is not None:
            entry = entry_from_message(message, settings)
            guard.bury(entry)
            message.ack()
            moved.append(entry)
            log.error("task %s[%s] dead-lettered by the broker after %d deliveries", entry["task"], entry["id"],
                      entry["deliveries"])
            task = app.tasks.get(entry["task"])
            if task is not None and hasattr(task, "on_dead_letter"):
                try:
                    task.on_dead_letter(entry)
                except Exception:  # the letter is safe in Redis; its run waits for the next sweep or a replay
                    log.exception("could not close the work of dead letter %s", entry["id"])
    return moved


def queue_depths(broker_url: str, timeout: float, names: tuple[str, ...]) -> dict[str, int]:
    """Messages ready per queue on a RabbitMQ broker (a passive declare each; unacknowledged ones are not counted)."""
    depths: dict[str, int] = {}
    with Connection(broker_url, connect_timeout=timeout, transport_options={"max_retries": 0}) as connection:
        connection.ensure_connection(max_retries=1, timeout=timeout)
        for name in (*names, DEAD_QUEUE):
            channel = connection.channel()
            try:
                _, count, _ = channel.queue_declare(queue=name, passive=True)
                depths[name] = int(count)
            except connection.channel_errors:  # not declared yet (no worker has started): nothing waits there
                depths[name] = 0
            finally:
                with contextlib.suppress(Exception):  # a failed passive declare already closed it
                    channel.close()
    return depths


class DeadLetterAbsorber(bootsteps.StartStopStep):
    """A worker step: a thread that absorbs the broker's dead letters every ``ABSORB_INTERVAL`` seconds."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, worker: Any) -> None:
        from pipeline.settings import get_settings

        settings = get_settings()
        if not settings.broker_is_amqp:
            return
        try:
            with worker.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=3)
                declare_dead_letters(connection)
        except Exception:  # the broker may be down at start-up; the sweep declares it again
            log.warning("could not declare the dead-letter queue yet", exc_info=True)

        def sweep() -> None:
            while not self._stop.wait(ABSORB_INTERVAL):
                try:
                    absorb_dead_letters(worker.app, settings)
                except Exception as err:  # broker or Redis restarting: try again next time
                    log.warning("dead-letter sweep failed: %s: %s", type(err).__name__, err)

        self._thread = threading.Thread(target=sweep, name="reprint-dead-letters", daemon=True)
        self._thread.start()

    def stop(self, worker: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=ABSORB_INTERVAL + 5)
