"""The Redis-backed, Celery-free pieces a distributed deployment shares across machines: the LSH index, the
host gate, the re-clustering locks, the task-latency histogram, and every Redis key layout (``keys``).
"""

from pipeline._lazy import lazy_exports

_EXPORTS = {
    "RedisHostGate": "pipeline.shared.host_gate",
    "RedisLSHIndex": "pipeline.shared.redis_index",
    "cluster_lock_for": "pipeline.shared.locks",
    "local_lock": "pipeline.shared.locks",
    "pg_advisory_lock": "pipeline.shared.locks",
    "record_task_latency": "pipeline.shared.latency",
    "redis_lock": "pipeline.shared.locks",
    "task_histograms": "pipeline.shared.latency",
    "workers_cluster_lock": "pipeline.shared.locks",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports("pipeline.shared", _EXPORTS)
