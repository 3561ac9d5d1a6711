from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.db import transaction

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, time_limit=15 * 60, soft_time_limit=14 * 60)
def rules_evaluate(feed: str, day: str) -> int:
    """Fire the feed's alert rules on a committed snapshot day, then send what is due; returns the events."""
    from alerts import services

    result = services.rules_evaluate(feed=feed, day=dt.date.fromisoformat(day))
    if result.rules:
        counts = {"rules": result.rules, "events": result.events, "deliveries": result.deliveries}
        logger.info("alerts evaluated", extra={"feed": feed, "day": day, **counts})
    if result.deliveries:
        transaction.on_commit(deliveries_send.delay)
    return result.events


@shared_task(acks_late=True, time_limit=30 * 60, soft_time_limit=29 * 60)
def deliveries_send() -> dict[str, int]:
    """Send every due e-mail and webhook (beat runs it every minute for retries)."""
    from alerts import delivery

    return dict(delivery.deliveries_send())


@shared_task(acks_late=True, time_limit=30 * 60, soft_time_limit=29 * 60)
def digests_send() -> int:
    """Send the daily digest e-mails (beat, once a day)."""
    from alerts import delivery

    return delivery.digests_send()
