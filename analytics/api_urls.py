from __future__ import annotations

from django.urls import path

from analytics import apis

app_name = "api"

urlpatterns = [
    path("", apis.ApiRootView.as_view(), name="root"),
    path("overview", apis.OverviewApi.as_view(), name="overview"),
    path("top-rated", apis.TopRatedApi.as_view(), name="top-rated"),
    path("genres", apis.GenreDistributionApi.as_view(), name="genres"),
    path("seasons", apis.SeasonalTrendsApi.as_view(), name="seasons"),
    path("trending", apis.TrendingApi.as_view(), name="trending"),
    path("trending/climbers", apis.RankClimbersApi.as_view(), name="climbers"),
    path("trending/fallers", apis.RankFallersApi.as_view(), name="fallers"),
    path("trending/momentum", apis.ScoreMomentumApi.as_view(), name="momentum"),
    path("trending/new-entries", apis.NewEntriesApi.as_view(), name="new-entries"),
    path("trending/streaks", apis.TopStreaksApi.as_view(), name="streaks"),
    path("anime", apis.AnimeSearchApi.as_view(), name="anime-search"),
    path("anime/<int:mal_id>", apis.AnimeDetailApi.as_view(), name="anime-detail"),
    path("anime/<int:mal_id>/history", apis.AnimeHistoryApi.as_view(), name="anime-history"),
    path("feeds", apis.FeedsApi.as_view(), name="feeds"),
    path("etl/runs", apis.EtlRunsApi.as_view(), name="etl-runs"),
]
