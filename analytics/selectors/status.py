"""How much history there is, how fresh each feed is, and the ETL runs that wrote it."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.db.models import Count, Max, Min, Q, QuerySet, Sum
from django.utils import timezone

from snapshots.feeds import FEEDS, feed_order
from snapshots.models import Anime, DataEdit, EtlRun, SnapshotDay
from snapshots.selectors import feed_last_runs, feed_statuses


def _run_facts(run: EtlRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {"id": run.pk, "status": run.status, "taken_on": run.taken_on, "finished_at": run.finished_at}


def _feed_days(*, as_of: dt.date | None = None) -> dict[str, dict[str, Any]]:
    """Per feed with data: its first and latest snapshot day, how many days, and the age in days."""
    # SnapshotDay holds one row per (feed, day), written with the day's snapshots: no snapshot scan.
    days = SnapshotDay.objects.all() if as_of is None else SnapshotDay.objects.filter(taken_on__lte=as_of)
    today = timezone.now().date()
    stats = days.values("feed").annotate(first_day=Min("taken_on"), latest_day=Max("taken_on"), days=Count("id"))
    return {row["feed"]: {**row, "age_days": (today - row["latest_day"]).days} for row in stats.order_by()}


def _feed_names(present: set[str]) -> list[str]:
    # Every declared feed (even one without data yet), and any other feed found in the data.
    return sorted(set(FEEDS) | present, key=feed_order)


def overview(*, as_of: dt.date | None = None) -> dict[str, Any]:
    """Counts of the whole history, each feed's extent and freshness, and the last ETL runs."""
    days_with_data = SnapshotDay.objects.all()
    titles = Anime.objects.all()
    runs = EtlRun.objects.all()
    if as_of is not None:
        days_with_data, titles = days_with_data.filter(taken_on__lte=as_of), titles.filter(first_seen__lte=as_of)
        runs = runs.filter(taken_on__lte=as_of)
    counts = days_with_data.aggregate(rows=Sum("rows"), snapshot_days=Count("taken_on", distinct=True))
    days = _feed_days(as_of=as_of)
    last_runs = feed_last_runs(runs)
    stale = _stale_now()
    feeds = []
    for feed in _feed_names(set(days) | set(last_runs)):
        extent = days.get(feed, {})
        feeds.append(
            {
                "feed": feed,
                "first_day": extent.get("first_day"),
                "latest_day": extent.get("latest_day"),
                "days": extent.get("days", 0),
                "age_days": extent.get("age_days"),
                "stale": stale.get(feed, True),
                "last_run": _run_facts(last_runs.get(feed)),
            }
        )
    return {
        "anime": titles.count(),
        "snapshot_days": counts["snapshot_days"],
        "rows": counts["rows"] or 0,
        "feeds": feeds,
        # The newest run overall is the newest of each feed's newest: no query of its own.
        "last_run": _run_facts(max(last_runs.values(), key=lambda run: (run.started_at, run.pk), default=None)),
    }


def _stale_now() -> dict[str, bool]:
    # The one staleness rule, as of now (also when a past day is replayed: it says whether to worry today).
    return {status["feed"]: status["stale"] for status in feed_statuses()}


def feeds_summary() -> list[dict[str, Any]]:
    """Each declared feed: what it asks Jikan, its page budget, how much history it has and how fresh it is."""
    days = _feed_days()
    freshness = {status["feed"]: status for status in feed_statuses()}
    summary = []
    for name, feed in FEEDS.items():
        extent = days.get(name, {})
        summary.append(
            {
                "feed": name,
                "description": feed.description,
                "path": feed.path,
                "pages": feed.pages,
                "first_day": extent.get("first_day"),
                "latest_day": extent.get("latest_day"),
                "days": extent.get("days", 0),
                "age_days": extent.get("age_days"),
                "last_success_at": freshness[name]["last_success_at"],
                "stale": freshness[name]["stale"],
            }
        )
    return summary


def etl_runs(*, feed: str | None = None, status: str | None = None) -> QuerySet[EtlRun]:
    """ETL runs, newest first (the model's order)."""
    runs = EtlRun.objects.all()
    if feed:
        runs = runs.filter(feed=feed)
    if status:
        runs = runs.filter(status=status)
    return runs


# The version is read before every cached answer, and that query was most of a warm request's cost. Each
# process keeps it this long; a run or an edit saved in this process forgets it at once (and again at
# commit), so other processes serve a new snapshot or an admin's edit at most this late.
DATA_VERSION_TTL = 1.0
_version_memo: tuple[float, str] = (0.0, "")


def data_version() -> str:
    """A token that changes whenever a run commits data or the history is edited by hand; cache keys include it.

    The count moves on every commit, even when an older run (a lower id) finishes after a newer one.
    Hand edits (the admin, `etl delete-day`) each add a DataEdit row, never deleted, so its newest id
    moves with every edit. Both live in the database, which every process shares. Kept for
    `DATA_VERSION_TTL` seconds per process.
    """
    global _version_memo
    expires, version = _version_memo
    now = time.monotonic()
    if now < expires:
        return version
    done = EtlRun.objects.filter(status__in=EtlRun.OK_STATUSES).aggregate(
        runs=Count("id"), last_id=Max("id"), last_finished=Max("finished_at", filter=Q(finished_at__isnull=False))
    )
    finished = done["last_finished"].isoformat() if done["last_finished"] else ""
    last_edit = DataEdit.objects.aggregate(last=Max("id"))["last"] or 0
    version = f"{done['runs']}:{done['last_id'] or 0}:{finished}:{last_edit}"
    _version_memo = (now + DATA_VERSION_TTL, version)
    return version


def forget_data_version() -> None:
    """Drop this process's kept version: the next read asks the database."""
    global _version_memo
    _version_memo = (0.0, "")
