"""One title: search, facts, and its history in every feed."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from analytics import selectors
from analytics.api.base import AnalyticsApi, CsvExportMixin, EndpointSchema, Pagination, choice, score_field
from analytics.cache import cached
from snapshots.models import ANIME_FACT_FIELDS, Anime
from snapshots.validation import FIRST_YEAR, LAST_YEAR, SEASONS


class AnimeSearchFilter(serializers.Serializer):
    q = serializers.CharField(max_length=200, required=False, help_text="Part of the original or English title.")
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


class AnimeSearchApi(CsvExportMixin, ListAPIView):
    """Search titles.

    Titles matching every given filter, most members first, a page at a time.
    """

    endpoint = "anime-search"
    Filter = AnimeSearchFilter
    serializer_class = AnimeRowSerializer
    pagination_class = Pagination
    schema = EndpointSchema()

    def get_queryset(self) -> Any:
        filters = AnimeSearchFilter(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.anime_search(**filters.validated_data)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # Titles only change when a run commits, so a result page is cached under the data version.
        # The page's next/previous links are absolute, so the host is part of the key.
        params = {**request.query_params.dict(), "host": request.get_host()}
        params.pop("format", None)
        return Response(cached(self.endpoint, params, lambda: super(AnimeSearchApi, self).list(request).data))


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


class AnimeDetailAnswer(serializers.ModelSerializer):
    genres = GenreRef(many=True)
    studios = NamedRef(many=True)
    feeds = FeedPlace(many=True, help_text="Its row on the latest day of each feed it is in.")

    class Meta:
        model = Anime
        fields = ["mal_id", *ANIME_FACT_FIELDS, "genres", "studios", "first_seen", "last_seen", "feeds"]
        extra_kwargs = {"score": {"coerce_to_string": False}}


def _detail(*, mal_id: int) -> dict[str, Any]:
    return selectors.anime_detail(anime=_anime_or_404(mal_id))


class AnimeDetailApi(AnalyticsApi):
    """One title.

    Its facts, genres, studios and latest row in every feed. An unknown `mal_id` is a 404.
    """

    renderer_classes = [JSONRenderer, BrowsableAPIRenderer]
    endpoint = "anime-detail"
    Filter = serializers.Serializer
    Output = AnimeDetailAnswer
    compute = staticmethod(_detail)


class HistoryFilter(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=3650, required=False, help_text="Only the last N days.")
    as_of = serializers.DateField(required=False, help_text="End the series on this day.")


class HistoryPoint(serializers.Serializer):
    taken_on = serializers.DateField()
    position = serializers.IntegerField()
    rank = serializers.IntegerField(allow_null=True)
    score = score_field(allow_null=True)
    members = serializers.IntegerField(allow_null=True)
    popularity = serializers.IntegerField(allow_null=True)
    favorites = serializers.IntegerField(allow_null=True)
    rank_change = serializers.IntegerField(allow_null=True, help_text="Previous rank - rank: positive climbed.")
    score_change = score_field(allow_null=True)
    members_change = serializers.IntegerField(allow_null=True)


class HistoryAnswer(serializers.Serializer):
    mal_id = serializers.IntegerField()
    title = serializers.CharField()
    feeds = serializers.DictField(
        child=serializers.ListField(child=HistoryPoint()), help_text="Per feed, its points oldest first."
    )


def _history(*, mal_id: int, **filters: Any) -> dict[str, Any]:
    return selectors.anime_history(anime=_anime_or_404(mal_id), **filters)


class AnimeHistoryApi(AnalyticsApi):
    """Title history.

    Per feed: (day, position, rank, score, members, popularity, favorites) with the change from the
    previous snapshot of that feed. An unknown `mal_id` is a 404.
    """

    renderer_classes = [JSONRenderer, BrowsableAPIRenderer]
    endpoint = "anime-history"
    Filter = HistoryFilter
    Output = HistoryAnswer
    compute = staticmethod(_history)
