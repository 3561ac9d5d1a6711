"""The person's alert rules, webhooks and deliveries under /api/v1/me/alerts (namespace `me-alerts`)."""

from __future__ import annotations

app_name = "me-alerts"

urlpatterns: list = []
