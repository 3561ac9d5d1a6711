"""The analytics API's endpoints and the requests the benchmarks and the load test make of them.

One list for `manage.py bench_api` (which times the i-th request of each, rotating feeds, days, titles and
filters) and `manage.py loadtest` (which drives the first request of each, the default page a visitor asks
for). URLs come from the `api` namespace of the URLconf, so a moved URL moves here too; a test fails when the
namespace and this list stop naming the same endpoints.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.urls import URLPattern, get_resolver, reverse

from analytics.selectors.tables import GENRE_KINDS
from analytics.selectors.trends import MONTHLY, WEEKLY
from snapshots.feeds import FEEDS

Params = dict[str, Any]
FEED_NAMES = list(FEEDS)
GENRE_KIND_NAMES = list(GENRE_KINDS)


@dataclass(frozen=True)
class Context:
    """What a history offers the requests to ask for.

    The first request of each endpoint (i = 0) uses only the first title and the first word.
    """

    days: Sequence[dt.date]  # oldest first
    mal_ids: Sequence[int]  # best ranked first
    words: Sequence[str]  # search terms

    def feed_day(self, i: int) -> Params:
        """The i-th request's feed and day: i = 0 is the default page; others rotate over the feeds and the last week.

        Rotating days keeps the database from answering the same rows every time, and the last week is what
        people look at (weekly windows always find their baseline there).
        """
        if i == 0:
            return {}
        back = i % 7
        params: Params = {"feed": FEED_NAMES[i % len(FEED_NAMES)]}
        if back:
            params["as_of"] = self.days[-1 - back].isoformat()
        return params

    def as_of(self, i: int) -> Params:
        return {key: value for key, value in self.feed_day(i).items() if key == "as_of"}

    def title_id(self, i: int) -> int:
        # A stride through the ranking visits popular and obscure titles alike.
        return self.mal_ids[(i * 97) % len(self.mal_ids)]

    def word(self, i: int) -> str:
        return self.words[i % len(self.words)]


def _no_params(i: int, ctx: Context) -> Params:
    return {}


@dataclass(frozen=True)
class Endpoint:
    """One typical request of an `api` URL, named in reports by its route and fixed parameters."""

    url_name: str  # in the `api` namespace
    fixed: Mapping[str, Any] = field(default_factory=dict)  # sent every time; tell two requests of one URL apart
    rotating: Callable[[int, Context], Params] = _no_params  # the i-th request's other parameters
    title: bool = False  # the URL takes a title's mal_id
    live: bool = False  # answered afresh every time (never kept): its warm time is its cold time

    @property
    def label(self) -> str:
        """The route below the API root, a path parameter shown as <id>, and the fixed parameters."""
        route = re.sub(r"<(?:\w+:)?\w+>", "<id>", api_routes()[self.url_name])
        return route + (f"?{urlencode(self.fixed)}" if self.fixed else "")

    def url(self, *, ctx: Context, i: int = 0) -> str:
        kwargs = {"mal_id": ctx.title_id(i)} if self.title else None
        params = {**self.rotating(i, ctx), **self.fixed}
        return reverse(f"api:{self.url_name}", kwargs=kwargs) + (f"?{urlencode(params)}" if params else "")


def api_routes() -> dict[str, str]:
    """Every URL name of the `api` namespace but its root, with its route below the API root."""
    _, api = get_resolver().namespace_dict["api"]
    return {
        p.name: str(p.pattern) for p in api.url_patterns if isinstance(p, URLPattern) and p.name and p.name != "root"
    }


ENDPOINTS = (
    Endpoint("overview", rotating=lambda i, c: c.as_of(i)),
    Endpoint("top-rated", rotating=lambda i, c: {**c.feed_day(i), **({"genre": "Action"} if i % 3 == 2 else {})}),
    Endpoint("genres", rotating=lambda i, c: {**c.feed_day(i), "kind": GENRE_KIND_NAMES[i % len(GENRE_KIND_NAMES)]}),
    Endpoint("seasons", rotating=lambda i, c: c.as_of(i)),
    Endpoint("trending", rotating=lambda i, c: c.feed_day(i)),
    Endpoint("climbers", fixed={"window": WEEKLY}, rotating=lambda i, c: c.feed_day(i)),
    Endpoint("climbers", fixed={"window": MONTHLY}, rotating=lambda i, c: c.feed_day(i)),
    Endpoint("fallers", rotating=lambda i, c: c.feed_day(i)),
    Endpoint("momentum", rotating=lambda i, c: c.feed_day(i)),
    Endpoint("new-entries", rotating=lambda i, c: c.feed_day(i)),
    Endpoint("streaks", rotating=lambda i, c: c.feed_day(i)),
    Endpoint("anime-search", rotating=lambda i, c: {"q": c.word(i)}),
    Endpoint("anime-detail", title=True),
    Endpoint("anime-history", title=True),
    Endpoint("anime-history", fixed={"days": 30}, title=True),
    Endpoint("feeds"),
    # Rotating the feed filter; the first page, since a small history may have only one.
    Endpoint("etl-runs", rotating=lambda i, c: {"feed": FEED_NAMES[i % len(FEED_NAMES)]} if i else {}, live=True),
)


def typical_urls(*, ctx: Context) -> list[str]:
    """The first request of every endpoint: each URL's default page, as a visitor first asks for it."""
    return [endpoint.url(ctx=ctx) for endpoint in ENDPOINTS]
