"""The task-latency histogram, kept in Redis by the workers and exposed by every API replica's ``/metrics``.

Cumulative buckets in one hash per task make an observation one pipelined round trip with no read, and any
process can expose the histogram exactly without Celery (``pipeline.serve.metrics``).
"""

from __future__ import annotations

from typing import Any

from pipeline.shared import keys

#: Bucket upper bounds (seconds) shared by the record and the exposition.
TASK_BUCKETS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def record_task_latency(redis: Any, task: str, seconds: float, *, prefix: str = "reprint") -> None:
    """Add one task duration to the shared histogram (any redis-py client)."""
    key = keys.task_latency(prefix, task)
    pipe = redis.pipeline(transaction=False)
    for bound in TASK_BUCKETS:
        if seconds <= bound:
            pipe.hincrby(key, repr(bound), 1)
    pipe.hincrby(key, "+Inf", 1)
    pipe.hincrby(key, "count", 1)
    pipe.hincrbyfloat(key, "sum", float(seconds))
    pipe.sadd(keys.task_latency_index(prefix), task)
    pipe.execute()


def task_histograms(redis: Any, *, prefix: str = "reprint") -> dict[str, tuple[list[tuple[str, float]], float]]:
    """task → (cumulative buckets as (upper bound, count), sum of seconds), for every recorded task."""
    tasks = sorted(t.decode() if isinstance(t, bytes) else str(t)
                   for t in redis.smembers(keys.task_latency_index(prefix)))
    out: dict[str, tuple[list[tuple[str, float]], float]] = {}
    for task in tasks:
        raw = {(k.decode() if isinstance(k, bytes) else k): float(v)
               for k, v in redis.hgetall(keys.task_latency(prefix, task)).items()}
        buckets = [(repr(float(b)), raw.get(repr(b), 0.0)) for b in TASK_BUCKETS]
        buckets.append(("+Inf", raw.get("+Inf", raw.get("count", 0.0))))
        out[task] = (buckets, raw.get("sum", 0.0))
    return out
