from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, time_limit=15 * 60, soft_time_limit=14 * 60)
def import_apply(job_id: int) -> int:
    """Apply a person's list import (tracking.services.import_apply); a failure is recorded on the job."""
    from tracking import services

    try:
        return services.import_apply(job_id=job_id).pk
    except Exception:
        logger.exception("import %s failed", job_id)
        services.import_fail(
            job_id=job_id, error="The import stopped on an error; nothing after the last batch was applied."
        )
        raise
