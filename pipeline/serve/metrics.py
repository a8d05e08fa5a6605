"""``/metrics`` in the Prometheus text format, derived from the store (and the broker) at scrape time.

The store is the one record every deployment shares, so counts are read from it when Prometheus scrapes
instead of being incremented in whichever process happened to do the work: an API replica restarted a minute
ago still reports the right totals, and embedded and distributed deployments report the same way. Queue depths
come from Redis when a broker is configured. Task latency is recorded by the workers into Redis (cumulative
histogram buckets, ``pipeline.shared.latency``) so that every API replica can expose it without Celery.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.serve import queries
from pipeline.settings import Settings
from pipeline.shared import keys
from pipeline.shared.latency import task_histograms
from pipeline.store import Store

log = logging.getLogger(__name__)

RUN_BUCKETS: tuple[float, ...] = (1, 10, 60, 300, 900, 1800, 3600, 4 * 3600)
#: The store is read at most this often however often it is scraped (several Prometheus replicas, people).
STORE_CACHE_SECONDS = 2.0


def broker_url_of(settings: Settings) -> str | None:
    from pipeline.serve.status import broker_url

    return broker_url(settings)


def _histogram_buckets(values: Sequence[float], bounds: Iterable[float]) -> list[tuple[str, float]]:
    out = [(repr(float(b)), float(sum(1 for v in values if v <= b))) for b in bounds]
    out.append(("+Inf", float(len(values))))
    return out


class StoreCollector(Collector):
    """Collects pipeline counts from the store (and queue depths from the broker) on each scrape."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store, self.settings = store, settings
        self._cached: tuple[float, list[Metric]] | None = None
        self._client: Any | None = None
        self._redis: Any | None = None

    def describe(self) -> list[Metric]:
        return []  # unchecked collector: its series depend on the data

    def collect(self) -> Iterator[Metric]:
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > STORE_CACHE_SECONDS:
            self._cached = (now, list(self._build()))
        yield from self._cached[1]

    def _build(self) -> Iterator[Metric]:
        totals = queries.store_totals(self.store)
        for name, key, doc in (
            ("reprint_pages_fetched", "pages_fetched", "Pages fetched and stored, by source."),
            ("reprint_pages_extracted", "pages_extracted", "Pages extracted into articles, by source."),
            ("reprint_pages_failed", "pages_failed", "Errors recorded against pages, by source."),
        ):
            fam = CounterMetricFamily(name, doc, labels=["source"])
            for source, n in sorted(totals[key].items()):
                fam.add_metric([source], n)
            yield fam
        yield GaugeMetricFamily("reprint_articles", "Articles stored.", value=totals["articles"])
        yield GaugeMetricFamily("reprint_canonical_articles", "Articles that are canonical.",
                                value=totals["canonical_articles"])
        yield GaugeMetricFamily("reprint_clusters", "Clusters that have articles.", value=totals["clusters"])
        flags = GaugeMetricFamily("reprint_flagged_articles", "Articles carrying each flag.", labels=["flag"])
        for flag, n in sorted(totals["flags"].items()):
            flags.add_metric([flag], n)
        yield flags
        events = CounterMetricFamily("reprint_events", "Events in the changes feed, by type.", labels=["type"])
        for etype, n in sorted(totals["events"].items()):
            events.add_metric([etype], n)
        yield events
        yield CounterMetricFamily("reprint_canonical_changes", "Times a cluster's canonical moved.",
                                  value=totals["events"].get("canonical_changed", 0))
        runs = totals["run_seconds"]
        yield HistogramMetricFamily("reprint_run_duration_seconds", "Duration of the last 1000 finished runs.",
                                    buckets=_histogram_buckets(runs, RUN_BUCKETS), sum_value=float(sum(runs)))
        yield from self._broker()

    def _broker(self) -> Iterator[Metric]:
        from pipeline.serve.status import broker_client, broker_url, queue_depths

        up = GaugeMetricFamily("reprint_broker_up", "1 when the broker answered this scrape (absent: none set).")
        url = broker_url(self.settings)  # explicit only: a scrape never waits on a default nobody set
        client = self._client if self._client is not None else (broker_client(self.settings, url=url) if url else None)
        if client is None:
            return
        self._client = client
        try:
            depths = queue_depths(client)
            latency = list(self._task_latency())
        except Exception as err:  # a broker outage is a metric, not a failed scrape
            log.warning("broker unreachable during scrape: %s", err)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily("reprint_queue_depth", "Messages waiting in each queue.", labels=["queue"])
        for name, n in sorted(depths.items()):
            depth.add_metric([name], n)
        yield depth
        yield from latency

    def _redis_client(self) -> Any:
        """The workers' Redis (``redis_url``: dead letters, task latency), which may differ from the broker."""
        import redis

        if self._redis is None:
            url = getattr(self.settings, "redis_url", None) or broker_url_of(self.settings)
            self._redis = redis.Redis.from_url(str(url), socket_timeout=2, socket_connect_timeout=2)
        return self._redis

    def _task_latency(self) -> Iterator[Metric]:
        prefix = getattr(self.settings, "redis_prefix", "reprint")
        client = self._redis_client()
        yield GaugeMetricFamily("reprint_dead_letters", "Tasks in the dead-letter list.",
                                value=int(client.llen(keys.dead_letters(prefix))))
        histograms = task_histograms(client, prefix=prefix)
        if not histograms:
            return
        fam = HistogramMetricFamily("reprint_task_latency_seconds", "Task run time, by task (recorded by workers).",
                                    labels=["task"])
        for task, (buckets, total) in histograms.items():
            fam.add_metric([task], buckets, sum_value=total)
        yield fam


class Metrics:
    """The API process's registry: the store collector plus the API's own request latency."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StoreCollector(store, settings))
        self.requests = Histogram("reprint_api_request_seconds", "API request latency, by route and status.",
                                  ["method", "route", "status"], registry=self.registry,
                                  buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Called by the API's timing middleware for every request."""
        self.requests.labels(method, route, str(status)).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """(body, content type) of one scrape."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
