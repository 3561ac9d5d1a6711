"""One title: search, facts, and its history in every feed."""

from __future__ import annotations

from typing import Any, cast

from django.shortcuts import get_object_or_404
from drf_orjson_renderer.renderers import ORJSONRenderer
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from analytics import selectors
from analytics.api.base import (
    RANK_BY_HELP,
    AnalyticsApi,
    CsvExportMixin,
    EndpointSchema,
    KnownParametersMixin,
    Pagination,
    PlainRows,
    choice,
    score_field,
)
from analytics.api.renderers import Table, columns, flatten
from analytics.cache import cached
from analytics.wire import cacheable
from snapshots.models import ANIME_FACT_FIELDS, Anime
from snapshots.validation import FIRST_YEAR, LAST_YEAR, SEASONS


class AnimeSearchFilter(serializers.Serializer):
    q = serializers.CharField(
        max_length=200,
        required=False,
        help_text="Words of any of the title's names (original, English, Japanese, synonyms); case, accents and "
        "punctuation are ignored.",
    )
    genre = serializers.CharField(max_length=100, required=False, help_text="Genre name or id.")
    type = serializers.CharField(max_length=32, required=False)
    status = serializers.CharField(max_length=64, required=False, help_text="e.g. Currently Airing.")
    year = serializers.IntegerField(min_value=FIRST_YEAR, max_value=LAST_YEAR, required=False)
    season = choice(list(SEASONS), required=False, help_text="Season of the year.")


class AnimeRowSerializer(serializers.ModelSerializer):
    class Meta:
        model = Anime
        fields = [
            "mal_id",
            "title",
            "title_english",
            "type",
            "status",
            "season",
            "year",
            "score",
            "rank",
            "popularity",
            "members",
            "image_url",
        ]


