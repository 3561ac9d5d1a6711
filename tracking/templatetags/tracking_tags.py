"""The quick control beside every title a page shows: the person's status of it, to add or change in place."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from django import template
from django.contrib.auth.models import User
from django.http import HttpRequest

from snapshots.models import Genre
from tracking.companion import companion_for
from tracking.models import ListEntry, ListStatus, Profile

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


@register.inclusion_tag("tracking/_recent_searches.html", takes_context=True)
def recent_searches(context: template.Context) -> dict[str, Any]:
    """The signed-in person's last searches, as links that run them again."""
    request: HttpRequest | None = context.get("request")
    if request is None or not isinstance(request.user, User):
        return {"searches": []}
    profile = Profile.objects.filter(user=request.user).first()
    queries = profile.recent_searches if profile else []
    genre_ids = {int(v) for q in queries for name, v in parse_qsl(q) if name == "genre" and v.isdigit()}
    genres = dict(Genre.objects.filter(mal_id__in=genre_ids).values_list("mal_id", "name"))
    return {"searches": [(f"?{query}", _label(query, genres)) for query in queries]}


def _label(query: str, genres: dict[int, str]) -> str:
    """A search in words: "naruto · Action · year min 2000"."""
    parts = []
    for name, value in parse_qsl(query):
        if name == "q":
            parts.append(value)
        elif name == "genre" and value.isdigit():
            parts.append(genres.get(int(value), f"genre {value}"))
        else:
            parts.append(f"{name.replace('_', ' ')} {value}")
    return " · ".join(parts)


@register.inclusion_tag("tracking/_companion.html", takes_context=True)
def companion(context: template.Context) -> dict[str, Any]:
    """The cat, for a signed-in person who has not hidden it."""
    request: HttpRequest | None = context.get("request")
    if request is None or not isinstance(request.user, User):
        return {"companion": None}
    return {"companion": companion_for(user=request.user), "request": request, "csrf_token": context.get("csrf_token")}
