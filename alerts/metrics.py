"""Prometheus metrics of alert deliveries.

DELIVERIES counts this process's attempts by channel and outcome (sent, retry, failed, gone). The backlog
is a fact of the database, read at scrape time by `DeliveryBacklogCollector` so every process agrees.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db import DatabaseError
from django.db.models import Count, Min, Q
from django.utils import timezone
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily, Metric

logger = logging.getLogger(__name__)

DELIVERIES = Counter(
    "alert_deliveries_total", "Alert delivery attempts, by channel and outcome.", ["channel", "outcome"]
)


class DeliveryBacklogCollector:
    """Deliveries waiting to be sent, and how long the oldest has waited, per channel."""

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("alert_deliveries_pending", "", labels=["channel"])
        yield GaugeMetricFamily("alert_deliveries_retrying", "", labels=["channel"])
        yield GaugeMetricFamily("alert_delivery_oldest_pending_seconds", "", labels=["channel"])

    def collect(self) -> Iterator[Metric]:
        from alerts.models import Delivery

        pending = GaugeMetricFamily("alert_deliveries_pending", "Deliveries not sent yet.", labels=["channel"])
        retrying = GaugeMetricFamily(
            "alert_deliveries_retrying", "Pending deliveries that failed at least once.", labels=["channel"]
        )
        oldest = GaugeMetricFamily(
            "alert_delivery_oldest_pending_seconds", "Age of the oldest pending delivery.", labels=["channel"]
        )
        now = timezone.now()
        try:
            rows = list(
                Delivery.objects.filter(status=Delivery.Status.PENDING)
                .values("channel")
                .annotate(total=Count("id"), retrying=Count("id", filter=Q(attempts__gt=0)), oldest=Min("created_at"))
            )
        except DatabaseError as exc:
            logger.warning("Alert delivery facts unavailable for /metrics: %s", exc)
            return
        found = {row["channel"]: row for row in rows}
        for channel in Delivery.Channel.values:
            row = found.get(channel)
            pending.add_metric([channel], row["total"] if row else 0)
            retrying.add_metric([channel], row["retrying"] if row else 0)
            oldest.add_metric([channel], (now - row["oldest"]).total_seconds() if row else 0)
        yield from (pending, retrying, oldest)


def register() -> None:
    if not any(isinstance(c, DeliveryBacklogCollector) for c in list(REGISTRY._collector_to_names)):
        REGISTRY.register(DeliveryBacklogCollector())
