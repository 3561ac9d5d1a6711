"""The open data dumps under /api/v1/exports (namespace `exports`), beside the analytics API's `api` namespace."""

from __future__ import annotations

from django.urls import include, path

from analytics.api.exports import ExportDetailApi, ExportListApi

app_name = "exports"

# Mounted at "api/v1/exports" (no slash, as the other endpoints); one dump hangs under "/".
urlpatterns = [
    path("", ExportListApi.as_view(), name="list"),
    path("/", include([path("<str:name>", ExportDetailApi.as_view(), name="detail")])),
]
