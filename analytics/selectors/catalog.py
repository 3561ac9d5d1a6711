"""One title: search, facts, and its history: its own numbers per day, its place in every feed."""

from __future__ import annotations

import datetime as dt
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import F, Max, Q, QuerySet

from analytics.selectors.tables import anime_with_genre
from snapshots.feeds import feed_order, rank_by
from snapshots.models import ANIME_FACT_FIELDS, Anime
from snapshots.search import search_words

_FACTS = ("mal_id", *ANIME_FACT_FIELDS)
# A title's own numbers on a day: the same in every feed that has it that day.
_TITLE_NUMBERS = ("score", "rank", "popularity", "members", "favorites")
_SERIES = ("taken_on", "position", *_TITLE_NUMBERS)


def anime_search(
    *,
    q: str | None = None,
    genre: str | None = None,
    type: str | None = None,  # the public filter is called `type`
    status: str | None = None,
    year: int | None = None,
    season: str | None = None,
) -> QuerySet[Anime]:
    """Titles matching every given filter, most members first.

    `q` matches when each of its words is part of some name of the title (any variant Jikan gives),
    case, accents and punctuation ignored: both sides are normalised the same way (snapshots.search).
    """
    titles = Anime.objects.all()
    if q:
        titles = titles_matching(titles, q)
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


def titles_matching(titles: QuerySet[Anime], q: str) -> QuerySet[Anime]:
    """The titles each of whose words of `q` is part of some name of (case, accents, punctuation ignored)."""
    words = search_words(q)
    if not words:
        return titles.none()  # only punctuation: nothing to look for
    for word in words:
        # The column is already folded, so a plain LIKE: no per-row UPPER() as icontains would add.
        titles = titles.filter(search_text__contains=word)
    return titles


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
    """The title's own numbers once per day, and its place in each feed, oldest first.

    `days`: per snapshot day of the title, its score, MAL rank, popularity, members and favorites. They are
    the same in every feed that has the title that day, so they are read from one row: the first feed's in
    feed order. `feeds`: per feed, the title's feed rank (`rank_by` names the number) and position that day.
    Each point carries its change from the point before; a rank's change is previous - now (positive: it
    climbed), any other number's now - previous.

    `days` keeps the last `days` days ending at `as_of` (default: the title's newest snapshot). The
    first kept point still compares with the snapshot before it, so a window never invents a "None".
    """
    rows = anime.snapshots.all()
    if as_of is not None:
        rows = rows.filter(taken_on__lte=as_of)
    earlier: list[dict[str, Any]] = []
    if days is not None:
        end = as_of or rows.aggregate(day=Max("taken_on"))["day"] or dt.date.min
        # A window reaching back past the calendar's first day keeps every day there is.
        start = end - dt.timedelta(days=min(days - 1, (end - dt.date.min).days))
        before = dict(
            rows.filter(taken_on__lt=start)
            .values("feed")
            .annotate(day=Max("taken_on"))
            .order_by()
            .values_list("feed", "day")
        )
        earlier = _rows_on(anime, before, *_SERIES)
        rows = rows.filter(taken_on__gte=start)
    # The newest day before the window, and each feed's newest row before it: what the first points compare with.
    last_day: dict[str, Any] | None = None
    last_place: dict[str, dict[str, Any]] = {}
    for row in sorted(earlier, key=_in_order):
        if last_day is None or row["taken_on"] > last_day["taken_on"]:
            last_day = row
        last_place[row["feed"]] = row
    title_days: list[dict[str, Any]] = []
    places: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows.order_by().values("feed", *_SERIES), key=_in_order):
        if not title_days or title_days[-1]["taken_on"] != row["taken_on"]:
            title_days.append(_day_point(row, last_day))
            last_day = row
        feed = row["feed"]
        places.setdefault(feed, []).append(_place(row, last_place.get(feed), rank_by(feed)))
        last_place[feed] = row
    feeds = sorted(places, key=feed_order)
    return {
        "mal_id": anime.mal_id,
        "title": anime.title,
        "days": title_days,
        "rank_by": {feed: rank_by(feed) for feed in feeds},
        "feeds": {feed: places[feed] for feed in feeds},
    }


def _in_order(row: dict[str, Any]) -> tuple[dt.date, tuple[int, str]]:
    return row["taken_on"], feed_order(row["feed"])


def _change(now: Any, before: Any) -> Any:
    return None if now is None or before is None else now - before


def _day_point(row: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    before = previous or {}
    return {
        "taken_on": row["taken_on"],
        **{number: row[number] for number in _TITLE_NUMBERS},
        "score_change": _change(row["score"], before.get("score")),
        "rank_change": _change(before.get("rank"), row["rank"]),
        "popularity_change": _change(before.get("popularity"), row["popularity"]),
        "members_change": _change(row["members"], before.get("members")),
        "favorites_change": _change(row["favorites"], before.get("favorites")),
    }


def _place(row: dict[str, Any], previous: dict[str, Any] | None, feed_rank: str) -> dict[str, Any]:
    return {
        "taken_on": row["taken_on"],
        "feed_rank": row[feed_rank],
        "position": row["position"],
        "feed_rank_change": _change((previous or {}).get(feed_rank), row[feed_rank]),
    }
