"""One feed's day as a table (top rated, genres) and the catalogue by season."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, F, Max, Min, Q, QuerySet, Sum
from django.utils import timezone

from analytics.selectors.envelope import Envelope, envelope, no_data, resolve_day
from snapshots.models import Anime, Genre, Snapshot
from snapshots.validation import SEASONS

GENRE_KINDS: dict[str, tuple[str, ...]] = {
    # Explicit genres (Ecchi, Hentai...) are genres that MAL lists separately.
    "genres": (Genre.Kind.GENRE, Genre.Kind.EXPLICIT),
    "themes": (Genre.Kind.THEME,),
    "demographics": (Genre.Kind.DEMOGRAPHIC,),
}
SEASON_SPAN_YEARS = 5


def rounded(value: Decimal, places: int) -> float:
    """Round half up (not to even, not through binary floats) so both databases give the same digits."""
    return float(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def anime_with_genre(genre: str) -> QuerySet[Anime, Any]:
    """The ids of titles with a genre given by MAL id (digits) or by name, case-insensitive."""
    # ASCII digits only: str.isdigit() also accepts "²" or "①", which int() refuses. Nine digits fit
    # every integer column; a longer number is no genre's id, so it is looked up (in vain) as a name.
    is_id = genre.isascii() and genre.isdigit() and len(genre) <= 9
    match = Q(genres__mal_id=int(genre)) if is_id else Q(genres__name__iexact=genre)
    # Used as a subquery (`mal_id__in=`), so a title matching twice is still listed once.
    return Anime.objects.filter(match).values("mal_id")


def top_rated(
    *,
    feed: str,
    as_of: dt.date | None,
    limit: int = 10,
    min_score: Decimal | None = None,
    genre: str | None = None,
    type: str | None = None,  # the public filter is called `type`
) -> Envelope:
    """The feed at D by score (unscored titles last), then by position."""
    day = resolve_day(feed=feed, as_of=as_of)
    if day is None:
        return no_data(feed=feed, as_of=as_of, needed_days=1)
    rows = Snapshot.objects.filter(feed=feed, taken_on=day)
    if min_score is not None:
        rows = rows.filter(score__gte=min_score)
    if genre:
        rows = rows.filter(anime_id__in=anime_with_genre(genre))
    if type:
        rows = rows.filter(anime__type__iexact=type)
    results = rows.order_by(F("score").desc(nulls_last=True), "position", "anime_id").values(
        "rank",
        "position",
        "score",
        "members",
        "popularity",
        mal_id=F("anime_id"),
        title=F("anime__title"),
        type=F("anime__type"),
        image_url=F("anime__image_url"),
    )[:limit]
    return envelope(feed=feed, as_of=as_of, day=day, results=[_ordered(row, _TOP_KEYS) for row in results])


_TOP_KEYS = ("mal_id", "title", "type", "rank", "position", "score", "members", "popularity", "image_url")


def _ordered(row: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    # Keys in the documented order, so CSV columns and JSON read the same way.
    return {key: row[key] for key in keys}


def genre_distribution(*, feed: str, as_of: dt.date | None, kind: str = "genres") -> Envelope:
    """Per genre of `kind` at D: titles having it, coverage % of the day's titles, frequency % of mentions."""
    if kind not in GENRE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(GENRE_KINDS)}, not {kind!r}")
    day = resolve_day(feed=feed, as_of=as_of)
    if day is None:
        return no_data(feed=feed, as_of=as_of, needed_days=1)
    in_day = Snapshot.objects.filter(feed=feed, taken_on=day)
    titles = in_day.count()
    genres = {g.mal_id: g for g in Genre.objects.filter(kind__in=GENRE_KINDS[kind])}
    # Counted by genre id alone, named afterwards: grouping the day's tens of thousands of links by
    # their genre's name and kind as well would cost a quarter more at the whole catalogue.
    links = (
        Anime.genres.through.objects.filter(anime_id__in=in_day.values("anime_id"), genre_id__in=list(genres))
        .values("genre_id")
        .annotate(count=Count("anime_id"))
        .order_by()
    )
    counts = {row["genre_id"]: row["count"] for row in links}
    mentions = sum(counts.values())
    results = [
        {
            "mal_id": genre_id,
            "name": genres[genre_id].name,
            "kind": genres[genre_id].kind,
            "count": count,
            "coverage": rounded(Decimal(count * 100) / titles, 2),
            "frequency": rounded(Decimal(count * 100) / mentions, 2),
        }
        for genre_id, count in counts.items()
    ]
    results.sort(key=lambda r: (-r["count"], r["name"], r["mal_id"]))
    return envelope(feed=feed, as_of=as_of, day=day, results=results)


