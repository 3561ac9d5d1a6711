"""The analytics API under /api/v1/ (namespace `api`): each URL name is its endpoint's `endpoint`."""

from __future__ import annotations

from django.urls import URLPattern, path
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from analytics.api.base import AnalyticsApi
from analytics.api.catalog import AnimeDetailApi, AnimeHistoryApi, AnimeSearchApi
from analytics.api.status import EtlRunsApi, FeedsApi, OverviewApi
from analytics.api.tables import GenreDistributionApi, SeasonalTrendsApi, TopRatedApi
from analytics.api.trends import (
    NewEntriesApi,
    RankClimbersApi,
    RankFallersApi,
    ScoreMomentumApi,
    TopStreaksApi,
    TrendingApi,
)


class ApiRootView(APIView):
    """AnimeDash analytics API. Every per-feed list takes `feed` and `as_of`; add `?format=csv` to a list for
    a CSV download."""

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        # Every endpoint that needs no id, as declared below: the root never misses a new one.
        names = [p.name for p in urlpatterns if p.name and p.name != "root" and not p.pattern.converters]
        links = {name: reverse(f"api:{name}", request=request) for name in names}
        links["schema"] = reverse("api-schema", request=request)
        links["docs"] = reverse("api-docs", request=request)
        return Response(links)


def endpoint(route: str, view: type[AnalyticsApi] | type[AnimeSearchApi] | type[EtlRunsApi]) -> URLPattern:
    """The route of an endpoint, named after it."""
    return path(route, view.as_view(), name=view.endpoint)


app_name = "api"

urlpatterns = [
    path("", ApiRootView.as_view(), name="root"),
    endpoint("overview", OverviewApi),
    endpoint("top-rated", TopRatedApi),
    endpoint("genres", GenreDistributionApi),
    endpoint("seasons", SeasonalTrendsApi),
    endpoint("trending", TrendingApi),
    endpoint("trending/climbers", RankClimbersApi),
    endpoint("trending/fallers", RankFallersApi),
    endpoint("trending/momentum", ScoreMomentumApi),
    endpoint("trending/new-entries", NewEntriesApi),
    endpoint("trending/streaks", TopStreaksApi),
    endpoint("anime", AnimeSearchApi),
    endpoint("anime/<int:mal_id>", AnimeDetailApi),
    endpoint("anime/<int:mal_id>/history", AnimeHistoryApi),
    endpoint("feeds", FeedsApi),
    endpoint("etl/runs", EtlRunsApi),
]
