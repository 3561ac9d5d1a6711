"""When a rule's condition holds, from one feed's snapshots: the facts of a day and the rules' conditions.

A rule watches a condition per title (in the top N, climbed N places, ...). It fires when the condition
starts, or, for "leaves the top N", when it ends, and again only after it has changed back. Evaluation
(alerts.services.rules_evaluate) and the preview (alerts.services.rule_preview) both compare two
consecutive snapshot days with these functions, so a preview shows exactly what evaluation would send.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import F, Min

from alerts.models import AlertRule
from snapshots.feeds import rank_by
from snapshots.models import Snapshot, SnapshotDay

Kind = AlertRule.Kind
WINDOWED = {Kind.CLIMBED, Kind.FELL, Kind.SCORE_MOVED}


@dataclass
class Standing:
    """One snapshot day of a feed: each title's feed rank and score."""

    day: dt.date
    rank: dict[int, int] = field(default_factory=dict)
    score: dict[int, Decimal] = field(default_factory=dict)


@dataclass
class DayFacts:
    """What the rules of a feed read about one snapshot day: that day, the days 7 and 30 back, best ranks."""

    feed: str
    now: Standing
    baselines: dict[int, Standing | None]
    # Each title's best feed rank on the feed's days before this one (only read when a rule needs it).
    best_before: dict[int, int]

    def titles(self) -> Iterable[int]:
        return self.now.rank.keys()


def day_before(feed: str, day: dt.date) -> dt.date | None:
    """The feed's snapshot day before `day`, if any."""
    return (
        SnapshotDay.objects.filter(feed=feed, taken_on__lt=day)
        .order_by("-taken_on")
        .values_list("taken_on", flat=True)
        .first()
    )


def days_between(feed: str, start: dt.date, end: dt.date) -> list[dt.date]:
    """The feed's snapshot days in [start, end], oldest first."""
    days = SnapshotDay.objects.filter(feed=feed, taken_on__range=(start, end)).order_by("taken_on")
    return list(days.values_list("taken_on", flat=True))


def facts_for(feed: str, day: dt.date, *, windows: set[int], best: bool) -> DayFacts:
    """The facts of `day` in a fixed number of queries (at most 4), whatever the number of rules.

    A window's baseline is the feed's newest snapshot day B with D - 2·window <= B <= D - window, as in
    the trend tables (analytics.selectors.trends).
    """
    base_days: dict[int, dt.date | None] = {window: None for window in windows}
    if windows:
        known = days_between(feed, day - dt.timedelta(days=2 * max(windows)), day - dt.timedelta(days=min(windows)))
        for window in windows:
            fits = [d for d in known if day - dt.timedelta(days=2 * window) <= d <= day - dt.timedelta(days=window)]
            base_days[window] = fits[-1] if fits else None
    standings = {d: Standing(d) for d in {day, *filter(None, base_days.values())}}
    rows = Snapshot.objects.filter(feed=feed, taken_on__in=list(standings)).values_list(
        "taken_on", "anime_id", F(rank_by(feed)), "score"
    )
    for taken_on, anime_id, feed_rank, score in rows:
        standing = standings[taken_on]
        if feed_rank is not None:
            standing.rank[anime_id] = feed_rank
        if score is not None:
            standing.score[anime_id] = score
    best_before: dict[int, int] = {}
    if best:
        earlier = Snapshot.objects.filter(feed=feed, taken_on__lt=day, anime_id__in=list(standings[day].rank))
        best_before = dict(earlier.values("anime_id").annotate(best=Min(rank_by(feed))).values_list("anime_id", "best"))
    return DayFacts(
        feed=feed,
        now=standings[day],
        baselines={window: standings[d] if d else None for window, d in base_days.items()},
        best_before=best_before,
    )


