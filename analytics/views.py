"""Server-rendered pages. Each view parses its query, takes its data from the API's own endpoints where the
API has them (the same defaults, the same cache entries) or from selectors, and renders one template; the
data a page's script draws goes out once, through `json_script`. Pages take GET and HEAD only."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.messages import get_messages
from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from rest_framework.utils.encoders import JSONEncoder

from analytics import selectors
from analytics.api.base import AnalyticsApi
from analytics.api.catalog import AnimeDetailApi, AnimeHistoryApi
from analytics.api.status import OverviewApi
from analytics.api.tables import GenreDistributionApi, SeasonalTrendsApi, TopRatedApi
from analytics.api.trends import (
    NewEntriesApi,
    RankClimbersApi,
    RankFallersApi,
    ScoreMomentumApi,
    TopStreaksApi,
    TrendingApi,
)
from analytics.cache import cached
from analytics.filters import AnimeFilter, most_members_first
from analytics.forms import FEED_CHOICES, TrendingForm
from analytics.selectors.trends import MONTHLY, NEW_LOOKBACK_DAYS, NEW_RECENT_DAYS, WEEKLY, WINDOWS
from analytics.signals import search_made
from analytics.templatetags.analytics_tags import RANK_LABELS
from analytics.wire import cacheable
from snapshots.feeds import DEFAULT_FEED, FEEDS
from snapshots.models import Anime
from snapshots.selectors import feed_statuses, next_scheduled_runs, recent_rejections, recent_runs
from snapshots.services import AnimeNotOnMal, AnimeUnavailable, anime_fetch
from snapshots.validation import FIRST_YEAR, LAST_YEAR

SEARCH_LIMIT = 50
# The dashboard's "Top 10 by score".
TOP_ROWS = 10
# The status page lists this many runs; the API has them all.
RECENT_RUNS = 20
NEW_ENTRY_SPANS = {"new_recent_days": NEW_RECENT_DAYS, "new_lookback_days": NEW_LOOKBACK_DAYS}
# The title's own numbers (once per day), then its place in each feed.
HISTORY_CHARTS = [
    ("score", "Score"),
    ("ranks", "MAL rank and popularity (lower is better)"),
    ("audience", "Members and favorites"),
    ("feeds", "Feed rank in each feed (lower is better)"),
]
TRENDING_TABLES: dict[str, type[AnalyticsApi]] = {
    "climbers": RankClimbersApi,
    "fallers": RankFallersApi,
    "momentum": ScoreMomentumApi,
    "new_entries": NewEntriesApi,
    "streaks": TopStreaksApi,
}


def page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A page view: GET and HEAD only, any other method a 405.

    A page changes nothing, so it needs no CSRF check, which would otherwise answer a POST with 403
    before the method is looked at.
    """
    return csrf_exempt(require_safe(view))


def _api_urls(*endpoints: type[AnalyticsApi]) -> dict[str, str]:
    """Where a page's script asks for more: the endpoint's URL under its name."""
    return {endpoint.endpoint: reverse(f"api:{endpoint.endpoint}") for endpoint in endpoints}


def _as_json(data: Any) -> Any:
    """`data` as the API's JSON renderer writes it (decimals as numbers).

    `json_script` would write decimals as strings; the page scripts then read first-paint data and
    API answers alike.
    """
    return json.loads(json.dumps(data, cls=JSONEncoder))


def cached_page(
    request: HttpRequest, endpoint: str, params: dict[str, Any], template: str, context: Callable[[], dict[str, Any]]
) -> HttpResponse:
    """The page as rendered once per data version and parameters, for anonymous visitors.

    Their pages hold no user, session or CSRF token, so they all get the same bytes, and rendering the
    template was most of a warm request's time. Computing the context fills the API's own entries.
    The page names hashed static files, so it is kept per static release too: after a deploy that changes
    them, no visitor gets a page naming files that are gone.
    """
    if request.user.is_authenticated or get_messages(request):
        # Built for this visitor alone: it shows their name, their statuses or a message for them.
        return HttpResponse(render_to_string(template, context(), request))
    params = {**params, "static": getattr(staticfiles_storage, "manifest_hash", "")}
    html = cached(endpoint, params, lambda: render_to_string(template, context(), request))
    cacheable(request, endpoint, params, throttled=False)
    return HttpResponse(html)


