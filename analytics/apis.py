"""The analytics JSON API (/api/v1/): parse the query, call one cached selector, respond.

Every list answers in the shared envelope (feed, as_of, date, baseline_date, insufficient_history,
results) and can be downloaded as CSV with `?format=csv`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, get_resolver
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAdminUser
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from analytics import selectors
from analytics.cache import api_cached, cached
from analytics.renderers import CSVRenderer
from analytics.selectors.trends import MONTHLY, WEEKLY, WINDOWS
from snapshots.feeds import FEEDS
from snapshots.models import Anime, EtlRun
from snapshots.validation import SEASONS

RENDERERS: Sequence[type[BaseRenderer]] = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer]


def choice(choices: list[Any] | tuple[Any, ...], *, help_text: str, **kwargs: Any) -> serializers.ChoiceField:
    """A choice parameter whose error says what is allowed."""
    allowed = ", ".join(str(c) for c in choices)
    return serializers.ChoiceField(
        choices=choices,
        help_text=f"{help_text} One of: {allowed}.",
        error_messages={"invalid_choice": f'"{{input}}" is not allowed; use one of: {allowed}.'},
        **kwargs,
    )


def window_field() -> serializers.ChoiceField:
    # DRF maps "7" back to the int choice 7.
    return choice(
        list(WINDOWS),
        default=WEEKLY,
        help_text=f"Days between the two compared snapshots: {WEEKLY} (weekly) or {MONTHLY} (monthly).",
    )


class FeedFilter(serializers.Serializer):
    feed = choice(list(FEEDS), default="top", help_text="The ranking to read.")
    as_of = serializers.DateField(
        default=None,
        help_text="Replay a past day (YYYY-MM-DD): the newest snapshot on or before it. Default: latest.",
    )


class ListFilter(FeedFilter):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=10, help_text="Rows to return, 1..100.")


class InsufficientHistorySerializer(serializers.Serializer):
    needed_days = serializers.IntegerField(help_text="Days of history the metric needs.")
    have_days = serializers.IntegerField(help_text="Days of history there are.")
    available_in_days = serializers.IntegerField(help_text="Days until the metric can be computed.")


def object_schema(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=OpenApiTypes.OBJECT, description=description)


def envelope_schema(schema_name: str, /, **row_fields: serializers.Field) -> serializers.Serializer:
    """The OpenAPI description of the shared envelope around rows of `row_fields`."""
    return inline_serializer(
        name=schema_name,
        fields={
            "feed": serializers.CharField(),
            "as_of": serializers.DateField(allow_null=True),
            "date": serializers.DateField(allow_null=True, help_text="D: the snapshot day answered."),
            "baseline_date": serializers.DateField(allow_null=True, help_text="B: the day compared with, if any."),
            "insufficient_history": InsufficientHistorySerializer(
                allow_null=True, help_text="Set (and results empty) when the history is too short for an answer."
            ),
            "results": inline_serializer(name=f"{schema_name}Row", fields=row_fields, many=True),
        },
    )


def _title_fields() -> dict[str, serializers.Field]:
    return {"mal_id": serializers.IntegerField(), "title": serializers.CharField()}


class CsvExportMixin:
    """`?format=csv` downloads the list as `animedash-<endpoint>.csv`; errors stay JSON."""

    renderer_classes = RENDERERS
    endpoint = ""

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        # Errors stay JSON even when CSV was asked for; a CSV download gets a file name.
        if getattr(request, "accepted_renderer", None) and request.accepted_renderer.format == "csv":
            if response.status_code >= 400:
                request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
            else:
                response["Content-Disposition"] = f'attachment; filename="animedash-{self.endpoint}.csv"'
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]


class AnalyticsApi(CsvExportMixin, APIView):
    """Parse the query with `Filter`, answer `compute(**filters)` through the cache."""

    Filter: type[serializers.Serializer] = FeedFilter
    compute: Callable[..., Any]

    def get(self, request: Request) -> Response:
        filters = self.Filter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return Response(api_cached(self.endpoint, filters.validated_data, type(self).compute))


class OverviewFilter(serializers.Serializer):
    as_of = serializers.DateField(required=False, help_text="Count only what existed on this day.")


@extend_schema(
    summary="Overview",
    description="Titles tracked, snapshot days and rows, each feed's first and latest day, data age and last run.",
    parameters=[OverviewFilter],
    responses=object_schema("anime, snapshot_days, rows, feeds[], last_run"),
)
class OverviewApi(AnalyticsApi):
    endpoint = "overview"
    Filter = OverviewFilter
    compute = staticmethod(selectors.overview)


class TopRatedFilter(ListFilter):
    min_score = serializers.DecimalField(
        max_digits=4, decimal_places=2, min_value=Decimal(1), max_value=Decimal(10), required=False
    )
    genre = serializers.CharField(max_length=100, required=False, help_text="Genre, theme or demographic name or id.")
    type = serializers.CharField(max_length=32, required=False, help_text="TV, Movie, OVA, ONA, Special...")


@extend_schema(
    summary="Top rated",
    description="The feed on day D ordered by score (unscored last), then by position in the feed.",
    parameters=[TopRatedFilter],
    responses=envelope_schema(
        "TopRated",
        **_title_fields(),
        type=serializers.CharField(),
        rank=serializers.IntegerField(allow_null=True),
        position=serializers.IntegerField(),
        score=serializers.FloatField(allow_null=True),
        members=serializers.IntegerField(allow_null=True),
        popularity=serializers.IntegerField(allow_null=True),
        image_url=serializers.CharField(),
    ),
)
class TopRatedApi(AnalyticsApi):
    endpoint = "top-rated"
    Filter = TopRatedFilter
    compute = staticmethod(selectors.top_rated)


class GenreFilter(FeedFilter):
    kind = choice(["genres", "themes", "demographics"], default="genres", help_text="Which kind of genre to count.")


@extend_schema(
    summary="Genre distribution",
    description=(
        "Per genre at D: `count` of titles having it, `coverage` = titles having it / titles in the snapshot (%), "
        "`frequency` = mentions of it / all mentions of that kind (%)."
    ),
    parameters=[GenreFilter],
    responses=envelope_schema(
        "Genres",
        mal_id=serializers.IntegerField(),
        name=serializers.CharField(),
        kind=serializers.CharField(),
        count=serializers.IntegerField(),
        coverage=serializers.FloatField(),
        frequency=serializers.FloatField(),
    ),
)
class GenreDistributionApi(AnalyticsApi):
    endpoint = "genres"
    Filter = GenreFilter
    compute = staticmethod(selectors.genre_distribution)


class SeasonFilter(serializers.Serializer):
    from_year = serializers.IntegerField(min_value=1917, max_value=2100, required=False)
    to_year = serializers.IntegerField(min_value=1917, max_value=2100, required=False)
    as_of = serializers.DateField(required=False, help_text="Count only titles first seen by this day.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("from_year") and attrs.get("to_year") and attrs["from_year"] > attrs["to_year"]:
            raise serializers.ValidationError({"from_year": "must not be after to_year."})
        return attrs


@extend_schema(
    summary="Seasonal trends",
    description=(
        "Per (year, season) over every title known: volume, mean score, mean members, mean popularity rank, "
        "total favorites. Default range: the last five years."
    ),
    parameters=[SeasonFilter],
    responses=inline_serializer(
        "Seasons",
        fields={
            "from_year": serializers.IntegerField(),
            "to_year": serializers.IntegerField(),
            "results": inline_serializer(
                "SeasonsRow",
                fields={
                    "year": serializers.IntegerField(),
                    "season": serializers.CharField(),
                    "volume": serializers.IntegerField(),
                    "mean_score": serializers.FloatField(allow_null=True),
                    "mean_members": serializers.FloatField(allow_null=True),
                    "mean_popularity": serializers.FloatField(allow_null=True),
                    "total_favorites": serializers.IntegerField(allow_null=True),
                },
                many=True,
            ),
        },
    ),
)
class SeasonalTrendsApi(AnalyticsApi):
    endpoint = "seasons"
    Filter = SeasonFilter
    compute = staticmethod(selectors.seasonal_trends)


class WindowFilter(ListFilter):
    window = window_field()


MOVE_ROW = {
    **_title_fields(),
    "rank": serializers.IntegerField(),
    "previous_rank": serializers.IntegerField(),
    "change": serializers.IntegerField(help_text="Rank at B - rank at D: positive means it climbed."),
    "score": serializers.FloatField(allow_null=True),
    "image_url": serializers.CharField(),
}


@extend_schema(
    summary="Rank climbers",
    description=(
        "B = the newest snapshot day with D - 2*window ≤ B ≤ D - window; change = rank at B - rank at D for titles "
        "present on both days; climbers have change > 0, biggest first, then by current rank."
    ),
    parameters=[WindowFilter],
    responses=envelope_schema("Climbers", **MOVE_ROW),
)
class RankClimbersApi(AnalyticsApi):
    endpoint = "climbers"
    Filter = WindowFilter
    compute = staticmethod(selectors.rank_climbers)


@extend_schema(
    summary="Rank fallers",
    description="As climbers, for titles whose rank got worse (change < 0), biggest fall first.",
    parameters=[WindowFilter],
    responses=envelope_schema("Fallers", **MOVE_ROW),
)
class RankFallersApi(AnalyticsApi):
    endpoint = "fallers"
    Filter = WindowFilter
    compute = staticmethod(selectors.rank_fallers)


class MomentumFilter(WindowFilter):
    min_change = serializers.DecimalField(
        max_digits=4,
        decimal_places=2,
        min_value=Decimal("0.01"),
        max_value=Decimal(9),
        default=Decimal("0.01"),
        help_text="Smallest score gain listed.",
    )


@extend_schema(
    summary="Score momentum",
    description="Same B as climbers; change = score at D - score at B, at least `min_change`, biggest first.",
    parameters=[MomentumFilter],
    responses=envelope_schema(
        "Momentum",
        **_title_fields(),
        score=serializers.FloatField(),
        previous_score=serializers.FloatField(),
        change=serializers.FloatField(help_text="Score points gained."),
        rank=serializers.IntegerField(allow_null=True),
    ),
)
class ScoreMomentumApi(AnalyticsApi):
    endpoint = "momentum"
    Filter = MomentumFilter
    compute = staticmethod(selectors.score_momentum)


class NewEntriesFilter(ListFilter):
    top = serializers.IntegerField(min_value=1, max_value=100, default=50, help_text="The top N to watch.")


@extend_schema(
    summary="New entries",
    description=(
        "Titles ranked ≤ top on some day in (D - 7, D] that were never ranked ≤ top on any snapshot day in "
        "[D - 90, D - 7], with the day each first entered."
    ),
    parameters=[NewEntriesFilter],
    responses=envelope_schema(
        "NewEntries",
        **_title_fields(),
        rank=serializers.IntegerField(allow_null=True),
        entered_on=serializers.DateField(),
        best_rank=serializers.IntegerField(),
    ),
)
class NewEntriesApi(AnalyticsApi):
    endpoint = "new-entries"
    Filter = NewEntriesFilter
    compute = staticmethod(selectors.new_entries)


class StreaksFilter(ListFilter):
    top = serializers.IntegerField(min_value=1, max_value=100, default=10, help_text="The top N to watch.")


@extend_schema(
    summary="Top-N streaks",
    description=(
        "For each title in the top N at D: how many consecutive snapshot days (days the feed has data; a missed "
        "day does not break a streak) end at D with rank ≤ N, and since when. Longest first."
    ),
    parameters=[StreaksFilter],
    responses=envelope_schema(
        "Streaks",
        **_title_fields(),
        rank=serializers.IntegerField(),
        days=serializers.IntegerField(),
        since=serializers.DateField(),
    ),
)
class TopStreaksApi(AnalyticsApi):
    endpoint = "streaks"
    Filter = StreaksFilter
    compute = staticmethod(selectors.top_streaks)


class TrendingFilter(FeedFilter):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=5, help_text="Rows per list, 1..100.")


@extend_schema(
    summary="Trending (dashboard widget)",
    description=(
        "One payload with weekly and monthly climbers, weekly and monthly score momentum, new entries to the "
        "top 50 and the longest top-10 streaks; each list is an envelope."
    ),
    parameters=[TrendingFilter],
    responses=object_schema(
        "feed, as_of, date and the envelopes weekly_climbers, monthly_climbers, weekly_momentum, "
        "monthly_momentum, new_entries, streaks"
    ),
)
class TrendingApi(AnalyticsApi):
    endpoint = "trending"
    Filter = TrendingFilter
    compute = staticmethod(selectors.trending)


class FeedsApi(AnalyticsApi):
    endpoint = "feeds"

    class Filter(serializers.Serializer):
        pass

    compute = staticmethod(selectors.feeds_summary)

    @extend_schema(
        summary="Feeds",
        description="Each feed with its Jikan query, first and latest day and data age.",
        responses=object_schema("a list of feeds"),
    )
    def get(self, request: Request) -> Response:
        return super().get(request)


class AnimeSearchFilter(serializers.Serializer):
    q = serializers.CharField(max_length=200, required=False, help_text="Part of the title (any language).")
    genre = serializers.CharField(max_length=100, required=False, help_text="Genre name or id.")
    type = serializers.CharField(max_length=32, required=False)
    status = serializers.CharField(max_length=64, required=False, help_text="e.g. Currently Airing.")
    year = serializers.IntegerField(min_value=1917, max_value=2100, required=False)
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


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100


@extend_schema(summary="Search titles", parameters=[AnimeSearchFilter])
class AnimeSearchApi(CsvExportMixin, ListAPIView):
    endpoint = "anime"
    serializer_class = AnimeRowSerializer
    pagination_class = Pagination

    def get_queryset(self) -> Any:
        filters = AnimeSearchFilter(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.anime_search(**filters.validated_data)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # Titles only change when a run commits, so a result page is cached under the data version.
        # The page's next/previous links are absolute, so the host is part of the key.
        params = {**request.query_params.dict(), "host": request.get_host()}
        params.pop("format", None)
        return Response(cached("anime-search", params, lambda: super(AnimeSearchApi, self).list(request).data))


@extend_schema(
    summary="One title",
    description="Its facts, genres, studios and latest position in every feed.",
    responses={200: object_schema("the title's facts and `feeds`"), 404: object_schema("unknown mal_id")},
)
class AnimeDetailApi(APIView):
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer]

    def get(self, request: Request, mal_id: int) -> Response:
        # Looked up while computing: a cached answer costs no query, and an unknown id is never cached.
        return Response(
            cached("anime", {"mal_id": mal_id}, lambda: selectors.anime_detail(anime=_anime_or_404(mal_id)))
        )


def _anime_or_404(mal_id: int) -> Anime:
    return get_object_or_404(Anime, mal_id=mal_id)


class HistoryFilter(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=3650, required=False, help_text="Only the last N days.")
    as_of = serializers.DateField(required=False, help_text="End the series on this day.")


@extend_schema(
    summary="Title history",
    description="Per feed: (day, position, rank, score, members, popularity, favorites) with the change "
    "from the previous snapshot of that feed.",
    parameters=[HistoryFilter],
    responses={200: object_schema("mal_id, title and `feeds`: {feed: [points]}"), 404: object_schema("unknown mal_id")},
)
class AnimeHistoryApi(APIView):
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer]

    def get(self, request: Request, mal_id: int) -> Response:
        filters = HistoryFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        return Response(
            cached(
                "history",
                {"mal_id": mal_id, **params},
                lambda: selectors.anime_history(anime=_anime_or_404(mal_id), **params),
            )
        )


class EtlRunSerializer(serializers.ModelSerializer):
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = EtlRun
        fields = [
            "id",
            "feed",
            "taken_on",
            "trigger",
            "status",
            "started_at",
            "finished_at",
            "duration_seconds",
            "pages",
            "requests",
            "retries",
            "rate_limited",
            "items_received",
            "items_duplicate",
            "items_loaded",
            "items_rejected",
            "error",
        ]


class EtlRunFilter(serializers.Serializer):
    feed = serializers.CharField(max_length=32, required=False)
    status = choice(EtlRun.Status.values, required=False, help_text="Run outcome.")


class EtlRunStart(serializers.Serializer):
    feed = choice(list(FEEDS), help_text="The feed to snapshot now.")


class EtlRunsApi(CsvExportMixin, ListAPIView):
    """GET: the ETL runs, newest first. POST (staff only): start a run of a feed now."""

    endpoint = "etl-runs"
    serializer_class = EtlRunSerializer
    pagination_class = Pagination

    def get_permissions(self) -> list[Any]:
        # Reading the run log is public; starting work is for staff.
        return [IsAdminUser()] if self.request.method == "POST" else []

    def get_queryset(self) -> Any:
        filters = EtlRunFilter(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.etl_runs(**filters.validated_data)

    @extend_schema(summary="ETL runs", parameters=[EtlRunFilter])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Start an ETL run (staff)",
        request=EtlRunStart,
        responses={202: OpenApiResponse(description="Queued.")},
    )
    def post(self, request: Request) -> Response:
        from snapshots.tasks import feed_snapshot as feed_snapshot_task

        start = EtlRunStart(data=request.data)
        start.is_valid(raise_exception=True)
        feed = start.validated_data["feed"]
        transaction.on_commit(lambda: feed_snapshot_task.delay(feed, EtlRun.Trigger.API))
        return Response({"feed": feed, "queued": True, "eager": settings.CELERY_TASK_ALWAYS_EAGER}, status=202)


class ApiRootView(APIView):
    """AnimeDash analytics API. Every list takes `feed` and `as_of`; add `?format=csv` for a CSV download."""

    renderer_classes = [JSONRenderer, BrowsableAPIRenderer]

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        # Every endpoint that needs no id, as the URLconf declares it: the root never misses a new one.
        _, api = get_resolver().namespace_dict["api"]
        names = [
            p.name
            for p in api.url_patterns
            if isinstance(p, URLPattern) and p.name and p.name != "root" and not p.pattern.converters
        ]
        links = {name: reverse(f"api:{name}", request=request) for name in names}
        links["schema"] = reverse("api-schema", request=request)
        links["docs"] = reverse("api-docs", request=request)
        return Response(links)
