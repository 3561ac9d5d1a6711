"""A person's stats: what they watched, how they score, and what only the rankings' history can tell them.

Every number comes from a fixed number of queries, whatever the size of the list: the person's entries with
their titles, the genres and studios of those titles, the last year of their list's events, and the top
feed's snapshots of those titles.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, Min, QuerySet
from django.db.models.functions import TruncMonth
from django.utils import timezone

from snapshots.models import Anime, Genre, Snapshot, Studio
from tracking.models import ListEntry, ListEvent, ListStatus

TOP_ROWS = 10
EARLY_TOP = 50  # an "early pick" was on the list before it entered MAL's top 50
ACTIVITY_MONTHS = 12
MIN_SCORED = 2  # a genre's mean score needs at least this many scored titles to be compared


def person_stats(*, user: User, today: dt.date | None = None) -> dict[str, Any]:
    today = today or timezone.localdate()
    entries: list[dict[str, Any]] = [
        dict(row)
        for row in ListEntry.objects.filter(user=user).values(
            "anime_id", "anime__title", "anime__type", "anime__episode_minutes", "anime__score", "status", "score",
            "progress", "created_at", "finished_on",
        )
    ]  # fmt: skip
    by_status = Counter(entry["status"] for entry in entries)
    scored = [entry["score"] for entry in entries if entry["score"] is not None]
    finished = by_status[ListStatus.COMPLETED] + by_status[ListStatus.DROPPED]
    minutes, estimated = _watch_minutes(entries)
    return {
        "total": len(entries),
        "by_status": {status: by_status[status] for status in ListStatus.values},
        "episodes_watched": sum(entry["progress"] for entry in entries),
        "watch_minutes": minutes,
        "watch_estimated_titles": estimated,
        "mean_score": _mean(scored),
        "score_distribution": {str(score): scored.count(score) for score in range(1, 11)},
        "completion_rate": _share(by_status[ListStatus.COMPLETED], finished),
        "drop_rate": _share(by_status[ListStatus.DROPPED], finished),
        **_genres_and_studios(user, entries),
        "activity": _activity(user, today),
        "early_picks": _early_picks(user, entries),
        "finished_ranks": _finished_ranks(entries),
    }


def _watch_minutes(entries: list[dict[str, Any]]) -> tuple[int, int]:
    """Episodes watched times minutes per episode; a title of unknown length counts the median of its type
    (of every title AnimeDash knows). Returns (minutes, how many titles were estimated)."""
    unknown_types = {e["anime__type"] for e in entries if e["progress"] and not e["anime__episode_minutes"]}
    medians: dict[str, float] = {}
    if unknown_types:
        lengths: dict[str, list[int]] = defaultdict(list)
        known = Anime.objects.filter(type__in=unknown_types, episode_minutes__isnull=False)
        for kind, known_length in known.values_list("type", "episode_minutes"):
            if known_length:
                lengths[kind].append(known_length)
        medians = {kind: statistics.median(values) for kind, values in lengths.items()}
    minutes, estimated = 0.0, 0
    for entry in entries:
        if not entry["progress"]:
            continue
        length: float | None = entry["anime__episode_minutes"] or None
        if not length:
            length = medians.get(entry["anime__type"])
            if length is None:
                continue  # nothing to estimate from: not counted
            estimated += 1
        minutes += entry["progress"] * length
    return round(minutes), estimated


def _listed(user: User) -> QuerySet[ListEntry, Any]:
    # A subquery, not a list of ids: thousands of parameters cost more than the join.
    return ListEntry.objects.filter(user=user).values("anime_id")


def _genres_and_studios(user: User, entries: list[dict[str, Any]]) -> dict[str, Any]:
    by_id = {entry["anime_id"]: entry for entry in entries}
    genre_links = Anime.genres.through.objects.filter(anime_id__in=_listed(user)).values_list("anime_id", "genre_id")
    studio_links = Anime.studios.through.objects.filter(anime_id__in=_listed(user)).values_list("anime_id", "studio_id")
    genres, studios = defaultdict(list), defaultdict(list)
    for anime_id, genre_id in genre_links:
        genres[genre_id].append(by_id[anime_id])
    for anime_id, studio_id in studio_links:
        studios[studio_id].append(by_id[anime_id])
    genre_names = dict(Genre.objects.filter(mal_id__in=genres).values_list("mal_id", "name"))
    studio_names = dict(Studio.objects.filter(mal_id__in=studios).values_list("mal_id", "name"))

    def rows(groups: dict[int, list[dict[str, Any]]], names: dict[int, str]) -> list[dict[str, Any]]:
        ranked = sorted(groups.items(), key=lambda item: (-len(item[1]), names.get(item[0], "")))
        return [
            {"name": names.get(key, str(key)), "count": len(group), "mean_score": _mean(_scores(group, "score"))}
            for key, group in ranked[:TOP_ROWS]
        ]

    crowd: list[dict[str, Any]] = []
    for genre_id, group in genres.items():
        both = [(e["score"], float(e["anime__score"])) for e in group if e["score"] and e["anime__score"]]
        if len(both) >= MIN_SCORED:
            yours, mal = _mean([a for a, _ in both]), _mean([b for _, b in both])
            crowd.append({"genre": genre_names.get(genre_id, str(genre_id)), "titles": len(both), "your_mean": yours,
                          "mal_mean": mal, "difference": round((yours or 0) - (mal or 0), 2)})  # fmt: skip
    crowd.sort(key=lambda row: (-abs(row["difference"]), row["genre"]))
    return {
        "top_genres": rows(genres, genre_names),
        "top_studios": rows(studios, studio_names),
        "taste_vs_crowd": crowd,
    }


def _activity(user: User, today: dt.date) -> list[dict[str, Any]]:
    """Events and episodes watched per month, the last ACTIVITY_MONTHS months, oldest first."""
    months = [_month_back(today, back) for back in range(ACTIVITY_MONTHS - 1, -1, -1)]
    since = dt.datetime.combine(dt.date.fromisoformat(f"{months[0]}-01"), dt.time(), tzinfo=dt.UTC)
    recent = ListEvent.objects.filter(user=user, at__gte=since)
    events = Counter(
        {
            month.strftime("%Y-%m"): n
            for month, n in recent.annotate(month=TruncMonth("at")).values_list("month").annotate(n=Count("pk"))
        }
    )
    episodes: Counter[str] = Counter()
    for at, before, after in recent.filter(kind=ListEvent.Kind.PROGRESS).values_list("at", "from_value", "to_value"):
        if before.isdigit() and after.isdigit():
            episodes[at.strftime("%Y-%m")] += max(0, int(after) - int(before))
    return [{"month": month, "events": events[month], "episodes": episodes[month]} for month in months]


def _early_picks(user: User, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Titles the person had on their list before they first entered MAL's top 50."""
    entered = dict(
        Snapshot.objects.filter(feed="top", position__lte=EARLY_TOP, anime_id__in=_listed(user))
        .values("anime_id")
        .annotate(first=Min("taken_on"))
        .values_list("anime_id", "first")
    )
    picks = [
        {"mal_id": e["anime_id"], "title": e["anime__title"], "added_on": e["created_at"].date(),
         "entered_top_50_on": entered[e["anime_id"]]}
        for e in entries
        if e["anime_id"] in entered and e["created_at"].date() < entered[e["anime_id"]]
    ]  # fmt: skip
    return sorted(picks, key=lambda pick: pick["entered_top_50_on"] - pick["added_on"], reverse=True)


def _finished_ranks(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each completed title's MAL rank on the day the person finished it (when a snapshot has that day)."""
    done = [e for e in entries if e["status"] == ListStatus.COMPLETED and e["finished_on"]]
    ranks = {
        (anime_id, day): rank
        for anime_id, day, rank in Snapshot.objects.filter(
            feed="top", anime_id__in=[e["anime_id"] for e in done], taken_on__in={e["finished_on"] for e in done}
        ).values_list("anime_id", "taken_on", "rank")
    }
    rows = [
        {"mal_id": e["anime_id"], "title": e["anime__title"], "finished_on": e["finished_on"],
         "mal_rank": ranks[(e["anime_id"], e["finished_on"])]}
        for e in done
        if (e["anime_id"], e["finished_on"]) in ranks
    ]  # fmt: skip
    return sorted(rows, key=lambda row: row["finished_on"], reverse=True)


def _scores(group: list[dict[str, Any]], field: str) -> list[float]:
    return [float(entry[field]) for entry in group if entry[field] is not None]


def _mean(values: list[float] | list[int]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _month_back(today: dt.date, back: int) -> str:
    month = today.year * 12 + today.month - 1 - back
    return f"{month // 12:04d}-{month % 12 + 1:02d}"
