"""The envelope every analytics list shares, and the day arithmetic behind it."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypedDict

from django.db.models import Max, Min

from snapshots.feeds import rank_by
from snapshots.models import SnapshotDay

Row = dict[str, Any]


class InsufficientHistory(TypedDict):
    needed_days: int
    have_days: int
    available_in_days: int


class Envelope(TypedDict):
    feed: str
    rank_by: str
    as_of: dt.date | None
    date: dt.date | None
    baseline_date: dt.date | None
    insufficient_history: InsufficientHistory | None
    results: list[Row]


def resolve_day(*, feed: str, as_of: dt.date | None) -> dt.date | None:
    """D: the newest snapshot day of the feed on or before `as_of` (None: the newest of all)."""
    # A SnapshotDay is written with the day's rows, in the same transaction: only committed days exist.
    days = SnapshotDay.objects.filter(feed=feed)
    if as_of is not None:
        days = days.filter(taken_on__lte=as_of)
    return days.aggregate(day=Max("taken_on"))["day"]


def envelope(
    *,
    feed: str,
    as_of: dt.date | None,
    day: dt.date | None,
    baseline: dt.date | None = None,
    insufficient: InsufficientHistory | None = None,
    results: list[Row] | None = None,
) -> Envelope:
    return {
        "feed": feed,
        "rank_by": rank_by(feed),
        "as_of": as_of,
        "date": day,
        "baseline_date": baseline,
        "insufficient_history": insufficient,
        "results": results if results is not None else [],
    }


def no_data(*, feed: str, as_of: dt.date | None, needed_days: int) -> Envelope:
    """The answer when the feed has no snapshot at all on or before `as_of`."""
    insufficient: InsufficientHistory = {
        "needed_days": needed_days,
        "have_days": 0,
        "available_in_days": needed_days,
    }
    return envelope(feed=feed, as_of=as_of, day=None, insufficient=insufficient)


def history_too_short(
    *, feed: str, day: dt.date, needed_days: int, wait: int, recent_from: dt.date
) -> InsufficientHistory:
    """How much history there is, and in how many days the metric will have its comparison day.

    The comparison day appears once the oldest snapshot day in [`recent_from`, D] is `wait` days old;
    older days are too old to ever count, so they cannot help.
    """
    first = SnapshotDay.objects.filter(feed=feed).aggregate(day=Min("taken_on"))["day"]
    oldest_recent = SnapshotDay.objects.filter(feed=feed, taken_on__range=(recent_from, day)).aggregate(
        day=Min("taken_on")
    )["day"]
    # D itself is a snapshot day, so both aggregates find a day; `or day` only satisfies the type.
    have_days = (day - (first or day)).days + 1
    available_in = ((oldest_recent or day) + dt.timedelta(days=wait) - day).days
    return {"needed_days": needed_days, "have_days": have_days, "available_in_days": max(1, available_in)}
