"""Celery application, following Celery's Django recipe."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "animedash.settings")

app = Celery("animedash")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def start_metrics_server(**kwargs: Any) -> None:
    """Serve the worker's own /metrics (Jikan requests, ETL runs) when CELERY_METRICS_PORT is set.

    Run the worker with `--pool threads` (or solo) so tasks count into this process's registry.
    """
    from django.conf import settings
    from prometheus_client import start_http_server

    import snapshots.jikan  # noqa: F401  (registers the Jikan metrics before the first task)

    if settings.CELERY_METRICS_PORT:
        start_http_server(settings.CELERY_METRICS_PORT, addr=settings.CELERY_METRICS_ADDR)
