"""The Follow control on a title's page: alerts on its moves in one click."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import HttpRequest

from alerts.models import AlertRule

register = template.Library()


@register.inclusion_tag("alerts/_follow_control.html", takes_context=True)
def follow_control(context: template.Context, mal_id: int, title: str) -> dict[str, Any]:
    """ "Follow", or "Following · Edit alerts · Unfollow" when the person has rules on the title (one query)."""
    request: HttpRequest | None = context.get("request")
    if request is None or not request.user.is_authenticated:
        return {"signed_in": False, "mal_id": mal_id, "title": title}
    following = AlertRule.objects.filter(user=request.user, scope=AlertRule.Scope.TITLE, anime_id=mal_id).exists()
    return {
        "signed_in": True,
        "mal_id": mal_id,
        "title": title,
        "following": following,
        "csrf_token": context.get("csrf_token"),
        "next": request.get_full_path(),
    }
