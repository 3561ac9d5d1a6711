"""Server-rendered pages. Each view calls selectors and renders one template."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "analytics/dashboard.html")
