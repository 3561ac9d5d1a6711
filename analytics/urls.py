from __future__ import annotations

from django.urls import path

from analytics import data_views, views

app_name = "analytics"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("top-table/", views.top_table, name="top-table"),
    path("moving-now/", views.moving_now, name="moving-now"),
    path("data-version/", views.data_version, name="data-version"),
    path("trending/", views.trending, name="trending"),
    path("trending/tables/", views.trending_tables, name="trending-tables"),
    path("anime/<int:mal_id>/", views.anime_detail, name="anime-detail"),
    path("status/", views.status, name="status"),
    path("about/", views.about, name="about"),
    path("search/", views.search, name="search"),
    path("data/", data_views.data, name="data"),
    path("data/<str:dump>/<path:path>", data_views.data_file, name="data-file"),
]
