"""What moves in a feed: climbers, fallers, score momentum, new entries and top streaks.

Each feed is compared by its own feed rank (`rank_by`: MAL's rank in `top`, popularity in `popular`, the
position in the others); a row's `rank`, `previous_rank` and `best_rank` are feed ranks, and `mal_rank`
is MAL's score rank of the title that day, shown beside it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Max, Subquery
from django.db.models.functions import Coalesce

from analytics.models import FeedMoves
from analytics.selectors.envelope import Envelope, Row, envelope, history_too_short, no_data, resolve_day
from snapshots.feeds import FEEDS, rank_by
from snapshots.models import Anime, DataEdit, Snapshot, SnapshotDay

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

# The longest list a caller may ask for (the API's `limit`): FeedMoves keeps this many rows of each list.
MOVES_KEPT = 100
MIN_SCORE_GAIN = Decimal("0.01")
# A move: (mal_id, feed rank, previous feed rank, MAL rank, score, previous score).
Move = tuple[int, int | None, int | None, int | None, Decimal | None, Decimal | None]
MOVE_LISTS = ("climbers", "fallers", "gains")

# The three lists of a comparison in one statement: the pairs are joined once and each list takes its first
# rows by its own order (the orders the API documents). Scores are compared rounded to cents, so SQLite's
# binary floats tie where PostgreSQL's decimals do.
_MOVES_SQL = """
WITH pair AS MATERIALIZED (
    SELECT n.anime_id, n.{rank} AS feed_rank, b.{rank} AS previous_rank, n.rank AS mal_rank,
           n.score, b.score AS previous_score, ROUND(n.score - b.score, 2) AS gain
    FROM snapshots_snapshot n JOIN snapshots_snapshot b ON b.anime_id = n.anime_id
    WHERE n.feed = %s AND n.taken_on = %s AND b.feed = %s AND b.taken_on = %s
)
SELECT * FROM (
    SELECT 'climbers', anime_id, feed_rank, previous_rank, mal_rank, score, previous_score FROM pair
    WHERE previous_rank - feed_rank > 0 ORDER BY previous_rank - feed_rank DESC, feed_rank, anime_id LIMIT %s
) AS climbers
UNION ALL SELECT * FROM (
    SELECT 'fallers', anime_id, feed_rank, previous_rank, mal_rank, score, previous_score FROM pair
    WHERE previous_rank - feed_rank < 0 ORDER BY previous_rank - feed_rank, feed_rank, anime_id LIMIT %s
) AS fallers
UNION ALL SELECT * FROM (
    SELECT 'gains', anime_id, feed_rank, previous_rank, mal_rank, score, previous_score FROM pair
    WHERE gain >= CAST(%s AS NUMERIC) ORDER BY gain DESC, feed_rank IS NULL, feed_rank, anime_id LIMIT %s
) AS gains
"""


def _days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def _score(value: Any) -> Decimal | None:
    # SQLite hands back floats; both databases' scores have two places.
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


def moves_compute(
    *, feed: str, day: dt.date, baseline: dt.date, limit: int, min_gain: Decimal
) -> dict[str, list[Move]]:
    """The first `limit` climbers, fallers and score gains (of at least `min_gain`) from `baseline` to `day`."""
    sql = _MOVES_SQL.format(rank=connection.ops.quote_name(rank_by(feed)))
    moves: dict[str, list[Move]] = {name: [] for name in MOVE_LISTS}
    with connection.cursor() as cursor:
        cursor.execute(sql, [feed, day, feed, baseline, limit, limit, min_gain, limit])
        for kind, anime_id, rank, previous, mal_rank, score, previous_score in cursor.fetchall():
            moves[kind].append((anime_id, rank, previous, mal_rank, _score(score), _score(previous_score)))
    return moves


def _stored_moves(
    *, feed: str, day: dt.date, window: int, baseline: dt.date, limit: int, min_gain: Decimal
) -> dict[str, list[Move]] | None:
    """The first `limit` of each list of the FeedMoves of (feed, D, window), if it was computed from the days and
    edits there are now, else None."""
    loaded = SnapshotDay.objects.filter(feed=feed).values("loaded_at")
    stored = (
        FeedMoves.objects.filter(
            feed=feed,
            taken_on=day,
            window=window,
            baseline=baseline,
            day_loaded_at=Subquery(loaded.filter(taken_on=day)),
            baseline_loaded_at=Subquery(loaded.filter(taken_on=baseline)),
            edits=Coalesce(Subquery(DataEdit.objects.order_by("-id").values("id")[:1]), 0),
        )
        .values_list("climbers", "fallers", "gains")
        .first()
    )
    if stored is None:
        return None
    climbers, fallers, gains = ([_move(m) for m in rows] for rows in (stored[0][:limit], stored[1][:limit], stored[2]))
    # The kept gains start at MIN_SCORE_GAIN, biggest first: a higher bar keeps a prefix of them.
    gains = [m for m in gains if m[4] - m[5] >= min_gain][:limit]  # type: ignore[operator]
    return {"climbers": climbers, "fallers": fallers, "gains": gains}


def _move(stored: list[Any]) -> Move:
    return (stored[0], stored[1], stored[2], stored[3], _score(stored[4]), _score(stored[5]))


def baseline_day(*, feed: str, day: dt.date, window: int) -> dt.date | None:
    """B: the newest snapshot day of the feed with D - 2·window <= B <= D - window."""
    baseline = SnapshotDay.objects.filter(feed=feed, taken_on__range=(day - _days(2 * window), day - _days(window)))
    return baseline.aggregate(day=Max("taken_on"))["day"]


Comparison = tuple[Envelope, dict[str, list[Move]]]


def _no_moves() -> dict[str, list[Move]]:
    return {name: [] for name in MOVE_LISTS}


def _compare_days(
    *, feed: str, window: int, as_of: dt.date | None, limit: int = MOVES_KEPT, min_gain: Decimal = MIN_SCORE_GAIN
) -> Comparison:
    """The envelope of a windowed metric and the moves from B to D: the stored ones when still true, else computed."""
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {WINDOWS}, not {window!r}")
    day = resolve_day(feed=feed, as_of=as_of)
    if day is None:
        return no_data(feed=feed, as_of=as_of, needed_days=window + 1), _no_moves()
    base_day = baseline_day(feed=feed, day=day, window=window)
    if base_day is None:
        short = history_too_short(
            feed=feed, day=day, needed_days=window + 1, wait=window, recent_from=day - _days(2 * window)
        )
        return envelope(feed=feed, as_of=as_of, day=day, insufficient=short), _no_moves()
    moves = None
    if limit <= MOVES_KEPT and min_gain >= MIN_SCORE_GAIN:
        moves = _stored_moves(feed=feed, day=day, window=window, baseline=base_day, limit=limit, min_gain=min_gain)
    if moves is None:
        moves = moves_compute(feed=feed, day=day, baseline=base_day, limit=limit, min_gain=min_gain)
    return envelope(feed=feed, as_of=as_of, day=day, baseline=base_day), moves


def _titles(*comparisons: Comparison) -> dict[int, tuple[str, str]]:
    """(title, image_url) of every title the comparisons list, in one query."""
    ids = {m[0] for _, moves in comparisons for rows in moves.values() for m in rows}
    return {
        mal_id: (title, image)
        for mal_id, title, image in Anime.objects.filter(mal_id__in=ids).values_list("mal_id", "title", "image_url")
    }


def _rank_moves(comparison: Comparison, titles: dict[int, tuple[str, str]], *, limit: int, climbing: bool) -> Envelope:
    result, moves = comparison
    rows = [
        {
            "mal_id": mal_id,
            "title": titles[mal_id][0],
            "rank": rank,
            "previous_rank": previous,
            "change": previous - rank,  # type: ignore[operator]  # both ranks are known for a move
            "mal_rank": mal_rank,
            "score": score,
            "image_url": titles[mal_id][1],
        }
        for mal_id, rank, previous, mal_rank, score, _ in moves["climbers" if climbing else "fallers"][:limit]
    ]
    return {**result, "results": rows}


def rank_climbers(*, feed: str, window: int, as_of: dt.date | None, limit: int = 10) -> Envelope:
    """Titles whose feed rank improved between B and D (change = feed rank at B - feed rank at D > 0)."""
    comparison = _compare_days(feed=feed, window=window, as_of=as_of, limit=limit)
    return _rank_moves(comparison, _titles(comparison), limit=limit, climbing=True)


def rank_fallers(*, feed: str, window: int, as_of: dt.date | None, limit: int = 10) -> Envelope:
    """Titles whose feed rank worsened between B and D, biggest fall first."""
    comparison = _compare_days(feed=feed, window=window, as_of=as_of, limit=limit)
    return _rank_moves(comparison, _titles(comparison), limit=limit, climbing=False)


def score_momentum(
    *, feed: str, window: int, as_of: dt.date | None, limit: int = 10, min_change: Decimal = MIN_SCORE_GAIN
) -> Envelope:
    """Titles whose score rose by at least `min_change` between B and D."""
    comparison = _compare_days(feed=feed, window=window, as_of=as_of, limit=limit, min_gain=min_change)
    return _score_gains(comparison, _titles(comparison), limit=limit)


def _score_gains(comparison: Comparison, titles: dict[int, tuple[str, str]], *, limit: int) -> Envelope:
    result, moves = comparison
    rows = [
        {
            "mal_id": mal_id,
            "title": titles[mal_id][0],
            "score": score,
            "previous_score": previous_score,
            "change": score - previous_score,  # type: ignore[operator]  # both scores are known for a gain
            "rank": rank,
            "mal_rank": mal_rank,
        }
        for mal_id, rank, _, mal_rank, score, previous_score in moves["gains"][:limit]
    ]
    return {**result, "results": rows}


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
    in_top = Snapshot.objects.filter(feed=feed, **{f"{feed_rank}__lte": top})
    recent: dict[int, Row] = {}
    for anime_id, taken_on, rank in in_top.filter(taken_on__gt=last_old_day, taken_on__lte=day).values_list(
        "anime_id", "taken_on", feed_rank
    ):
        entry = recent.setdefault(
            anime_id,
            {
                "mal_id": anime_id,
                "title": None,
                "rank": None,
                "mal_rank": None,
                "entered_on": taken_on,
                "best_rank": rank,
            },
        )
        entry["entered_on"] = min(entry["entered_on"], taken_on)
        entry["best_rank"] = min(entry["best_rank"], rank)
    # Only the last week's titles are looked for in the days before, and each answers once: reading every
    # title held there (a top 50 for 83 days) grew the answer's time with the history.
    seen_before = set(
        in_top.filter(taken_on__range=(day - _days(NEW_LOOKBACK_DAYS), last_old_day), anime_id__in=list(recent))
        .order_by()
        .values_list("anime_id", flat=True)
        .distinct()
    )
    rows = [entry for anime_id, entry in recent.items() if anime_id not in seen_before]
    ids = [row["mal_id"] for row in rows]
    # Named apart, and only the new ones: joined into the read above, the titles of every title held in
    # the 90 days (a thousand in popular) would be fetched, and the planner may read the whole catalogue.
    titles = dict(Anime.objects.filter(mal_id__in=ids).values_list("mal_id", "title"))
    # A title may have left the top (or the feed) again by D: its ranks are what D says, or None.
    ranks_now = {
        anime_id: (rank, mal_rank)
        for anime_id, rank, mal_rank in Snapshot.objects.filter(feed=feed, taken_on=day, anime_id__in=ids).values_list(
            "anime_id", feed_rank, "rank"
        )
    }
    for row in rows:
        row["title"] = titles[row["mal_id"]]
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
    # Climbers, fallers and momentum of a window come from the same comparison: made once per window.
    weekly = _compare_days(feed=feed, window=WEEKLY, as_of=as_of, limit=limit)
    monthly = _compare_days(feed=feed, window=MONTHLY, as_of=as_of, limit=limit)
    titles = _titles(weekly, monthly)
    return {
        "feed": feed,
        "rank_by": rank_by(feed),
        "as_of": as_of,
        "date": weekly[0]["date"],
        "weekly_climbers": _rank_moves(weekly, titles, limit=limit, climbing=True),
        "monthly_climbers": _rank_moves(monthly, titles, limit=limit, climbing=True),
        "weekly_fallers": _rank_moves(weekly, titles, limit=limit, climbing=False),
        "monthly_fallers": _rank_moves(monthly, titles, limit=limit, climbing=False),
        "weekly_momentum": _score_gains(weekly, titles, limit=limit),
        "monthly_momentum": _score_gains(monthly, titles, limit=limit),
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
