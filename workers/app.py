"""The Celery app, configured from the one settings object (``REPRINT_BROKER_URL`` and friends).

Each reliability setting sits where Celery or kombu reads it, with the reason next to it. The four
stage queues are separate so that each stage can be scaled on its own (``reprint worker -Q fetch``).
Two brokers: RabbitMQ (``amqp://``, quorum queues, ``workers/broker.py``) and Redis (``redis://``); what
differs between them is in ``broker_config``.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_init
from kombu import Queue

from pipeline.settings import Settings, get_settings
from pipeline.shared import keys

from . import broker

#: One queue per stage; a worker consumes from all four unless told otherwise (``-Q``).
QUEUES: tuple[str, ...] = ("discover", "fetch", "extract", "dedup")

#: Task name → queue. Scheduled runs start on the discover queue: they only enqueue discovery.
ROUTES: dict[str, dict[str, str]] = {
    "reprint.scheduled_ingest": {"queue": "discover"},
    "reprint.discover_source": {"queue": "discover"},
    "reprint.fetch_url": {"queue": "fetch"},
    "reprint.extract_page": {"queue": "extract"},
    "reprint.dedup_article": {"queue": "dedup"},
    # re-processing is re-extraction first: it goes where extraction runs
    "reprint.reprocess_batch": {"queue": "extract"},
}


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery configuration for these settings; a function so tests can inspect it without a broker."""
    return {
        "broker_url": settings.broker_url,
        # A task that sends on its page's next task while the broker restarts waits for it (up to about a
        # minute) instead of failing the page: the message it would send is the page's only way forward.
        "task_publish_retry": True,
        "task_publish_retry_policy": {"max_retries": 40, "interval_start": 0, "interval_step": 0.5,
                                      "interval_max": 2},
        # Workers outlive a Redis restart: reconnect forever, also when the broker is down at start-up.
        "broker_connection_retry": True,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "broker_channel_error_retry": True,
        # JSON only: a pickle payload from anyone who can write to Redis would be code execution.
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        # Results are never read (progress lives in Redis run state, outcomes in the database).
        "task_ignore_result": True,
        "result_backend": None,
        # Acknowledge after the task ran, not when it was received: a worker that dies mid-task leaves
        # the message unacknowledged, and it is delivered again. Tasks are idempotent, so that is safe.
        "task_acks_late": True,
        # A pool process killed mid-task (OOM, SIGKILL, os._exit) makes the parent requeue the message
        # instead of acknowledging it as failed; the poison guard (workers/deadletter.py) stops a task
        # that does this every time.
        "task_reject_on_worker_lost": True,
        # An ordinary exception or a time limit is a verdict on the page, recorded in the errors table:
        # acknowledge it rather than loop on it.
        "task_acks_on_failure_or_timeout": True,
        # Reserve one message per pool process: with acks_late, prefetched messages would sit behind a
        # long task (and be redelivered with it if the worker dies) instead of going to an idle worker.
        "worker_prefetch_multiplier": 1,
        # Soft limit raises SoftTimeLimitExceeded in the task (the page is recorded as failed); the hard
        # limit kills the pool process if it does not stop.
        "task_soft_time_limit": settings.task_soft_time_limit,
        "task_time_limit": settings.task_time_limit,
        # Tasks still running when the broker connection is lost are cancelled: their messages stay
        # unacknowledged in Redis and are delivered again, so letting them finish would do them twice.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # Bound memory growth of long-lived pool processes (lxml, trafilatura caches).
        "worker_max_tasks_per_child": 2000,
        "task_default_queue": "discover",
        "task_routes": ROUTES,
        # Task events cost a Redis publish per state change of every task; they stay off unless someone
        # watches. Flower switches them on in running workers itself (its --enable-events default), and
        # `reprint worker -E` turns them on from the start.
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        # Beat: celery-redbeat keeps the schedule and a lock in Redis, so a standby beat takes over when
        # the active one stops renewing the lock (lock timeout = 5 × max loop interval by default).
        "beat_scheduler": "redbeat.RedBeatScheduler",
        "redbeat_redis_url": settings.redis_url,
        "redbeat_key_prefix": keys.redbeat(settings.redis_prefix),
        "redbeat_lock_key": keys.redbeat(settings.redis_prefix) + "lock",
        # The active beat renews its lock every loop; a loop at most a fifth of the lock timeout leaves
        # room for a few slow renewals before a standby may take the lock.
        "beat_max_loop_interval": min(5.0, settings.beat_lock_timeout / 5),
        "redbeat_lock_timeout": settings.beat_lock_timeout,
        **broker_config(settings),
    }


