from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from snapshots.models import EtlRun, SnapshotDay
from snapshots.selectors import STALE_AFTER, feed_statuses, is_stale, next_scheduled_runs
from snapshots.tests.factories import EtlRunFactory

pytestmark = pytest.mark.django_db


def test_a_feed_is_stale_once_its_last_success_is_older_than_the_rule():
    now = timezone.now()
    assert not is_stale(now - STALE_AFTER + dt.timedelta(minutes=1), now=now)
    assert is_stale(now - STALE_AFTER - dt.timedelta(minutes=1), now=now)
    assert is_stale(None, now=now)


def test_feed_statuses_flag_staleness_and_name_the_newest_run_by_start_time():
    now = timezone.now()
    EtlRunFactory(feed="top", finished_at=now - dt.timedelta(hours=30))
    EtlRunFactory(feed="airing", finished_at=now - dt.timedelta(hours=2))
    # A run that started later but was created first (a lower id) is still the newest.
    late = EtlRunFactory(feed="airing", status=EtlRun.Status.FAILED, finished_at=None)
    EtlRun.objects.filter(pk=late.pk).update(started_at=now + dt.timedelta(minutes=5))
    statuses = {status["feed"]: status for status in feed_statuses()}
    assert statuses["top"]["stale"] is True
    assert statuses["airing"]["stale"] is False
    assert statuses["airing"]["last_run"].pk == late.pk
    assert statuses["season"]["stale"] is True  # never succeeded


def test_dashboard_and_status_page_agree_on_a_feed_a_day_and_a_half_old(client):
    now = timezone.now()
    # Yesterday's snapshot, finished 36 hours ago: the dashboard used to call it fresh (1 day old).
    run = EtlRunFactory(
        feed="top", taken_on=now.date() - dt.timedelta(days=1), finished_at=now - dt.timedelta(hours=36)
    )
    SnapshotDay.objects.create(feed="top", taken_on=run.taken_on, rows=1, run=run)
    dashboard = client.get(reverse("analytics:dashboard")).content.decode()
    status = client.get(reverse("analytics:status")).content.decode()
    assert '<tr class="stale">\n        <th scope="row">top</th>' in dashboard
    assert "card card-warn" in status


def test_next_scheduled_runs_reads_crontab_and_interval_entries():
    PeriodicTask.objects.all().delete()
    now = dt.datetime(2024, 5, 1, 23, 0, tzinfo=dt.UTC)
    crontab = CrontabSchedule.objects.create(minute="10", hour="0", timezone="UTC")
    every = IntervalSchedule.objects.create(every=2, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.create(name="nightly", task="t", crontab=crontab)
    PeriodicTask.objects.create(name="often", task="t", interval=every, last_run_at=now - dt.timedelta(hours=1))
    PeriodicTask.objects.create(name="off", task="t", interval=every, enabled=False)
    entries = next_scheduled_runs(now=now)
    assert [(e["name"], e["next_at"]) for e in entries] == [
        ("often", dt.datetime(2024, 5, 2, 0, 0, tzinfo=dt.UTC)),
        ("nightly", dt.datetime(2024, 5, 2, 0, 10, tzinfo=dt.UTC)),
    ]
    assert entries[0]["schedule"] == "every 2 hours"
