from __future__ import annotations

import pytest
from django_celery_beat.models import PeriodicTask

pytestmark = pytest.mark.django_db


def test_migrations_schedule_the_delivery_retries_and_the_daily_digest():
    tasks = {task.name: task for task in PeriodicTask.objects.select_related("interval", "crontab")}
    retries = tasks["send due alert deliveries"]
    assert retries.task == "alerts.tasks.deliveries_send"
    assert (retries.interval.every, retries.interval.period) == (1, "minutes")
    digest = tasks["send alert digests"]
    assert digest.task == "alerts.tasks.digests_send"
    assert (digest.crontab.hour, digest.crontab.minute) == ("7", "0")