def holds(rule: AlertRule, facts: DayFacts, anime_id: int) -> bool:
    """Whether the rule's condition holds for the title on the facts' day.

    "Leaves the top N" watches the same condition as "enters the top N" (in the top N); it fires when it ends.
    """
    rank = facts.now.rank.get(anime_id)
    kind = rule.kind
    if kind in (Kind.ENTERED_TOP, Kind.LEFT_TOP):
        return rank is not None and rank <= rule.threshold
    if kind == Kind.NEW_BEST:
        best = facts.best_before.get(anime_id)
        return rank is not None and best is not None and rank < best
    base = facts.baselines.get(rule.window)
    if base is None:
        return False
    if kind == Kind.SCORE_MOVED:
        now, before = facts.now.score.get(anime_id), base.score.get(anime_id)
        return now is not None and before is not None and abs(now - before) >= rule.threshold
    before_rank = base.rank.get(anime_id)
    if rank is None or before_rank is None:
        return False
    change = before_rank - rank
    return change >= rule.threshold if kind == Kind.CLIMBED else -change >= rule.threshold


def holding(rule: AlertRule, facts: DayFacts, titles: Iterable[int] | None) -> set[int]:
    """The titles (all the feed's when `titles` is None) for which the rule's condition holds."""
    candidates = facts.titles() if titles is None else titles
    return {anime_id for anime_id in candidates if holds(rule, facts, anime_id)}


def fired(rule: AlertRule, before: set[int], now: set[int]) -> set[int]:
    """The titles the rule fires for, going from the titles where its condition held to where it holds now."""
    return before - now if rule.kind == Kind.LEFT_TOP else now - before


def event_data(rule: AlertRule, facts: DayFacts, anime_id: int) -> dict[str, object]:
    """The numbers behind an event, as the webhook body's `data` and the e-mail show them."""
    rank = facts.now.rank.get(anime_id)
    score = facts.now.score.get(anime_id)
    data: dict[str, object] = {"feed": facts.feed, "date": facts.now.day.isoformat(), "rank": rank}
    data["score"] = str(score) if score is not None else None
    if rule.kind in WINDOWED:
        base = facts.baselines.get(rule.window)
        if base is not None:
            data["window"] = rule.window
            data["baseline_date"] = base.day.isoformat()
            data["previous_rank"] = base.rank.get(anime_id)
            before_score = base.score.get(anime_id)
            data["previous_score"] = str(before_score) if before_score is not None else None
            if rule.kind == Kind.SCORE_MOVED and score is not None and before_score is not None:
                data["change"] = str(score - before_score)
            elif rank is not None and base.rank.get(anime_id) is not None:
                data["change"] = base.rank[anime_id] - rank
    elif rule.kind == Kind.NEW_BEST:
        data["previous_best"] = facts.best_before.get(anime_id)
    elif rule.kind in (Kind.ENTERED_TOP, Kind.LEFT_TOP):
        data["top"] = int(rule.threshold)
    return data


def event_message(rule: AlertRule, title: str, data: dict[str, object]) -> str:
    """The event in one sentence: "Frieren entered the top 10 of the top feed at #7"."""
    feed, rank = f"the {data['feed']} feed", data.get("rank")
    kind = rule.kind
    if kind == Kind.ENTERED_TOP:
        return f"{title} entered the top {data['top']} of {feed} at #{rank}"
    if kind == Kind.LEFT_TOP:
        now = f"now #{rank}" if rank is not None else "now out of the feed"
        return f"{title} left the top {data['top']} of {feed} ({now})"
    if kind == Kind.NEW_BEST:
        return f"{title} reached its best place yet in {feed}: #{rank} (best before: #{data['previous_best']})"
    window = data.get("window")
    if kind == Kind.SCORE_MOVED:
        change = Decimal(str(data.get("change")))
        before, now_score = data.get("previous_score"), data.get("score")
        return f"{title}'s score moved {change:+} in {window} days, from {before} to {now_score}"
    verb = "climbed" if kind == Kind.CLIMBED else "fell"
    places = abs(int(str(data.get("change") or 0)))
    return f"{title} {verb} {places} places in {feed} in {window} days, from #{data.get('previous_rank')} to #{rank}"
