from __future__ import annotations

from django.urls import path

from alerts import feeds, views

app_name = "alerts"

urlpatterns = [
    path("my/alerts/", views.rules, name="rules"),
    path("feeds/me/<str:key>.atom", feeds.PrivateFeed(), name="private-feed"),
    path("feeds/<str:feed>/<str:metric>.atom", feeds.PublicFeed(), name="public-feed"),
]