class AnimeSearchApi(KnownParametersMixin, CsvExportMixin, ListAPIView):
    """Search titles.

    Titles matching every given filter, most members first, a page at a time.
    """

    endpoint = "anime-search"
    Filter = AnimeSearchFilter
    serializer_class = AnimeRowSerializer
    pagination_class = Pagination
    schema = EndpointSchema()

    def get_queryset(self) -> Any:
        return selectors.anime_search(**self._filters())

    def _filters(self) -> dict[str, Any]:
        filters = AnimeSearchFilter(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return dict(filters.validated_data)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # Titles only change when a run commits, so a result page is cached under the data version, keyed by
        # the validated query only (the same page asked in other spellings is one entry). The page's
        # next/previous links are absolute and keep the format, so the host and the format are in the key.
        paginator = cast(Pagination, self.paginator)
        params = {
            **self._filters(),
            "page": _page_number(request.query_params.get(paginator.page_query_param) or "1"),
            "page_size": paginator.get_page_size(request),
            "format": request.accepted_renderer.format,
            "host": request.get_host(),
        }
        cacheable(request, self.endpoint, params, throttled=bool(self.get_throttles()))
        return Response(cached(self.endpoint, params, lambda: super(AnimeSearchApi, self).list(request).data))


def _page_number(page: str) -> int | str:
    """The page as Django's paginator reads it ("01" is page 1); any other text ("last", or a 404, which is
    never cached) as it is."""
    try:
        return int(page)
    except ValueError:
        return page


def _anime_or_404(mal_id: int) -> Anime:
    # Looked up while computing: a cached answer costs no query, and an unknown id is never cached.
    return get_object_or_404(Anime, mal_id=mal_id)


class NamedRef(serializers.Serializer):
    mal_id = serializers.IntegerField()
    name = serializers.CharField()


class GenreRef(NamedRef):
    kind = serializers.CharField()


class FeedPlace(serializers.Serializer):
    feed = serializers.CharField()
    taken_on = serializers.DateField()
    position = serializers.IntegerField()
    rank = serializers.IntegerField(allow_null=True)
    score = score_field(allow_null=True)


class TitleVariant(serializers.Serializer):
    type = serializers.CharField(help_text="Default, Synonym, Japanese, English, ... as Jikan names it.")
    title = serializers.CharField()


class AnimeDetailAnswer(serializers.ModelSerializer):
    titles = TitleVariant(many=True, help_text="Every name Jikan gives the title.")
    genres = GenreRef(many=True)
    studios = NamedRef(many=True)
    feeds = FeedPlace(many=True, help_text="Its row on the latest day of each feed it is in.")

    class Meta:
        model = Anime
        fields = ["mal_id", *ANIME_FACT_FIELDS, "genres", "studios", "first_seen", "last_seen", "feeds"]


def _detail(*, mal_id: int) -> dict[str, Any]:
    return selectors.anime_detail(anime=_anime_or_404(mal_id))


class AnimeDetailApi(AnalyticsApi):
    """One title.

    Its facts, genres, studios and latest row in every feed. An unknown `mal_id` is a 404.
    """

    renderer_classes = [ORJSONRenderer, BrowsableAPIRenderer]
    endpoint = "anime-detail"
    Filter = serializers.Serializer
    Output = AnimeDetailAnswer
    compute = staticmethod(_detail)


class HistoryFilter(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=3650, required=False, help_text="Only the last N days.")
    as_of = serializers.DateField(required=False, help_text="End the series on this day.")


class HistoryDay(serializers.Serializer):
    taken_on = serializers.DateField()
    score = score_field(allow_null=True)
    rank = serializers.IntegerField(allow_null=True, help_text="MAL's rank by score.")
    popularity = serializers.IntegerField(allow_null=True, help_text="MAL's rank by members.")
    members = serializers.IntegerField(allow_null=True)
    favorites = serializers.IntegerField(allow_null=True)
    score_change = score_field(allow_null=True)
    rank_change = serializers.IntegerField(allow_null=True, help_text="Previous rank - rank: positive climbed.")
    popularity_change = serializers.IntegerField(
        allow_null=True, help_text="Previous popularity - popularity: positive climbed."
    )
    members_change = serializers.IntegerField(allow_null=True)
    favorites_change = serializers.IntegerField(allow_null=True)

    class Meta:
        list_serializer_class = PlainRows


class FeedPoint(serializers.Serializer):
    taken_on = serializers.DateField()
    feed_rank = serializers.IntegerField(allow_null=True, help_text="The feed's own rank (see `rank_by`).")
    position = serializers.IntegerField(help_text="The place in the feed's list that day (1 is first).")
    feed_rank_change = serializers.IntegerField(
        allow_null=True, help_text="Previous feed rank - feed rank: positive climbed."
    )

    class Meta:
        list_serializer_class = PlainRows


class HistoryAnswer(serializers.Serializer):
    mal_id = serializers.IntegerField()
    title = serializers.CharField()
    days = HistoryDay(many=True, help_text="The title's own numbers, one point per snapshot day, oldest first.")
    rank_by = serializers.DictField(
        child=serializers.CharField(),
        help_text=f"Per feed, the number its feed rank is. {RANK_BY_HELP}",
    )
    feeds = serializers.DictField(
        child=FeedPoint(many=True),
        help_text="Per feed, the title's feed rank and position on each day it was in the feed, oldest first.",
    )


def _history(*, mal_id: int, **filters: Any) -> dict[str, Any]:
    return selectors.anime_history(anime=_anime_or_404(mal_id), **filters)


class AnimeHistoryApi(AnalyticsApi):
    """Title history.

    The title's own numbers once per snapshot day (score, MAL rank, popularity, members, favorites, the same
    in every feed), and per feed its feed rank and position each day; every point with its change from the
    point before. An unknown `mal_id` is a 404. As CSV: a row per day and feed.
    """

    endpoint = "anime-history"
    Filter = HistoryFilter
    Output = HistoryAnswer
    compute = staticmethod(_history)

    def csv_table(self, data: Any) -> Table:
        """A row per day and feed the title was in: its feed rank and position beside its own numbers that day."""
        own = {day["taken_on"]: day for day in data["days"]}
        numbers = [*columns(FeedPoint()), *columns(HistoryDay())]
        header = list(dict.fromkeys(["mal_id", "title", "taken_on", "feed", "rank_by", *numbers]))
        rows = [
            {**own.get(point["taken_on"], {}), **point, "feed": feed, "rank_by": data["rank_by"][feed]}
            for feed, points in data["feeds"].items()
            for point in points
        ]
        # Day by day; within a day the feeds keep their order (the sort is stable).
        rows.sort(key=lambda row: row["taken_on"])
        return header, [flatten({"mal_id": data["mal_id"], "title": data["title"], **row}) for row in rows]
