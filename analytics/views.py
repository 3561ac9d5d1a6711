"""Server-rendered pages. Each view parses its query, calls selectors (cached as the API caches them) and
renders one template; the data a page's script draws goes out once, through `json_script`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse

from analytics import selectors
from analytics.cache import api_cached, cached
from analytics.forms import FEED_CHOICES, SearchForm, TrendingForm
from analytics.pages import (
    as_json,
    next_scheduled_runs,
    recent_rejections,
    season_years,
)
from analytics.selectors.trends import MONTHLY, NEW_LOOKBACK_DAYS, NEW_RECENT_DAYS, WEEKLY, WINDOWS
from snapshots.feeds import FEEDS
from snapshots.models import Anime
from snapshots.selectors import feed_statuses, recent_runs

SEARCH_LIMIT = 50
# The status page lists this many runs; the API has them all.
RECENT_RUNS = 20
HISTORY_CHARTS = [("rank", "Rank (lower is better)"), ("score", "Score"), ("members", "Members")]
API_URLS = {
    "top_rated": "api:top-rated",
    "genres": "api:genres",
    "seasons": "api:seasons",
    "climbers": "api:climbers",
    "fallers": "api:fallers",
    "momentum": "api:momentum",
    "new_entries": "api:new-entries",
    "streaks": "api:streaks",
}


def _api_urls(*names: str) -> dict[str, str]:
    return {name: reverse(API_URLS[name]) for name in names}


def cached_page(
    request: HttpRequest, endpoint: str, params: dict[str, Any], template: str, context: Callable[[], dict[str, Any]]
) -> HttpResponse:
    """The page as rendered once per data version and parameters.

    These pages hold no user, session or CSRF token, so every visitor gets the same bytes, and rendering
    the template was most of a warm request's time. Computing the context fills the API's own entries.
    """
    html = cached(endpoint, params, lambda: render_to_string(template, context(), request))
    return HttpResponse(html)


def dashboard(request: HttpRequest) -> HttpResponse:
    return cached_page(request, "dashboard-html", {}, "analytics/dashboard.html", _dashboard_context)


def _dashboard_context() -> dict[str, Any]:
    latest = {"feed": "top", "as_of": None}
    overview = api_cached("overview", {}, selectors.overview)
    data = {
        "top": api_cached("top-rated", {**latest, "limit": 10}, selectors.top_rated),
        "genres": api_cached("genres", {**latest, "kind": "genres"}, selectors.genre_distribution),
        "seasons": api_cached("seasons", {}, selectors.seasonal_trends),
        "season_years": season_years(),
        "api": _api_urls("top_rated", "genres", "seasons"),
    }
    fallers = {
        window: api_cached("fallers", {**latest, "limit": 5, "window": window}, selectors.rank_fallers)
        for window in WINDOWS
    }
    return {
        "overview": overview,
        "feeds_fresh": _with_staleness(overview["feeds"]),
        "top": data["top"],
        "genres": data["genres"],
        "seasons": data["seasons"],
        "trending": api_cached("trending", {**latest, "limit": 5}, selectors.trending),
        "weekly_fallers": fallers[WEEKLY],
        "monthly_fallers": fallers[MONTHLY],
        "feed_choices": FEED_CHOICES,
        "data": as_json(data),
    }


def _with_staleness(feeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Overview rows of the feeds, each flagged by the one staleness rule (`feed_statuses`)."""
    stale = {status["feed"]: status["stale"] for status in feed_statuses()}
    return [{**feed, "stale": stale.get(feed["feed"], True)} for feed in feeds]


def trending(request: HttpRequest) -> HttpResponse:
    form = TrendingForm.from_query(request.GET)
    params = form.params()
    if form.errors:
        # The page says what was wrong with the input: rendered for this request only.
        return render(request, "analytics/trending.html", _trending_context(form, params))
    # The form echoes the values as typed, so they are part of the key (only the form's own fields).
    query = {name: request.GET.getlist(name) for name in form.fields if name in request.GET}
    return cached_page(
        request,
        "trending-html",
        {**params, "query": query},
        "analytics/trending.html",
        lambda: _trending_context(form, params),
    )


def _trending_context(form: TrendingForm, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "form": form,
        "params": params,
        "tables": cached("trending-tables", params, lambda: _trending_tables(**params)),
        "data": as_json(
            {"params": params, "api": _api_urls("climbers", "fallers", "momentum", "new_entries", "streaks")}
        ),
    }


def _trending_tables(*, feed: str, window: int, limit: int, as_of: dt.date | None) -> dict[str, Any]:
    base = {"feed": feed, "as_of": as_of, "limit": limit}
    windowed = {**base, "window": window}
    return {
        "climbers": api_cached("climbers", windowed, selectors.rank_climbers),
        "fallers": api_cached("fallers", windowed, selectors.rank_fallers),
        "momentum": api_cached("momentum", {**windowed, "min_change": Decimal("0.01")}, selectors.score_momentum),
        "new_entries": api_cached("new-entries", {**base, "top": 50}, selectors.new_entries),
        "streaks": api_cached("streaks", {**base, "top": 10}, selectors.top_streaks),
    }


def anime_detail(request: HttpRequest, mal_id: int) -> HttpResponse:
    # An unknown id raises Http404 while computing, so nothing is cached for it.
    return cached_page(
        request, "anime-html", {"mal_id": mal_id}, "analytics/anime_detail.html", lambda: _anime_context(mal_id)
    )


def _anime_context(mal_id: int) -> dict[str, Any]:
    anime = get_object_or_404(Anime, mal_id=mal_id)
    detail = cached("anime", {"mal_id": mal_id}, lambda: selectors.anime_detail(anime=anime))
    history = cached("history", {"mal_id": mal_id}, lambda: selectors.anime_history(anime=anime))
    return {
        "anime": anime,
        "detail": detail,
        "history_feeds": list(history["feeds"]),
        "charts": HISTORY_CHARTS,
        "data": as_json({"history": history, "api": reverse("api:anime-history", args=[mal_id])}),
    }


def status(request: HttpRequest) -> HttpResponse:
    # Never cached: a run that is still going changes nothing the cache keys on.
    context = {
        "feeds": feed_statuses(),
        "runs": recent_runs(limit=RECENT_RUNS),
        "schedule": next_scheduled_runs(),
        "rejections": recent_rejections(limit=20),
    }
    return render(request, "analytics/status.html", context)


def about(request: HttpRequest) -> HttpResponse:
    context = {
        "feeds": FEEDS.values(),
        "windows": WINDOWS,
        "new_recent_days": NEW_RECENT_DAYS,
        "new_lookback_days": NEW_LOOKBACK_DAYS,
    }
    return render(request, "analytics/about.html", context)


def search(request: HttpRequest) -> HttpResponse:
    form = SearchForm(data=request.GET)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    matches: list[Anime] = []
    if query:
        matches = list(selectors.anime_search(q=query)[: SEARCH_LIMIT + 1])
        if len(matches) == 1:
            return redirect("analytics:anime-detail", mal_id=matches[0].mal_id)
    context = {
        "form": form,
        "query": query,
        "matches": matches[:SEARCH_LIMIT],
        "more": len(matches) > SEARCH_LIMIT,
    }
    return render(request, "analytics/search.html", context)
