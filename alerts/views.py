"""The alerts pages: rules with their preview, webhooks, the private feed and the delivery log."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def rules(request: HttpRequest) -> HttpResponse:
    return render(request, "alerts/rules.html", {})
