"""The read side's writes: the moves kept beside the history."""

from __future__ import annotations

import datetime as dt

from django.db.models import Max

from analytics.models import FeedMoves
from analytics.selectors.trends import MIN_SCORE_GAIN, MOVES_KEPT, WINDOWS, Move, baseline_day, moves_compute
from snapshots.models import DataEdit, SnapshotDay


def feed_moves_write(*, feed: str, day: dt.date) -> list[FeedMoves]:
    """Compute and keep the feed's moves from each window's baseline to `day` (a window without one: none)."""
    loaded = dict(SnapshotDay.objects.filter(feed=feed).values_list("taken_on", "loaded_at").filter(taken_on__lte=day))
    if day not in loaded:
        return []
    edits = DataEdit.objects.aggregate(last=Max("id"))["last"] or 0
    written = []
    for window in WINDOWS:
        baseline = baseline_day(feed=feed, day=day, window=window)
        if baseline is None:
            continue
        moves = moves_compute(feed=feed, day=day, baseline=baseline, limit=MOVES_KEPT, min_gain=MIN_SCORE_GAIN)
        stored, _ = FeedMoves.objects.update_or_create(
            feed=feed,
            taken_on=day,
            window=window,
            defaults={
                "baseline": baseline,
                "day_loaded_at": loaded[day],
                "baseline_loaded_at": loaded[baseline],
                "edits": edits,
                **{name: [_json(move) for move in rows] for name, rows in moves.items()},
            },
        )
        written.append(stored)
    return written


def _json(move: Move) -> list[int | str | None]:
    # Scores as text: JSON numbers would come back as binary floats.
    *ids, score, previous = move
    return [*ids, None if score is None else str(score), None if previous is None else str(previous)]
