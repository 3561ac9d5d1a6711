"""Celery tasks: thin wrappers that run the analytics services."""

from __future__ import annotations

from pathlib import Path

from celery import shared_task
from django.conf import settings

from animedash.logging import log_context


@shared_task(bind=True, acks_late=True, time_limit=2 * 3600, soft_time_limit=2 * 3600 - 60)
def exports_write(self) -> str:
    """Write the open data dump to settings.EXPORT_DIR, keeping the newest EXPORT_KEEP. Returns its folder.

    Incremental: the months unchanged since the previous night's dump are linked, not read again."""
    from analytics import exports  # imported here to keep worker start-up light (pyarrow)

    with log_context(task_id=self.request.id):
        result = exports.exports_write(out=Path(settings.EXPORT_DIR), keep=settings.EXPORT_KEEP, incremental=True)
    return str(result.path)
