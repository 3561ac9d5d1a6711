"""What moves in a feed: climbers, fallers, score momentum, new entries and top streaks.

Each feed is compared by its own feed rank (`rank_by`: MAL's rank in `top`, popularity in `popular`, the
position in the others); a row's `rank`, `previous_rank` and `best_rank` are feed ranks, and `mal_rank`
is MAL's score rank of the title that day, shown beside it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db.models import F, Max

from analytics.selectors.envelope import Envelope, Row, envelope, history_too_short, no_data, resolve_day
from snapshots.feeds import FEEDS, rank_by
from snapshots.models import Snapshot, SnapshotDay

# The two comparison windows, in days: weekly and monthly.
WEEKLY, MONTHLY = 7, 30
WINDOWS = (WEEKLY, MONTHLY)
WINDOW_LABELS = {WEEKLY: "Weekly (7 days)", MONTHLY: "Monthly (30 days)"}
# New entries: "new" means in the top on a day of the last week (D - 7, D] ...
NEW_RECENT_DAYS = 7
# ... and never in it on a snapshot day of the 90 days before that, [D - 90, D - 7].
NEW_LOOKBACK_DAYS = 90
# Streaks walk back this many snapshot days first, doubling while some streak is still unbroken.
STREAK_BATCH = 32

_PAIR_FIELDS = ("anime_id", "anime__title", "anime__image_url", "taken_on", "rank", "score")


def _days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def _compare_days(*, feed: str, window: int, as_of: dt.date | None) -> tuple[Envelope, list[tuple[Row, Row]]]:
    """The envelope of a windowed metric and, per title present on D and B, its (row at D, row at B).

    B is the newest snapshot day with D - 2·window <= B <= D - window. Only those two days are read.
    """
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {WINDOWS}, not {window!r}")
    day = resolve_day(feed=feed, as_of=as_of)
    if day is None:
        return no_data(feed=feed, as_of=as_of, needed_days=window + 1), []
    baseline = SnapshotDay.objects.filter(feed=feed, taken_on__range=(day - _days(2 * window), day - _days(window)))
    base_day = baseline.aggregate(day=Max("taken_on"))["day"]
    if base_day is None:
        short = history_too_short(
            feed=feed, day=day, needed_days=window + 1, wait=window, recent_from=day - _days(2 * window)
        )
        return envelope(feed=feed, as_of=as_of, day=day, insufficient=short), []
    by_day: dict[dt.date, dict[int, Row]] = {day: {}, base_day: {}}
    rows = Snapshot.objects.filter(feed=feed, taken_on__in=(day, base_day))
    for row in rows.values(*_PAIR_FIELDS, feed_rank=F(rank_by(feed))):
        by_day[row["taken_on"]][row["anime_id"]] = row
    before = by_day[base_day]
    pairs = [(now, before[anime_id]) for anime_id, now in by_day[day].items() if anime_id in before]
    return envelope(feed=feed, as_of=as_of, day=day, baseline=base_day), pairs


Comparison = tuple[Envelope, list[tuple[Row, Row]]]


def _rank_moves(comparison: Comparison, *, limit: int, climbing: bool) -> Envelope:
    result, pairs = comparison
    result = {**result}
    moves = []
    for now, before in pairs:
        # A title without a feed rank on either day has no movement to report.
        if now["feed_rank"] is None or before["feed_rank"] is None:
            continue
        change = before["feed_rank"] - now["feed_rank"]
        if (change > 0) if climbing else (change < 0):
            moves.append(
                {
                    "mal_id": now["anime_id"],
                    "title": now["anime__title"],
                    "rank": now["feed_rank"],
                    "previous_rank": before["feed_rank"],
                    "change": change,
                    "mal_rank": now["rank"],
                    "score": now["score"],
                    "image_url": now["anime__image_url"],
                }
            )
    # Biggest move first either way: climbers by change desc, fallers by change asc.
    moves.sort(key=lambda m: (-m["change"] if climbing else m["change"], m["rank"], m["mal_id"]))
    result["results"] = moves[:limit]
    return result


def rank_climbers(*, feed: str, window: int, as_of: dt.date | None, limit: int = 10) -> Envelope:
    """Titles whose feed rank improved between B and D (change = feed rank at B - feed rank at D > 0)."""
    return _rank_moves(_compare_days(feed=feed, window=window, as_of=as_of), limit=limit, climbing=True)


def rank_fallers(*, feed: str, window: int, as_of: dt.date | None, limit: int = 10) -> Envelope:
    """Titles whose feed rank worsened between B and D, biggest fall first."""
    return _rank_moves(_compare_days(feed=feed, window=window, as_of=as_of), limit=limit, climbing=False)


def score_momentum(
    *, feed: str, window: int, as_of: dt.date | None, limit: int = 10, min_change: Decimal = Decimal("0.01")
) -> Envelope:
    """Titles whose score rose by at least `min_change` between B and D."""
    return _score_gains(_compare_days(feed=feed, window=window, as_of=as_of), limit=limit, min_change=min_change)


def _score_gains(comparison: Comparison, *, limit: int, min_change: Decimal = Decimal("0.01")) -> Envelope:
    result, pairs = comparison
    result = {**result}
    rows = []
    for now, before in pairs:
        if now["score"] is None or before["score"] is None:
            continue
        change = (now["score"] - before["score"]).quantize(Decimal("0.01"))
        if change >= min_change:
            rows.append(
                {
                    "mal_id": now["anime_id"],
                    "title": now["anime__title"],
                    "score": now["score"],
                    "previous_score": before["score"],
                    "change": change,
                    "rank": now["feed_rank"],
                    "mal_rank": now["rank"],
                }
            )
    rows.sort(key=lambda r: (-r["change"], r["rank"] is None, r["rank"] or 0, r["mal_id"]))
    result["results"] = rows[:limit]
    return result


def new_entries(*, feed: str, as_of: dt.date | None, top: int = 50, limit: int = 10) -> Envelope:
    """Titles with feed rank <= `top` on a day of the last week that were not on any day of the 90 before."""
    needed = NEW_RECENT_DAYS + 1
    day = resolve_day(feed=feed, as_of=as_of)
    if day is None:
        return no_data(feed=feed, as_of=as_of, needed_days=needed)
    last_old_day = day - _days(NEW_RECENT_DAYS)
    lookback = SnapshotDay.objects.filter(feed=feed, taken_on__range=(day - _days(NEW_LOOKBACK_DAYS), last_old_day))
    if not lookback.exists():
        # Without a day to compare with, every title would look new.
        short = history_too_short(
            feed=feed, day=day, needed_days=needed, wait=NEW_RECENT_DAYS, recent_from=last_old_day
        )
        return envelope(feed=feed, as_of=as_of, day=day, insufficient=short)
    feed_rank = rank_by(feed)
    held = Snapshot.objects.filter(
        feed=feed, taken_on__range=(day - _days(NEW_LOOKBACK_DAYS), day), **{f"{feed_rank}__lte": top}
    ).values_list("anime_id", "anime__title", "taken_on", feed_rank)
    seen_before: set[int] = set()
    recent: dict[int, Row] = {}
    for anime_id, title, taken_on, rank in held:
        if taken_on <= last_old_day:
            seen_before.add(anime_id)
            continue
        entry = recent.setdefault(
            anime_id,
            {
                "mal_id": anime_id,
                "title": title,
                "rank": None,
                "mal_rank": None,
                "entered_on": taken_on,
                "best_rank": rank,
            },
        )
        entry["entered_on"] = min(entry["entered_on"], taken_on)
        entry["best_rank"] = min(entry["best_rank"], rank)
    rows = [entry for anime_id, entry in recent.items() if anime_id not in seen_before]
    # A title may have left the top (or the feed) again by D: its ranks are what D says, or None.
    ranks_now = {
        anime_id: (rank, mal_rank)
        for anime_id, rank, mal_rank in Snapshot.objects.filter(
            feed=feed, taken_on=day, anime_id__in=[r["mal_id"] for r in rows]
        ).values_list("anime_id", feed_rank, "rank")
    }
    for row in rows:
        row["rank"], row["mal_rank"] = ranks_now.get(row["mal_id"], (None, None))
    rows.sort(key=lambda r: (-r["entered_on"].toordinal(), r["rank"] is None, r["rank"] or 0, r["mal_id"]))
    return envelope(feed=feed, as_of=as_of, day=day, results=rows[:limit])


def top_streaks(*, feed: str, as_of: dt.date | None, top: int = 10, limit: int = 10) -> Envelope:
    """For each title with feed rank <= `top` at D, how many snapshot days in a row it has been there, and since when.

    Only days the feed has data count: a missed calendar day does not break a streak.
    """
    day = resolve_day(feed=feed, as_of=as_of)
    if day is None:
        return no_data(feed=feed, as_of=as_of, needed_days=1)
    feed_rank = rank_by(feed)
    current = Snapshot.objects.filter(feed=feed, taken_on=day, **{f"{feed_rank}__lte": top}).values_list(
        "anime_id", "anime__title", feed_rank, "rank"
    )
    titles = {anime_id: (title, rank, mal_rank) for anime_id, title, rank, mal_rank in current}
    streaks = _streaks(feed=feed, day=day, top=top, anime_ids=set(titles))
    rows: list[Row] = [
        {
            "mal_id": anime_id,
            "title": title,
            "rank": rank,
            "mal_rank": mal_rank,
            "days": streaks[anime_id][0],
            "since": streaks[anime_id][1],
        }
        for anime_id, (title, rank, mal_rank) in titles.items()
    ]
    rows.sort(key=lambda r: (-r["days"], r["rank"], r["mal_id"]))
    return envelope(feed=feed, as_of=as_of, day=day, results=rows[:limit])


def _streaks(*, feed: str, day: dt.date, top: int, anime_ids: set[int]) -> dict[int, tuple[int, dt.date]]:
    """(days, since) per title, walking the feed's snapshot days back from D in doubling batches.

    The usual case costs two queries; a streak of years costs a few more, never one per day or title.
    """
    streaks = {anime_id: (0, day) for anime_id in anime_ids}
    in_top = {f"{rank_by(feed)}__lte": top}
    unbroken = set(anime_ids)
    before, batch = day + _days(1), STREAK_BATCH
    while unbroken:
        days = list(
            SnapshotDay.objects.filter(feed=feed, taken_on__lt=before)
            .order_by("-taken_on")
            .values_list("taken_on", flat=True)[:batch]
        )
        if not days:
            break
        held = set(
            Snapshot.objects.filter(
                feed=feed, taken_on__range=(days[-1], days[0]), anime_id__in=list(unbroken), **in_top
            ).values_list("anime_id", "taken_on")
        )
        for anime_id in list(unbroken):
            for taken_on in days:
                if (anime_id, taken_on) not in held:
                    unbroken.discard(anime_id)
                    break
                streaks[anime_id] = (streaks[anime_id][0] + 1, taken_on)
        if len(days) < batch:
            break
        before, batch = days[-1], batch * 2
    return streaks


def trending(*, feed: str, as_of: dt.date | None, limit: int = 5) -> dict[str, Any]:
    """Everything the trending widget shows, for one feed and day."""
    # Climbers and momentum of a window compare the same two days: read them once per window.
    weekly = _compare_days(feed=feed, window=WEEKLY, as_of=as_of)
    monthly = _compare_days(feed=feed, window=MONTHLY, as_of=as_of)
    return {
        "feed": feed,
        "rank_by": rank_by(feed),
        "as_of": as_of,
        "date": weekly[0]["date"],
        "weekly_climbers": _rank_moves(weekly, limit=limit, climbing=True),
        "monthly_climbers": _rank_moves(monthly, limit=limit, climbing=True),
        "weekly_fallers": _rank_moves(weekly, limit=limit, climbing=False),
        "monthly_fallers": _rank_moves(monthly, limit=limit, climbing=False),
        "weekly_momentum": _score_gains(weekly, limit=limit),
        "monthly_momentum": _score_gains(monthly, limit=limit),
        "new_entries": new_entries(feed=feed, as_of=as_of, limit=limit),
        "streaks": top_streaks(feed=feed, as_of=as_of, limit=limit),
    }


MOVING_FEEDS = ("top", "airing", "popular")


def moving_now(*, limit: int = 3) -> list[dict[str, Any]]:
    """Per feed, its latest snapshot's biggest weekly climbers and new top-50 entries, with when it was taken."""
    latest = SnapshotDay.objects.select_related("run").order_by("-taken_on")
    days = {feed: latest.filter(feed=feed).first() for feed in MOVING_FEEDS}
    moving = []
    for feed in MOVING_FEEDS:
        day = days.get(feed)
        if day is None:
            continue
        moving.append(
            {
                "feed": feed,
                "description": FEEDS[feed].description,
                "date": day.taken_on,
                "taken_at": day.run.finished_at if day.run else None,
                "climbers": rank_climbers(feed=feed, window=WEEKLY, as_of=day.taken_on, limit=limit)["results"],
                "new_entries": new_entries(feed=feed, as_of=day.taken_on, limit=limit)["results"],
            }
        )
    return moving
