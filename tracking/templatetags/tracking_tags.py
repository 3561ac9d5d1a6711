"""The quick control beside every title a page shows: the person's status of it, to add or change in place."""

from __future__ import annotations

from typing import Any

from django import template
from django.contrib.auth.models import User
from django.http import HttpRequest

from tracking.models import ListEntry, ListStatus

register = template.Library()


@register.inclusion_tag("tracking/_track_control.html", takes_context=True)
def track_control(context: template.Context, mal_id: int, title: str) -> dict[str, Any]:
    request: HttpRequest | None = context.get("request")
    if request is None or not request.user.is_authenticated:
        return {"signed_in": False, "mal_id": mal_id, "title": title}
    counter = getattr(request, "_track_controls", 0) + 1
    request._track_controls = counter  # type: ignore[attr-defined]
    return {
        "signed_in": True,
        "mal_id": mal_id,
        "title": title,
        "entry": _statuses(request).get(mal_id),
        "statuses": ListStatus.choices,
        "csrf_token": context.get("csrf_token"),
        "next": request.get_full_path(),
        "uid": f"track-{mal_id}-{counter}",
    }


def _statuses(request: HttpRequest) -> dict[int, tuple[str, int]]:
    """The person's (status, progress) by title: one query for the whole page, however many rows it has."""
    if not hasattr(request, "_track_statuses"):
        person = request.user
        assert isinstance(person, User)  # track_control asks only for a signed-in person
        rows = ListEntry.objects.filter(user=person).values_list("anime_id", "status", "progress")
        request._track_statuses = {anime_id: (status, progress) for anime_id, status, progress in rows}  # type: ignore[attr-defined]
    return request._track_statuses  # type: ignore[attr-defined]