def broker_config(settings: Settings) -> dict[str, Any]:
    """What depends on the broker: its queues and how a dead worker's unacknowledged tasks come back."""
    if settings.broker_is_amqp:
        return {
            # Quorum queues with a delivery limit and a dead-letter exchange (workers/broker.py). RabbitMQ
            # requeues a consumer's unacknowledged messages the moment its connection closes, so a SIGKILLed
            # worker's tasks run again on another worker within seconds, never while the first still runs
            # (a worker that loses its connection cancels its running tasks, below).
            "task_queues": broker.task_queues(settings, QUEUES),
            "task_default_exchange": broker.TASK_EXCHANGE,
            "task_default_exchange_type": "topic",
            "task_default_routing_key": "discover",
            "task_create_missing_queue_type": "quorum",
            # A machine that dies without closing TCP is noticed after about two missed heartbeats.
            "broker_heartbeat": settings.broker_heartbeat or None,
            "broker_transport_options": {
                # Publisher confirms: a publish returns once RabbitMQ has the message (on disk for a quorum
                # queue), so a broker restart right after it loses nothing.
                "confirm_publish": True,
            },
            # Quorum queues have no global QoS: Celery then uses per-consumer prefetch (and retries with a
            # countdown go through RabbitMQ's delayed-delivery queues instead of waiting in the worker).
            "worker_detect_quorum_queues": True,
        }
    return {
        "task_queues": [Queue(name, routing_key=name) for name in QUEUES],
        # kombu's Redis transport reads these per channel (``Channel.from_transport_options``); Celery only
        # passes the dict through to ``kombu.Connection(transport_options=...)``. A top-level
        # ``visibility_timeout`` setting would be ignored.
        "broker_transport_options": {
            # An unacknowledged message goes back to its queue after this many seconds. With acks_late a
            # task is unacknowledged while it runs, and a retry (countdown) is held unacknowledged until
            # it is due, so this must outlive the hard time limit plus the longest retry delay, or
            # Redis would hand a still-running task to a second worker. Settings validates it.
            "visibility_timeout": settings.visibility_timeout,
            # How often a worker sweeps the unacked index for expired messages (those of a worker that
            # died). kombu multiplies the interval by the throttle; throttle 1 makes the interval exact.
            "unacked_restore_interval": settings.unacked_restore_interval,
            "unacked_restore_throttle": 1,
            # A broker that vanishes without closing TCP (failover, NAT) must not hang a publish forever.
            "socket_timeout": 30,
            "socket_connect_timeout": 10,
            "health_check_interval": 10,
            "retry_on_timeout": True,
        },
    }


def make_app(settings: Settings | None = None) -> Celery:
    """A Celery app for these settings (the process-wide ones by default), with the tasks registered."""
    settings = settings or get_settings()
    celery = Celery("reprint", set_as_current=True)
    celery.conf.update(celery_config(settings))
    celery.conf.include = ["workers.tasks"]
    if settings.broker_is_amqp:
        celery.steps["worker"].add(broker.DeadLetterAbsorber)
    return celery


#: The app the ``celery -A workers.app`` and ``reprint worker`` commands run.
app: Celery = make_app()


@worker_process_init.connect
def lower_pool_priority(**_signal: object) -> None:
    """In each pool process as it starts: add ``worker_pool_nice`` to its niceness.

    With every pool process busy on every core, the processes they wait for (the worker's parent, which reads the
    broker and hands out tasks, and the PostgreSQL and Redis servers, which may hold a lock another task waits on)
    had to wait their turn for a core, and a pool process waiting for them was idle. At nice +1 those get the core
    first when they have work. On 2 cores (10,000 pages, ``benchmarks/scale_bench.py parallel``) 2 pool processes
    went from 56.4 to 64-69 pages a second and 1 from 32 to 40-41 (in one run of three it stayed at 32).
    """
    step = get_settings().worker_pool_nice
    if step:
        os.nice(step)

