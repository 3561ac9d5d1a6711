"""The person's alert rules, webhooks and deliveries under /api/v1/me/alerts (namespace `me-alerts`)."""

from __future__ import annotations

from django.urls import include, path

from alerts import api

app_name = "me-alerts"

# Mounted at "api/v1/me/alerts" (no slash, so the rules are at /api/v1/me/alerts); the rest hangs under "/".
urlpatterns = [
    path("", api.MyAlertRulesApi.as_view(), name="rules"),
    path(
        "/",
        include(
            [
                path("<int:rule_id>", api.MyAlertRuleApi.as_view(), name="rule"),
                path("preview", api.MyAlertPreviewApi.as_view(), name="preview"),
                path("webhooks", api.MyWebhooksApi.as_view(), name="webhooks"),
                path("webhooks/<int:endpoint_id>", api.MyWebhookApi.as_view(), name="webhook"),
                path("webhooks/<int:endpoint_id>/test", api.MyWebhookTestApi.as_view(), name="webhook-test"),
                path("webhooks/<int:endpoint_id>/rotate", api.MyWebhookRotateApi.as_view(), name="webhook-rotate"),
                path("deliveries", api.MyDeliveriesApi.as_view(), name="deliveries"),
                path("feed", api.MyAlertFeedApi.as_view(), name="feed"),
            ]
        ),
    ),
]
