"""Error answers: JSON under /api/ (clients parse them), HTML pages for people everywhere else.

Django's handlers answer 400, 404 and 500 with HTML pages, also for a URL under /api/ that matches no
endpoint (DRF only answers for its own views), so an API client would get a page it cannot parse.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import defaults

API_PREFIX = "/api/"
# Seconds a client should wait before retrying while the database is away.
RETRY_AFTER = "30"


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        detail = f"No API endpoint at {request.path}. /api/v1/ lists them; their paths end without a slash."
        return JsonResponse({"detail": detail}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api(request):
        return JsonResponse({"detail": "Server error. It has been logged."}, status=500)
    return defaults.server_error(request)


def database_unavailable(request: HttpRequest) -> HttpResponse:
    """503 while the database cannot be reached: JSON for the API, a page for people.

    The page is rendered without the request's context processors: they may need the database too.
    """
    if is_api(request):
        body = {"detail": "The database is unavailable. Try again shortly.", "code": "database_unavailable"}
        return JsonResponse(body, status=503, headers={"Retry-After": RETRY_AFTER})
    return HttpResponse(render_to_string("503.html"), status=503, headers={"Retry-After": RETRY_AFTER})
