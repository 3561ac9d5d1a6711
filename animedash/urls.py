from __future__ import annotations

from csp.decorators import csp_update
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView, TemplateView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from animedash import health

# The split view serves Swagger UI's start-up code as a script of its own (`?script=`), so the page runs under
# the site's policy with no inline script. Swagger UI styles its widgets with inline <style> and style
# attributes: only this page allows them.
api_docs = csp_update({"style-src": ["'unsafe-inline'"]})(SpectacularSwaggerSplitView.as_view(url_name="api-schema"))

# Browsers ask for /favicon.ico and crawlers for /robots.txt whatever the pages link to. The icon's URL is
# looked up per request: in production it is the hashed name `collectstatic` wrote.
favicon = RedirectView.as_view(url=lazy(static, str)("img/favicon.svg"), http_method_names=["get", "head"])
robots = TemplateView.as_view(template_name="robots.txt", content_type="text/plain")

handler400 = "animedash.errors.bad_request"
handler404 = "animedash.errors.page_not_found"
handler500 = "animedash.errors.server_error"

urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("robots.txt", robots, name="robots"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("", include("tracking.urls")),
    path("", include("alerts.urls")),
    path("accounts/", include("allauth.urls")),
    path("api/v1/me/alerts", include("alerts.api_urls")),
    path("api/v1/me/", include("tracking.api_urls")),
    path("api/v1/", include("analytics.api.urls")),
    path("api/v1/exports", include("analytics.api.export_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", api_docs, name="api-docs"),
    path("", include("analytics.urls")),
]
