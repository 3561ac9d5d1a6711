"""What moved between two snapshot days of a feed: climbers, fallers, momentum, new entries, streaks."""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from analytics import selectors
from analytics.api.base import (
    AnalyticsApi,
    Envelope,
    FeedFilter,
    TitleRow,
    choice,
    limit_field,
    rank_by_field,
    score_field,
    top_field,
)
from analytics.selectors.trends import MONTHLY, WEEKLY, WINDOWS


def window_field() -> serializers.ChoiceField:
    # DRF maps "7" back to the int choice 7.
    return choice(
        list(WINDOWS),
        default=WEEKLY,
        help_text=f"Days between the two compared snapshots: {WEEKLY} (weekly) or {MONTHLY} (monthly).",
    )


class WindowFilter(FeedFilter):
    limit = limit_field()
    window = window_field()


def mal_rank_field() -> serializers.IntegerField:
    return serializers.IntegerField(
        allow_null=True, help_text="MAL's score rank of the title at D (a fact of the title, not of the feed)."
    )


class MoveRow(TitleRow):
    rank = serializers.IntegerField(help_text="The feed rank at D (see `rank_by`).")
    previous_rank = serializers.IntegerField(help_text="The feed rank at B.")
    change = serializers.IntegerField(help_text="Feed rank at B - feed rank at D: positive means it climbed.")
    mal_rank = mal_rank_field()
    score = score_field(allow_null=True)
    image_url = serializers.CharField()


class MovesAnswer(Envelope):
    results = MoveRow(many=True)


class RankClimbersApi(AnalyticsApi):
    """Rank climbers.

    B = the newest snapshot day with D - 2*window ≤ B ≤ D - window; change = feed rank at B - feed rank at D
    for titles present on both days; climbers have change > 0, biggest first, then by current feed rank. The
    feed rank (`rank_by`) is MAL's rank in `top`, popularity in `popular` and the position in the other feeds.
    """

    endpoint = "climbers"
    Filter = WindowFilter
    Output = MovesAnswer
    compute = staticmethod(selectors.rank_climbers)


class RankFallersApi(AnalyticsApi):
    """Rank fallers.

    As climbers, for titles whose feed rank got worse (change < 0), biggest fall first.
    """

    endpoint = "fallers"
    Filter = WindowFilter
    Output = MovesAnswer
    compute = staticmethod(selectors.rank_fallers)


class MomentumFilter(FeedFilter):
    limit = limit_field()
    window = window_field()
    min_change = serializers.DecimalField(
        max_digits=4,
        decimal_places=2,
        min_value=Decimal("0.01"),
        max_value=Decimal(9),
        default=Decimal("0.01"),
        help_text="Smallest score gain listed.",
    )


class MomentumRow(TitleRow):
    score = score_field()
    previous_score = score_field()
    change = score_field(help_text="Score points gained.")
    rank = serializers.IntegerField(allow_null=True, help_text="The feed rank at D (see `rank_by`).")
    mal_rank = mal_rank_field()


class MomentumAnswer(Envelope):
    results = MomentumRow(many=True)


class ScoreMomentumApi(AnalyticsApi):
    """Score momentum.

    Same B as climbers; change = score at D - score at B, at least `min_change`, biggest first, then by feed
    rank.
    """

    endpoint = "momentum"
    Filter = MomentumFilter
    Output = MomentumAnswer
    compute = staticmethod(selectors.score_momentum)


class NewEntriesFilter(FeedFilter):
    limit = limit_field()
    top = top_field(default=50)


class NewEntryRow(TitleRow):
    rank = serializers.IntegerField(allow_null=True, help_text="The feed rank at D (None if it left the feed again).")
    mal_rank = mal_rank_field()
    entered_on = serializers.DateField()
    best_rank = serializers.IntegerField(help_text="The best feed rank it reached this week.")


class NewEntriesAnswer(Envelope):
    results = NewEntryRow(many=True)


class NewEntriesApi(AnalyticsApi):
    """New entries.

    Titles with feed rank ≤ top on some day in (D - 7, D] that never had feed rank ≤ top on any snapshot day
    in [D - 90, D - 7], with the day each first entered.
    """

    endpoint = "new-entries"
    Filter = NewEntriesFilter
    Output = NewEntriesAnswer
    compute = staticmethod(selectors.new_entries)


class StreaksFilter(FeedFilter):
    limit = limit_field()
    top = top_field(default=10)


class StreakRow(TitleRow):
    rank = serializers.IntegerField(help_text="The feed rank at D (see `rank_by`).")
    mal_rank = mal_rank_field()
    days = serializers.IntegerField()
    since = serializers.DateField()


class StreaksAnswer(Envelope):
    results = StreakRow(many=True)


class TopStreaksApi(AnalyticsApi):
    """Top-N streaks.

    For each title in the top N at D: how many consecutive snapshot days (days the feed has data; a missed
    day does not break a streak) end at D with feed rank ≤ N, and since when. Longest first.
    """

    endpoint = "streaks"
    Filter = StreaksFilter
    Output = StreaksAnswer
    compute = staticmethod(selectors.top_streaks)


class TrendingFilter(FeedFilter):
    limit = limit_field(default=5, help_text="Rows per list, 1..100.")


class TrendingAnswer(serializers.Serializer):
    feed = serializers.CharField()
    rank_by = rank_by_field()
    as_of = serializers.DateField(allow_null=True)
    date = serializers.DateField(allow_null=True, help_text="D: the snapshot day answered.")
    weekly_climbers = MovesAnswer()
    monthly_climbers = MovesAnswer()
    weekly_fallers = MovesAnswer()
    monthly_fallers = MovesAnswer()
    weekly_momentum = MomentumAnswer()
    monthly_momentum = MomentumAnswer()
    new_entries = NewEntriesAnswer()
    streaks = StreaksAnswer()


class TrendingApi(AnalyticsApi):
    """Trending (dashboard widget).

    One payload with weekly and monthly climbers and fallers, weekly and monthly score momentum, new entries
    to the top 50 and the longest top-10 streaks; each list is an envelope.
    """

    endpoint = "trending"
    Filter = TrendingFilter
    Output = TrendingAnswer
    compute = staticmethod(selectors.trending)
