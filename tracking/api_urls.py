"""The person's own data under /api/v1/me/ (namespace `me`)."""

from __future__ import annotations

from django.urls import path

from tracking import api

app_name = "me"

urlpatterns = [
    path("list", api.MyListApi.as_view(), name="list"),
    path("list/<int:mal_id>", api.MyListEntryApi.as_view(), name="list-entry"),
    path("import", api.MyImportApi.as_view(), name="import"),
    path("import/<int:job_id>", api.MyImportJobApi.as_view(), name="import-job"),
    path("export", api.MyExportApi.as_view(), name="export"),
    path("stats", api.MyStatsApi.as_view(), name="stats"),
    path("companion", api.MyCompanionApi.as_view(), name="companion"),
]
