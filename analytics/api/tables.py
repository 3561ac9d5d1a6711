"""One day of a feed as tables: top rated, genre distribution; and seasonal trends over every title."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from analytics import selectors
from analytics.api.base import AnalyticsApi, Envelope, FeedFilter, TitleRow, choice, limit_field, score_field
from analytics.selectors.tables import GENRE_KINDS
from snapshots.validation import FIRST_YEAR, LAST_YEAR


class TopRatedFilter(FeedFilter):
    limit = limit_field()
    min_score = serializers.DecimalField(
        max_digits=4, decimal_places=2, min_value=Decimal(1), max_value=Decimal(10), required=False
    )
    genre = serializers.CharField(max_length=100, required=False, help_text="Genre, theme or demographic name or id.")
    type = serializers.CharField(max_length=32, required=False, help_text="TV, Movie, OVA, ONA, Special...")


class TopRatedRow(TitleRow):
    type = serializers.CharField()
    rank = serializers.IntegerField(allow_null=True)
    position = serializers.IntegerField()
    score = score_field(allow_null=True)
    members = serializers.IntegerField(allow_null=True)
    popularity = serializers.IntegerField(allow_null=True)
    image_url = serializers.CharField()


class TopRatedAnswer(Envelope):
    results = TopRatedRow(many=True)


class TopRatedApi(AnalyticsApi):
    """Top rated.

    The feed on day D ordered by score (unscored last), then by position in the feed.
    """

    endpoint = "top-rated"
    Filter = TopRatedFilter
    Output = TopRatedAnswer
    compute = staticmethod(selectors.top_rated)


class GenreFilter(FeedFilter):
    kind = choice(list(GENRE_KINDS), default="genres", help_text="Which kind of genre to count.")


class GenreRow(serializers.Serializer):
    mal_id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    count = serializers.IntegerField()
    coverage = serializers.FloatField(help_text="Titles having it / titles in the snapshot, in %.")
    frequency = serializers.FloatField(help_text="Mentions of it / all mentions of that kind, in %.")


class GenreAnswer(Envelope):
    results = GenreRow(many=True)


class GenreDistributionApi(AnalyticsApi):
    """Genre distribution.

    Per genre at D: `count` of titles having it, `coverage` = titles having it / titles in the snapshot (%),
    `frequency` = mentions of it / all mentions of that kind (%).
    """

    endpoint = "genres"
    Filter = GenreFilter
    Output = GenreAnswer
    compute = staticmethod(selectors.genre_distribution)


class SeasonFilter(serializers.Serializer):
    from_year = serializers.IntegerField(min_value=FIRST_YEAR, max_value=LAST_YEAR, required=False)
    to_year = serializers.IntegerField(min_value=FIRST_YEAR, max_value=LAST_YEAR, required=False)
    as_of = serializers.DateField(required=False, help_text="Count only titles first seen by this day.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("from_year") and attrs.get("to_year") and attrs["from_year"] > attrs["to_year"]:
            raise serializers.ValidationError({"from_year": "must not be after to_year."})
        return attrs


class SeasonRow(serializers.Serializer):
    year = serializers.IntegerField()
    season = serializers.CharField()
    volume = serializers.IntegerField(help_text="Titles that aired in the season.")
    mean_score = serializers.FloatField(allow_null=True)
    mean_members = serializers.FloatField(allow_null=True)
    mean_popularity = serializers.FloatField(allow_null=True, help_text="Mean popularity rank (lower: more popular).")
    total_favorites = serializers.IntegerField()


class SeasonAnswer(serializers.Serializer):
    from_year = serializers.IntegerField()
    to_year = serializers.IntegerField()
    min_volume = serializers.IntegerField(
        help_text="Seasons with fewer titles are hidden: too small to mean anything (setting SEASON_MIN_VOLUME)."
    )
    hidden_small_seasons = serializers.IntegerField(help_text="How many seasons of the range were hidden so.")
    results = SeasonRow(many=True)


class SeasonalTrendsApi(AnalyticsApi):
    """Seasonal trends.

    Per (year, season) over every title known: volume, mean score, mean members, mean popularity rank,
    total favorites. Default range: the last five years. A season with fewer than `min_volume` titles is
    hidden, and counted in `hidden_small_seasons`.
    """

    endpoint = "seasons"
    Filter = SeasonFilter
    Output = SeasonAnswer
    compute = staticmethod(selectors.seasonal_trends)
