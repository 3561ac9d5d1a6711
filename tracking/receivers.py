from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest

from tracking import services


def remember_search(sender: Any, *, request: HttpRequest, query: str, **kwargs: Any) -> None:
    """A signed-in person's search goes first among their recent searches."""
    if isinstance(request.user, User) and query:
        services.search_remember(user=request.user, query=query)
