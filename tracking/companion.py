"""The companion: a cat whose mood follows the last 14 days of a person's list, never their absence.

`companion_mood` and `companion_suggestion` are pure functions of what they are given (events, candidates,
today), so every rule is tested without a database; `companion_for` gathers their inputs for a person.
The cat never scolds and keeps no streak to lose: a long pause makes it nap, and it greets the person when
they come back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Count
from django.utils import timezone

from analytics.selectors import new_entries, rank_climbers
from snapshots.models import Anime, Genre
from tracking.models import ListEntry, ListEvent, ListStatus, Profile

WINDOW_DAYS = 14
EXCITED_EPISODES = 3  # episodes in one day that make the cat excited
HAPPY_WITHIN_DAYS = 3
NAP_AFTER_DAYS = 7


@dataclass(frozen=True)
class Event:
    """One change of the person's list, as the companion sees it (a ListEvent)."""

    on: dt.date
    kind: str  # added, status, score, progress, removed
    from_value: str = ""
    to_value: str = ""


@dataclass(frozen=True)
class Mood:
    mood: str  # excited, happy, bored, neutral
    reason: str
    napping: bool = False
    greeting: str = ""


@dataclass(frozen=True)
class Candidate:
    """Something the cat could suggest, drawn from real data by the caller."""

    kind: str  # climbing (a planned title moving up), next_episode, new_in_genre
    mal_id: int
    title: str
    detail: str


@dataclass(frozen=True)
class Suggestion:
    kind: str
    mal_id: int
    text: str


def companion_mood(events: Iterable[Event], today: dt.date) -> Mood:
    """The cat's mood from the events of the last WINDOW_DAYS days (future ones are ignored). The one event
    before them that the caller passes too, if any, tells a return after a long pause from a first visit."""
    past = [e for e in events if e.on <= today]
    recent = [e for e in past if (today - e.on).days < WINDOW_DAYS]
    today_events = [e for e in recent if e.on == today]
    finished = [e for e in today_events if e.kind == "status" and e.to_value == "completed"]
    episodes = sum(_episodes(e) for e in today_events)
    earlier = max((e.on for e in past if e.on < today), default=None)
    back_after_pause = bool(today_events) and earlier is not None and (today - earlier).days >= NAP_AFTER_DAYS
    greeting = "Welcome back! The cat woke up as soon as you came in." if back_after_pause else ""
    if finished:
        return Mood("excited", "You finished a title today.", greeting=greeting)
    if episodes >= EXCITED_EPISODES:
        return Mood("excited", f"You watched {episodes} episodes today.", greeting=greeting)
    last = max((e.on for e in recent), default=None)
    if last is None:
        return Mood("bored", "Nothing on your list has moved lately, so the cat is having a nap.", napping=True)
    quiet = (today - last).days
    if quiet <= HAPPY_WITHIN_DAYS:
        when = "today" if quiet == 0 else "yesterday" if quiet == 1 else f"{quiet} days ago"
        return Mood("happy", f"You were watching {when}.", greeting=greeting)
    if quiet >= NAP_AFTER_DAYS:
        return Mood("bored", f"{quiet} quiet days: the cat is having a nap.", napping=True)
    return Mood("neutral", f"Your list last moved {quiet} days ago.")


def companion_suggestion(
    candidates: Sequence[Candidate], today: dt.date, dismissed_on: dt.date | None
) -> Suggestion | None:
    """At most one suggestion a day: none once today's was dismissed. The day picks among the candidates, so
    the same suggestion stays all day and tomorrow may bring another."""
    if not candidates or dismissed_on == today:
        return None
    ordered = sorted(candidates, key=lambda c: (_KIND_ORDER.get(c.kind, 9), c.mal_id))
    chosen = ordered[today.toordinal() % len(ordered)]
    return Suggestion(chosen.kind, chosen.mal_id, _TEXT[chosen.kind].format(title=chosen.title, detail=chosen.detail))


_KIND_ORDER = {"next_episode": 0, "climbing": 1, "new_in_genre": 2}
_TEXT = {
    "next_episode": "Episode {detail} of {title} is next.",
    "climbing": "{title}, on your plan-to-watch list, is climbing: {detail}.",
    "new_in_genre": "{title} just entered the top 50, in {detail}, your favourite genre.",
}


def _episodes(event: Event) -> int:
    if event.kind != "progress" or not (event.from_value.isdigit() and event.to_value.isdigit()):
        return 0
    return max(0, int(event.to_value) - int(event.from_value))


def companion_for(*, user: Any, today: dt.date | None = None) -> dict[str, Any] | None:
    """The cat for this person today (its mood and at most one suggestion), or None when they hid it."""
    today = today or timezone.localdate()
    profile = Profile.objects.filter(user=user).first()
    if profile is not None and not profile.companion_shown:
        return None
    since = today - dt.timedelta(days=WINDOW_DAYS - 1)
    mine = ListEvent.objects.filter(user=user)
    rows = list(mine.filter(at__date__gte=since).values_list("at", "kind", "from_value", "to_value"))
    before = mine.filter(at__date__lt=since).order_by("-at").values_list("at", "kind", "from_value", "to_value")[:1]
    events = [Event(at.date(), kind, old, new) for at, kind, old, new in [*rows, *before]]
    entries = ListEntry.objects.filter(user=user).select_related("anime")
    candidates = [
        Candidate("next_episode", e.anime_id, e.anime.title, str(e.progress + 1))
        for e in entries.filter(status=ListStatus.WATCHING).order_by("-updated_at")[:3]
        if not e.anime.episodes or e.progress < e.anime.episodes
    ]
    planned = set(entries.filter(status=ListStatus.PLAN_TO_WATCH).values_list("anime_id", flat=True))
    if planned:
        climbers = rank_climbers(feed="top", window=7, as_of=None, limit=100)["results"]
        candidates += [
            Candidate("climbing", row["mal_id"], row["title"], f"up {row['change']} places this week")
            for row in climbers
            if row["mal_id"] in planned
        ][:3]
    favourite = _favourite_genre(user)
    if favourite is not None:
        listed = set(entries.values_list("anime_id", flat=True))
        fresh = [row for row in new_entries(feed="top", as_of=None, limit=50)["results"] if row["mal_id"] not in listed]
        in_genre = set(
            Anime.genres.through.objects.filter(
                anime_id__in=[row["mal_id"] for row in fresh], genre_id=favourite[0]
            ).values_list("anime_id", flat=True)
        )
        candidates += [
            Candidate("new_in_genre", r["mal_id"], r["title"], favourite[1]) for r in fresh if r["mal_id"] in in_genre
        ][:3]
    dismissed = profile.suggestion_dismissed_on if profile else None
    return {"mood": companion_mood(events, today), "suggestion": companion_suggestion(candidates, today, dismissed)}


def _favourite_genre(user: Any) -> tuple[int, str] | None:
    """The genre most of the person's titles have, as (id, name)."""

    return (
        Genre.objects.filter(anime__list_entries__user=user)
        .annotate(n=Count("anime__list_entries"))
        .order_by("-n", "name")
        .values_list("mal_id", "name")
        .first()
    )
