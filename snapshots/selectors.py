"""Reads of the ingestion side that commands, the admin and the read side reuse: feed freshness, runs,
rejections, the beat schedule."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any, TypedDict

from django.db.models import Exists, F, Max, OuterRef, Q, QuerySet
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from snapshots.feeds import FEEDS
from snapshots.models import EtlRun, RawPage, Rejection, Snapshot, SnapshotDay

# A feed is stale when its last successful run finished longer ago than this (or never): the one rule
# behind the warnings of /status/, the dashboard and `etl status`.
STALE_AFTER = timedelta(hours=24)


class FeedStatus(TypedDict):
    feed: str
    latest_day: date | None
    last_success_at: datetime | None
    age_hours: float | None
    stale: bool
    last_run: EtlRun | None


def is_stale(last_success_at: datetime | None, *, now: datetime) -> bool:
    return last_success_at is None or now - last_success_at > STALE_AFTER


def feed_last_runs(runs: QuerySet[EtlRun]) -> dict[str, EtlRun]:
    """The newest run of each feed among `runs` (by start, then id), whatever its outcome, in two small queries.

    Each feed's newest start first, then the runs that started then: ranking every run in a window, as this
    once did, sorted years of runs (6,000 at the whole-catalogue benchmark) on every overview.
    """
    newest = runs.values("feed").annotate(started=Max("started_at")).order_by()
    started = [Q(feed=row["feed"], started_at=row["started"]) for row in newest]
    latest: dict[str, EtlRun] = {}
    # Two runs of a feed that started at the same instant: the higher id is the newer, as the model orders them.
    for run in runs.filter(reduce(or_, started)).order_by("id") if started else []:
        latest[run.feed] = run
    return latest


def data_is_simulated() -> bool:
    """True when the history was written by `seed_demo` against the simulated catalogue."""
    return EtlRun.objects.filter(trigger=EtlRun.Trigger.DEMO).exists()


def feed_statuses() -> list[FeedStatus]:
    """Each feed's newest successful day, how old it is, and its last run of any outcome."""
    now = timezone.now()
    success = {
        row["feed"]: row
        for row in EtlRun.objects.filter(status__in=EtlRun.OK_STATUSES, feed__in=FEEDS)
        .values("feed")
        .annotate(latest_day=Max("taken_on"), last_success_at=Max("finished_at"))
    }
    last_runs = feed_last_runs(EtlRun.objects.filter(feed__in=FEEDS))
    statuses: list[FeedStatus] = []
    for name in FEEDS:
        row: dict[str, Any] = dict(success.get(name) or {})
        finished = row.get("last_success_at")
        statuses.append(
            {
                "feed": name,
                "latest_day": row.get("latest_day"),
                "last_success_at": finished,
                "age_hours": round((now - finished).total_seconds() / 3600, 1) if finished else None,
                "stale": is_stale(finished, now=now),
                "last_run": last_runs.get(name),
            }
        )
    return statuses


def snapshot_problems(*, feed: str, taken_on: date) -> list[str]:
    """Integrity problems of one feed's day: missing or duplicate positions, rank gaps, a count drop."""
    rows = list(Snapshot.objects.filter(feed=feed, taken_on=taken_on).values_list("position", "rank"))
    if not rows:
        return [f"{feed}: no snapshot on {taken_on}"]
    problems = []
    positions = Counter(position for position, _ in rows)
    duplicates = sorted(p for p, times in positions.items() if times > 1)
    if duplicates:
        problems.append(f"{feed}: duplicate positions {duplicates}")
    missing = sorted(set(range(1, len(rows) + 1)) - set(positions))
    if missing:
        problems.append(f"{feed}: missing positions {missing}")
    ranks = Counter(rank for _, rank in rows if rank is not None)
    # MAL ranks ties alike (two titles at 16, then 18), so a gap is a jump past the tied block.
    gaps = [(a, b) for a, b in itertools.pairwise(sorted(ranks)) if b > a + ranks[a]]
    # Filtered feeds (airing, movies...) are not dense in MAL's global rank, so only `top` must be.
    if feed == "top" and gaps:
        problems.append(f"{feed}: rank gaps {gaps[:10]}")
    previous = (
        Snapshot.objects.filter(feed=feed, taken_on__lt=taken_on).values("taken_on").order_by("-taken_on").first()
    )
    if previous:
        before = Snapshot.objects.filter(feed=feed, taken_on=previous["taken_on"]).count()
        if len(rows) < before * 0.9:
            problems.append(f"{feed}: {len(rows)} rows, down from {before} on {previous['taken_on']}")
    return problems


