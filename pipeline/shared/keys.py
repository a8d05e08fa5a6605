"""Every Redis key layout of a deployment, in one place: all keys live under ``settings.redis_prefix``.

    {prefix}:idx:...                    the shared LSH index (``redis_index.py``)
    {prefix}:polite:{{host}}:...        per-host politeness (``host_gate.py``)
    {prefix}:cluster-lock               the re-clustering lock when the store is SQLite (``locks.py``)
    {prefix}:run:{id}[:pages|:done|...] one distributed run's state (``workers/runs.py``)
    {prefix}:reprocess:{job}            one distributed re-processing's finished batches (``workers/tasks.py``)
    {prefix}:source-lock:{spec key}     a scheduled source being ingested (``workers/tasks.py``)
    {prefix}:deadletters                the dead-letter list; {prefix}:deliveries:{task id} its counters
    {prefix}:metrics:task_latency[:{task}]  the task-latency histogram (``latency.py``)
    {prefix}:redbeat:...                celery-redbeat's schedule and leader lock (``workers/app.py``)
"""

from __future__ import annotations


def index_namespace(prefix: str) -> str:
    return f"{prefix}:idx"


def politeness(prefix: str, host: str) -> str:
    """The hash-tagged base of one host's politeness keys (one Redis Cluster slot per host)."""
    return f"{prefix}:polite:{{{host}}}"


def cluster_lock(prefix: str) -> str:
    return f"{prefix}:cluster-lock"


def run(prefix: str, run_id: int) -> str:
    return f"{prefix}:run:{run_id}"


def reprocess(prefix: str, job: str) -> str:
    """A hash: batch index → that batch's report (JSON), written by the worker that re-processed it."""
    return f"{prefix}:reprocess:{job}"


def source_lock(prefix: str, spec_key: str) -> str:
    return f"{prefix}:source-lock:{spec_key}"


def dead_letters(prefix: str) -> str:
    return f"{prefix}:deadletters"


def deliveries(prefix: str, task_id: str) -> str:
    return f"{prefix}:deliveries:{task_id}"


def task_latency_index(prefix: str) -> str:
    """The set naming every task that has a latency histogram."""
    return f"{prefix}:metrics:task_latency"


def task_latency(prefix: str, task: str) -> str:
    """One task's histogram: a hash of cumulative bucket counts, ``count`` and ``sum``."""
    return f"{prefix}:metrics:task_latency:{task}"


def redbeat(prefix: str) -> str:
    return f"{prefix}:redbeat:"
