"""Celery tasks: thin wrappers that run the services."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from animedash.logging import log_context


# A run never outlives its feed's lock: another run could start beside it.
@shared_task(bind=True, acks_late=True, time_limit=settings.ETL_LOCK_TTL, soft_time_limit=settings.ETL_LOCK_TTL - 5)
def feed_snapshot(self, feed: str, trigger: str = "beat", queued_id: int | None = None) -> int:
    """Snapshot one feed for today (UTC), in the queued run `queued_id` when given. Returns the EtlRun id."""
    from snapshots import services  # imported here to keep worker start-up free of import cycles

    with log_context(task_id=self.request.id):
        run = services.feed_snapshot(feed=feed, taken_on=timezone.now().date(), trigger=trigger, queued_id=queued_id)
    return run.pk


@shared_task(bind=True, acks_late=True, time_limit=30 * 60)
def etl_prune(self) -> dict[str, int]:
    """Drop raw pages and run logs past their retention."""
    from snapshots import services

    with log_context(task_id=self.request.id):
        raw_pages, runs = services.etl_prune()
    return {"raw_pages": raw_pages, "runs": runs}