@page
def dashboard(request: HttpRequest) -> HttpResponse:
    return cached_page(request, "dashboard-html", {}, "analytics/dashboard.html", _dashboard_context)


@page
def moving_now(request: HttpRequest) -> HttpResponse:
    """The dashboard's "Moving now" widget alone: its script swaps it in when a new snapshot commits."""
    return cached_page(request, "moving-now-html", {}, "analytics/_moving_now.html", _moving_context)


@page
def data_version(request: HttpRequest) -> HttpResponse:
    """The data version, polled by the dashboard while it is visible: 304 while nothing has committed."""
    version = selectors.data_version()
    etag = f'W/"{version}"'
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponse(status=304)
    else:
        response = JsonResponse({"version": version})
    response["ETag"] = etag
    response["Cache-Control"] = "no-cache"
    return response


def _moving_context() -> dict[str, Any]:
    return {"moving": cached("moving-now", {}, selectors.moving_now)}


def _dashboard_context() -> dict[str, Any]:
    data = {
        "top": TopRatedApi.answer({"limit": TOP_ROWS}),
        "genres": GenreDistributionApi.answer({}),
        "seasons": SeasonalTrendsApi.answer({}),
        "season_years": selectors.season_years(),
        "api": _api_urls(TopRatedApi, GenreDistributionApi, SeasonalTrendsApi),
        "top_table_url": reverse("analytics:top-table"),
        "top_rows": TOP_ROWS,
    }
    return {
        **_moving_context(),
        "overview": OverviewApi.answer({}),
        "top": data["top"],
        "genres": data["genres"],
        "seasons": data["seasons"],
        "years": {"first": FIRST_YEAR, "last": LAST_YEAR},
        "trending": TrendingApi.answer({}),
        "captions": {
            f"{period}_{kind}": f"{kind.capitalize()}, last {days} days"
            for period, days in (("weekly", WEEKLY), ("monthly", MONTHLY))
            for kind in ("climbers", "fallers")
        },
        "feed_choices": FEED_CHOICES,
        "data": _as_json(data),
    }


@page
def top_table(request: HttpRequest) -> HttpResponse:
    """The dashboard's top-10 table alone, for one feed: its script swaps it in when the feed changes."""
    feed = request.GET.get("feed")
    feed = feed if feed in FEEDS else DEFAULT_FEED
    return cached_page(
        request,
        "top-table-html",
        {"feed": feed},
        "analytics/_top_table.html",
        lambda: {"top": TopRatedApi.answer({"feed": feed, "limit": TOP_ROWS})},
    )


@page
def trending(request: HttpRequest) -> HttpResponse:
    form = TrendingForm.from_query(request.GET)
    params = form.params()
    if form.errors:
        # The page says what was wrong with the input: rendered for this request only.
        return render(request, "analytics/trending.html", _trending_context(form, params))
    # A valid query is drawn from its values, not from how they were typed ("2024-05-01 " or a repeated
    # parameter), so the page is cached under the values alone: junk cannot add entries.
    return cached_page(
        request,
        "trending-html",
        params,
        "analytics/trending.html",
        lambda: _trending_context(TrendingForm(initial=params), params),
    )


@page
def trending_tables(request: HttpRequest) -> HttpResponse:
    """The tables of /trending/ alone: its script swaps them in when a control changes."""
    params = TrendingForm.from_query(request.GET).params()
    return cached_page(
        request,
        "trending-tables-html",
        params,
        "analytics/_trending_tables.html",
        lambda: {"params": params, "tables": _trending_tables(params), **NEW_ENTRY_SPANS},
    )


def _trending_context(form: TrendingForm, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "form": form,
        "params": params,
        "tables": _trending_tables(params),
        **NEW_ENTRY_SPANS,
        "data": {"tables_url": reverse("analytics:trending-tables")},
    }


def _trending_tables(params: dict[str, Any]) -> dict[str, Any]:
    # Each endpoint reads the parameters it declares (new entries and streaks have no window).
    query = {name: value for name, value in params.items() if value is not None}
    return {name: endpoint.answer(query) for name, endpoint in TRENDING_TABLES.items()}