def seasonal_trends(
    *,
    from_year: int | None = None,
    to_year: int | None = None,
    as_of: dt.date | None = None,
    min_volume: int | None = None,
) -> dict[str, Any]:
    """Per (year, season) over every known title: volume, mean score/members/popularity, total favorites.

    Defaults to the five years ending in the current year of `as_of` (or today); with `as_of`, only
    titles first seen by then count, so a past day can be replayed. Seasons with fewer than `min_volume`
    titles (default: the SEASON_MIN_VOLUME setting) are left out, and counted in `hidden_small_seasons`.
    """
    if min_volume is None:
        min_volume = settings.SEASON_MIN_VOLUME
    this_year = (as_of or timezone.now().date()).year
    if to_year is None:
        to_year = this_year if from_year is None else max(this_year, from_year)
    if from_year is None:
        from_year = to_year - SEASON_SPAN_YEARS + 1
    titles = Anime.objects.filter(year__range=(from_year, to_year)).exclude(season="")
    if as_of is not None:
        titles = titles.filter(first_seen__lte=as_of)
    # Sums and counts, not AVG: SQLite averages in binary floats, so means are divided here, exactly.
    groups = (
        titles.values("year", "season")
        .annotate(
            volume=Count("mal_id"),
            scored=Count("score"),
            score_sum=Sum("score"),
            with_members=Count("members"),
            members_sum=Sum("members"),
            with_popularity=Count("popularity"),
            popularity_sum=Sum("popularity"),
            total_favorites=Sum("favorites"),
        )
        .order_by()
    )
    seasons = [_season_row(group) for group in groups]
    results = [season for season in seasons if season["volume"] >= min_volume]
    results.sort(key=lambda r: (r["year"], _season_order(r["season"]), r["season"]))
    return {
        "from_year": from_year,
        "to_year": to_year,
        "min_volume": min_volume,
        "hidden_small_seasons": len(seasons) - len(results),
        "results": results,
    }


def _season_order(season: str) -> int:
    return SEASONS.index(season.lower()) if season.lower() in SEASONS else len(SEASONS)


def _mean(total: Decimal | int | None, count: int, places: int) -> float | None:
    if not count or total is None:
        return None
    return rounded(Decimal(total) / count, places)


def _cents(total: Decimal | None) -> Decimal | None:
    # SQLite sums decimals as floats (16.499999999999996); a sum of 2-place scores has 2 places.
    return None if total is None else Decimal(total).quantize(Decimal("0.01"))


def _season_row(group: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "year": group["year"],
        "season": group["season"],
        "volume": group["volume"],
        "mean_score": _mean(_cents(group["score_sum"]), group["scored"], 2),
        "mean_members": _mean(group["members_sum"], group["with_members"], 1),
        "mean_popularity": _mean(group["popularity_sum"], group["with_popularity"], 1),
        "total_favorites": group["total_favorites"] or 0,
    }


def season_years() -> dict[str, int | None]:
    """The first and last year any known title aired in a season: the bounds of a custom range."""
    span = Anime.objects.exclude(season="").aggregate(first=Min("year"), last=Max("year"))
    return {"first": span["first"], "last": span["last"]}
