from __future__ import annotations

from django.urls import path

from alerts import feeds, views

app_name = "alerts"

urlpatterns = [
    path("my/alerts/", views.rules, name="rules"),
    path("my/alerts/new/", views.rule_new, name="rule-new"),
    path("my/alerts/<int:rule_id>/", views.rule_edit, name="rule-edit"),
    path("my/alerts/<int:rule_id>/toggle/", views.rule_toggle, name="rule-toggle"),
    path("my/alerts/<int:rule_id>/delete/", views.rule_delete, name="rule-delete"),
    path("my/alerts/feed/reset/", views.feed_reset, name="feed-reset"),
    path("my/alerts/webhooks/", views.endpoint_new, name="endpoint-new"),
    path("my/alerts/webhooks/<int:endpoint_id>/toggle/", views.endpoint_toggle, name="endpoint-toggle"),
    path("my/alerts/webhooks/<int:endpoint_id>/rotate/", views.endpoint_rotate, name="endpoint-rotate"),
    path("my/alerts/webhooks/<int:endpoint_id>/delete/", views.endpoint_delete, name="endpoint-delete"),
    path("my/alerts/webhooks/<int:endpoint_id>/test/", views.endpoint_test, name="endpoint-test"),
    path("my/alerts/deliveries/", views.deliveries, name="deliveries"),
    path("my/alerts/follow/<int:mal_id>/", views.follow, name="follow"),
    path("my/alerts/unfollow/<int:mal_id>/", views.unfollow, name="unfollow"),
    path("feeds/me/<str:key>.atom", feeds.PrivateFeed(), name="private-feed"),
    path("feeds/<str:feed>/<str:metric>.atom", feeds.PublicFeed(), name="public-feed"),
]
