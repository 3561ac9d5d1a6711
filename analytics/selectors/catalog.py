"""One title: search, facts, and its history in every feed."""

from __future__ import annotations

import datetime as dt
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import F, Max, Q, QuerySet

from analytics.selectors.tables import anime_with_genre
from snapshots.feeds import feed_order
from snapshots.models import ANIME_FACT_FIELDS, Anime

_FACTS = ("mal_id", *ANIME_FACT_FIELDS)
_SERIES = ("taken_on", "position", "rank", "score", "members", "popularity", "favorites")


def anime_search(
    *,
    q: str | None = None,
    genre: str | None = None,
    type: str | None = None,  # the public filter is called `type`
    status: str | None = None,
    year: int | None = None,
    season: str | None = None,
) -> QuerySet[Anime]:
    """Titles matching every given filter, most members first."""
    titles = Anime.objects.all()
    if q:
        titles = titles.filter(Q(title__icontains=q) | Q(title_english__icontains=q))
    if genre:
        titles = titles.filter(mal_id__in=anime_with_genre(genre))
    if type:
        titles = titles.filter(type__iexact=type)
    if status:
        titles = titles.filter(status__iexact=status)
    if year is not None:
        titles = titles.filter(year=year)
    if season:
        titles = titles.filter(season__iexact=season)
    return titles.order_by(F("members").desc(nulls_last=True), "mal_id")


def _rows_on(anime: Anime, days: dict[str, dt.date], *fields: str) -> list[dict[str, Any]]:
    """The title's rows on one given day per feed, in one query."""
    if not days:
        return []
    match = reduce(or_, (Q(feed=feed, taken_on=day) for feed, day in days.items()))
    return list(anime.snapshots.filter(match).values("feed", *fields))


def anime_detail(*, anime: Anime) -> dict[str, Any]:
    """The title's facts, genres and studios, and its latest row in each feed."""
    facts: dict[str, Any] = {field: getattr(anime, field) for field in _FACTS}
    facts["genres"] = list(anime.genres.order_by("name", "mal_id").values("mal_id", "name", "kind"))
    facts["studios"] = list(anime.studios.order_by("name", "mal_id").values("mal_id", "name"))
    facts["first_seen"] = anime.first_seen
    facts["last_seen"] = anime.last_seen
    latest = dict(anime.snapshots.values("feed").annotate(day=Max("taken_on")).order_by().values_list("feed", "day"))
    feeds = _rows_on(anime, latest, "taken_on", "position", "rank", "score")
    facts["feeds"] = sorted(feeds, key=lambda row: feed_order(row["feed"]))
    return facts


def anime_history(*, anime: Anime, days: int | None = None, as_of: dt.date | None = None) -> dict[str, Any]:
    """The title's series per feed, oldest first, each point with its change from the previous point.

    `days` keeps the last `days` days ending at `as_of` (default: the title's newest snapshot). The
    first kept point still compares with the snapshot before it, so a window never invents a "None".
    rank_change is positive when the title climbed (previous rank - rank).
    """
    rows = anime.snapshots.all()
    if as_of is not None:
        rows = rows.filter(taken_on__lte=as_of)
    previous: dict[str, dict[str, Any]] = {}
    if days is not None:
        end = as_of or rows.aggregate(day=Max("taken_on"))["day"] or dt.date.min
        start = end - dt.timedelta(days=days - 1)
        before = dict(
            rows.filter(taken_on__lt=start)
            .values("feed")
            .annotate(day=Max("taken_on"))
            .order_by()
            .values_list("feed", "day")
        )
        previous = {row["feed"]: row for row in _rows_on(anime, before, *_SERIES)}
        rows = rows.filter(taken_on__gte=start)
    series: dict[str, list[dict[str, Any]]] = {}
    for row in rows.order_by("taken_on").values("feed", *_SERIES):
        feed = row.pop("feed")
        series.setdefault(feed, []).append(_with_changes(row, previous.get(feed)))
        previous[feed] = row
    ordered = {feed: series[feed] for feed in sorted(series, key=feed_order)}
    return {"mal_id": anime.mal_id, "title": anime.title, "feeds": ordered}


def _change(now: Any, before: Any) -> Any:
    return None if now is None or before is None else now - before


def _with_changes(row: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    before = previous or {}
    return {
        **row,
        "rank_change": _change(before.get("rank"), row["rank"]),
        "score_change": _change(row["score"], before.get("score")),
        "members_change": _change(row["members"], before.get("members")),
    }
