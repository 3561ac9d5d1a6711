from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from animedash import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("", include("django_prometheus.urls")),
    path("", include("analytics.urls")),
]