@page
def anime_detail(request: HttpRequest, mal_id: int) -> HttpResponse:
    # A signed-in person may open any MyAnimeList title: one not seen in a snapshot yet is fetched now.
    # Visitors are not let do that, so a crawler cannot spend the ETL's share of Jikan's rate limit.
    if request.user.is_authenticated and not Anime.objects.filter(mal_id=mal_id).exists():
        try:
            anime_fetch(mal_id=mal_id)
        except AnimeNotOnMal:
            return render(request, "404.html", {"reason": f"MyAnimeList has no title {mal_id}."}, status=404)
        except AnimeUnavailable:
            reason = "AnimeDash does not know this title yet, and MyAnimeList cannot be reached right now."
            unavailable = render(request, "404.html", {"reason": reason}, status=503)
            unavailable["Retry-After"] = "60"
            return unavailable
    # An unknown id raises Http404 while computing, so nothing is cached for it.
    return cached_page(
        request, "anime-html", {"mal_id": mal_id}, "analytics/anime_detail.html", lambda: _anime_context(mal_id)
    )


def _anime_context(mal_id: int) -> dict[str, Any]:
    anime = get_object_or_404(Anime, mal_id=mal_id)
    history = AnimeHistoryApi.answer({}, mal_id=mal_id)
    return {
        "anime": anime,
        "detail": AnimeDetailApi.answer({}, mal_id=mal_id),
        "history_feeds": list(history["feeds"]),
        "history_rank_by": history["rank_by"],
        "charts": HISTORY_CHARTS,
        "data": _as_json(
            {"history": history, "api": reverse("api:anime-history", args=[mal_id]), "rank_labels": RANK_LABELS}
        ),
    }


@page
def status(request: HttpRequest) -> HttpResponse:
    # Never cached: a run that is still going changes nothing the cache keys on.
    context = {
        "feeds": feed_statuses(),
        "runs": recent_runs(limit=RECENT_RUNS),
        # Beat runs beside a broker only: without one (the embedded demo) the schedule never fires.
        "scheduler": bool(settings.CELERY_BROKER_URL),
        "schedule": next_scheduled_runs(),
        "rejections": recent_rejections(limit=20),
    }
    return render(request, "analytics/status.html", context)


@page
def about(request: HttpRequest) -> HttpResponse:
    context = {
        "feeds": FEEDS.values(),
        "windows": WINDOWS,
        "season_min_volume": settings.SEASON_MIN_VOLUME,
        **NEW_ENTRY_SPANS,
    }
    return render(request, "analytics/about.html", context)


def _page_number(value: str | None) -> int:
    # "Load more" asks for page 2, 3...: a page past what makes sense is the last sensible one.
    return int(value) if value and value.isdigit() and 0 < int(value) <= 40 else 1


def _search_query(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@page
def search(request: HttpRequest) -> HttpResponse:
    """Advanced search: words of any title, genres (all of them), years, airing status, score, type, sort.
    "Load more" shows the next SEARCH_LIMIT too. A search by words alone that finds one title opens it."""
    filters = AnimeFilter(request.GET, queryset=most_members_first())
    asked = any(value for name, value in request.GET.items() if name in filters.filters)
    shown = SEARCH_LIMIT * _page_number(request.GET.get("page"))
    matches: list[Anime] = []
    if asked and filters.is_valid():
        matches = list(filters.qs.distinct()[: shown + 1])
        words_only = {name for name, value in request.GET.items() if value and name in filters.filters} == {"q"}
        if len(matches) == 1 and words_only:
            return redirect("analytics:anime-detail", mal_id=matches[0].mal_id)
        search_made.send(sender=search, request=request, query=_search_query(request))
    more_query = request.GET.copy()
    more_query["page"] = str(shown // SEARCH_LIMIT + 1)
    context = {
        "filters": filters,
        "form": filters.form,
        "asked": asked,
        "query": request.GET.get("q", "")[:200],
        "matches": matches[:shown],
        "more": len(matches) > shown,
        "more_url": f"?{more_query.urlencode()}",
    }
    return render(request, "analytics/search.html", context)
