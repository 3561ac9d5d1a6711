"""Reads only the server-rendered pages need: the beat schedule, recent rejections, JSON for first paint.

Everything the API also serves comes from `analytics.selectors` through `analytics.cache.cached`, with
the same endpoint names and parameters as the API, so a page and the API warm the same cache entries.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.db.models import Max, Min
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from rest_framework.utils.encoders import JSONEncoder

from snapshots.models import Anime, Rejection


def as_json(data: Any) -> Any:
    """`data` as the API's JSON renderer writes it (decimals as numbers, dates as ISO strings).

    `json_script` would write decimals as strings; the page scripts then read first-paint data and
    API answers alike.
    """
    return json.loads(json.dumps(data, cls=JSONEncoder))


def next_scheduled_runs(*, now: dt.datetime | None = None) -> list[dict[str, Any]]:
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
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
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


def _next_at(task: PeriodicTask, now: dt.datetime) -> dt.datetime | None:
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
        return (estimate + dt.timedelta(seconds=30)).replace(second=0, microsecond=0)
    return None


def recent_rejections(*, limit: int = 20) -> list[Rejection]:
    """The newest rejected items with their run, newest first."""
    return list(Rejection.objects.select_related("run").order_by("-run__started_at", "-id")[:limit])


def season_years() -> dict[str, int | None]:
    """The first and last year any known title aired in a season: the bounds of a custom range."""
    span = Anime.objects.exclude(season="").aggregate(first=Min("year"), last=Max("year"))
    return {"first": span["first"], "last": span["last"]}
