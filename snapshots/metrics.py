"""Prometheus metrics of the ETL.

Counters and histograms count what this process did (the Celery worker serves them on its own
port). Facts that live in the database, such as the last success per feed and the data age, are
read from it at scrape time by `EtlFactsCollector`, so every process reports the same truth.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from animedash.metrics import metrics_serve
from snapshots.feeds import FEEDS
from snapshots.models import EtlRun
from snapshots.selectors import feed_statuses

logger = logging.getLogger(__name__)

RUNS = Counter("etl_runs_total", "ETL runs finished, by feed and status.", ["feed", "status"])
ITEMS = Counter("etl_items_total", "Jikan items handled by ETL runs, by feed and outcome.", ["feed", "outcome"])
RUN_SECONDS = Histogram(
    "etl_run_duration_seconds",
    "Wall time of ETL runs.",
    ["feed"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
)


def metric_feed(feed: str) -> str:
    """The feed label: backfill runs are named per season, which would explode the label's values."""
    return feed if feed in FEEDS else "backfill"


def record_run(run: EtlRun) -> None:
    feed = metric_feed(run.feed)
    RUNS.labels(feed=feed, status=run.status).inc()
    for outcome, count in (
        ("loaded", run.items_loaded),
        ("rejected", run.items_rejected),
        ("duplicate", run.items_duplicate),
    ):
        ITEMS.labels(feed=feed, outcome=outcome).inc(count)
    if run.duration_seconds is not None:
        RUN_SECONDS.labels(feed=feed).observe(run.duration_seconds)


class EtlFactsCollector:
    """Per-feed facts read from the database at each scrape."""

    def describe(self) -> Iterator[Metric]:
        # Declared up front so registering the collector does not query the database.
        yield GaugeMetricFamily("etl_facts_up", "")
        for name in ("etl_last_success_timestamp_seconds", "etl_data_age_seconds", "etl_consecutive_failures"):
            yield GaugeMetricFamily(name, "", labels=["feed"])

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("etl_facts_up", "1 when the ETL facts could be read from the database.")
        try:
            families = list(self._facts())
        except DatabaseError as exc:
            logger.warning("ETL facts unavailable for /metrics: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _facts(self) -> Iterator[Metric]:
        now = timezone.now()
        last_success = GaugeMetricFamily(
            "etl_last_success_timestamp_seconds", "When the feed's last successful run finished.", labels=["feed"]
        )
        age = GaugeMetricFamily(
            "etl_data_age_seconds", "Seconds since the feed's last successful run finished.", labels=["feed"]
        )
        failures = GaugeMetricFamily(
            "etl_consecutive_failures", "Failed runs of the feed since its last success.", labels=["feed"]
        )
        finished = {status["feed"]: status["last_success_at"] for status in feed_statuses()}
        for feed in FEEDS:
            at = finished.get(feed)
            if at is not None:
                last_success.add_metric([feed], at.timestamp())
                age.add_metric([feed], (now - at).total_seconds())
            failures.add_metric([feed], self._failures_since_success(feed))
        yield from (last_success, age, failures)

    @staticmethod
    def _failures_since_success(feed: str) -> int:
        # Skipped runs (another run held the lock) and queued ones (not started) neither succeed nor fail.
        recent = (
            EtlRun.objects.filter(feed=feed)
            .exclude(status__in=(EtlRun.Status.SKIPPED, EtlRun.Status.QUEUED))
            .order_by("-started_at", "-id")
        )
        count = 0
        for status in recent.values_list("status", flat=True)[:50]:
            if status != EtlRun.Status.FAILED:
                break
            count += 1
        return count


def serve_worker_metrics(**kwargs: Any) -> None:
    """Serve the Celery worker's own /metrics (Jikan requests, ETL runs) when CELERY_METRICS_PORT is set.

    Connected to Celery's `worker_init` by `SnapshotsConfig.ready()`. Run the worker with `--pool threads`
    (or solo) so tasks count into this process's registry.
    """
    from snapshots import jikan  # noqa: F401  (registers the Jikan metrics before the first task)

    metrics_serve(port=settings.CELERY_METRICS_PORT, addr=settings.CELERY_METRICS_ADDR)