def misdated_days(*, feed: str | None = None, taken_on: date | None = None) -> list[str]:
    """Days stored under a date their rows could not have been fetched on, each as a problem to report.

    Jikan has no history, so a day is true only when its rows were fetched that day: a day whose run
    started on another date, with no raw page of the feed and day fetched on the day itself, holds
    another day's numbers (as an `etl run --date` of a past day once wrote). A day whose run is
    gone (pruned) cannot be judged and is left out.
    """
    fetched_that_day = RawPage.objects.filter(
        run__feed=OuterRef("feed"), run__taken_on=OuterRef("taken_on"), fetched_at__date=OuterRef("taken_on")
    )
    days = (
        SnapshotDay.objects.filter(run__isnull=False)
        .exclude(run__started_at__date=F("taken_on"))
        .exclude(Exists(fetched_that_day))
        .select_related("run")
        .order_by("feed", "taken_on")
    )
    if feed:
        days = days.filter(feed=feed)
    if taken_on:
        days = days.filter(taken_on=taken_on)
    return [
        f"{day.feed}: {day.taken_on} was written by run #{day.run_id}, started on {day.run.started_at.date()}, "
        f"from no page fetched on {day.taken_on}; remove it with "
        f"`manage.py etl delete-day --feed {day.feed} --date {day.taken_on}`"
        for day in days
        if day.run is not None
    ]


def recent_runs(*, limit: int = 20) -> list[EtlRun]:
    """The newest runs (the model's order: by start, then id)."""
    return list(EtlRun.objects.all()[:limit])


def next_scheduled_runs(*, now: datetime | None = None) -> list[dict[str, Any]]:
    """Enabled beat entries and when each runs next, soonest first (from django-celery-beat's tables)."""
    now = now or timezone.now()
    entries = []
    tasks = PeriodicTask.objects.filter(enabled=True).select_related("crontab", "interval", "clocked", "solar")
    for task in tasks:
        entries.append(
            {
                "name": task.name,
                "task": task.task,
                "schedule": _describe(task),
                "next_at": _next_at(task, now),
                "last_run_at": task.last_run_at,
            }
        )
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(entries, key=lambda e: (e["next_at"] or far, e["name"]))


def _describe(task: PeriodicTask) -> str:
    if task.crontab is not None:
        c = task.crontab
        if c.day_of_week == c.day_of_month == c.month_of_year == "*" and c.hour.isdigit() and c.minute.isdigit():
            return f"daily at {int(c.hour):02d}:{int(c.minute):02d} {c.timezone}"
        return f"cron {c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week} ({c.timezone})"
    if task.interval is not None:
        return f"every {task.interval.every} {task.interval.period}"
    if task.clocked is not None:
        return "once"
    return "solar event" if task.solar is not None else "unknown"


def _next_at(task: PeriodicTask, now: datetime) -> datetime | None:
    if task.one_off and task.total_run_count:
        return None
    if task.clocked is not None:
        return task.clocked.clocked_time
    if task.interval is not None:
        return max(now, (task.last_run_at or now) + task.interval.schedule.run_every)
    if task.crontab is not None:
        schedule = task.crontab.schedule
        # Estimate from `now`, not from the wall clock the schedule reads by default.
        schedule.nowfun = lambda: now
        # celery's estimate lands a few microseconds before the minute; crontab times are whole minutes.
        estimate = now + schedule.remaining_estimate(now)
        return (estimate + timedelta(seconds=30)).replace(second=0, microsecond=0)
    return None


def recent_rejections(*, limit: int = 20) -> list[Rejection]:
    """The newest rejected items with their run, newest first."""
    return list(Rejection.objects.select_related("run").order_by("-run__started_at", "-id")[:limit])
