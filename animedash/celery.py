"""Celery application, following Celery's Django recipe.

The shell imports no app: each app wires its own worker hooks in `AppConfig.ready()`.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "animedash.settings")

app = Celery("animedash")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
