from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from celery import Celery
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from prometheus_client.parser import text_string_to_metric_families

from devtools.testing import free_port, start_celery_worker
from snapshots import tasks
from snapshots.models import EtlRun, RawPage

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_feed_snapshot_task_runs_the_service_for_today(etl):
    run_id = tasks.feed_snapshot.apply(args=["airing"]).get()
    run = EtlRun.objects.get(pk=run_id)
    assert run.status == EtlRun.Status.SUCCESS
    assert run.trigger == EtlRun.Trigger.BEAT


@pytest.mark.django_db
def test_feed_snapshot_task_runs_the_queued_run_it_is_given(etl):
    queued = EtlRun.objects.create(
        feed="airing", taken_on="2000-01-01", trigger=EtlRun.Trigger.API, status=EtlRun.Status.QUEUED
    )
    run_id = tasks.feed_snapshot.apply(args=["airing", EtlRun.Trigger.API, queued.pk]).get()
    assert run_id == queued.pk
    run = EtlRun.objects.get()
    assert (run.status, run.trigger, run.items_loaded) == (EtlRun.Status.SUCCESS, EtlRun.Trigger.API, 25)
    # Its numbers are today's, whenever it was queued; its time counts from the worker's start.
    assert run.taken_on == timezone.now().date()
    assert run.started_at > queued.started_at


@pytest.mark.django_db
def test_etl_prune_task_reports_what_it_deleted(etl):
    tasks.feed_snapshot.apply(args=["airing"]).get()
    RawPage.objects.update(fetched_at="2000-01-01T00:00:00Z")
    assert tasks.etl_prune.apply().get() == {"raw_pages": 1, "runs": 0}


@pytest.mark.django_db
def test_the_default_schedule_runs_every_feed_daily_and_a_prune():
    schedule = {
        task.name: (task.task, task.args, task.crontab.hour, task.crontab.minute)
        for task in PeriodicTask.objects.filter(task__startswith="snapshots.")
    }
    feeds = {args for task, args, _, _ in schedule.values() if task == "snapshots.tasks.feed_snapshot"}
    assert feeds == {f'["{feed}"]' for feed in ("top", "airing", "upcoming", "popular", "movies", "season")}
    times = [(hour, minute) for task, _, hour, minute in schedule.values()]
    assert len(set(times)) == len(times), "feeds are staggered"
    assert schedule["prune raw pages and old runs"][0] == "snapshots.tasks.etl_prune"


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_task_over_the_redis_broker(etl):
    """Send the task through Redis to a real `celery worker` process and wait for its run."""
    broker = settings.REDIS_URL.rsplit("/", 1)[0] + "/14"
    queue = f"test-{uuid.uuid4().hex[:8]}"
    metrics_port = free_port()
    worker = start_celery_worker(
        queue,
        jikan=etl,
        stderr=subprocess.PIPE,
        CELERY_BROKER_URL=broker,
        CELERY_METRICS_PORT=str(metrics_port),
        CELERY_METRICS_ADDR="127.0.0.1",
    )
    try:
        sender = Celery(broker=broker)
        sender.send_task("snapshots.tasks.feed_snapshot", args=["airing", "beat"], queue=queue)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not EtlRun.objects.filter(status=EtlRun.Status.SUCCESS).exists():
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else "worker exited"
            time.sleep(0.2)
        run = EtlRun.objects.get()
        assert run.status == EtlRun.Status.SUCCESS
        assert run.items_loaded == 25
        assert etl.request_count("/top/anime") == 1
        # The worker's own /metrics counts what only it saw: its Jikan requests and its runs.
        families = {
            sample.name: sample
            for family in text_string_to_metric_families(httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text)
            for sample in family.samples
            if sample.labels.get("feed", "airing") == "airing"
        }
        assert families["etl_runs_total"].value == 1
        assert families["jikan_requests_total"].labels == {"endpoint": "/top/anime", "status": "200"}
        assert families["etl_facts_up"].value == 1
    finally:
        worker.terminate()
        worker.wait(timeout=20)
