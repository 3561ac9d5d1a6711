"""Reads of people's lists that pages and the API share."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, F, QuerySet

from tracking.models import ListEntry, ListStatus

# Sort keys a person may choose, each with a stable tie-break on the title.
SORTS = {
    "updated": (F("updated_at").desc(), "anime__title"),
    "title": ("anime__title",),
    "score": (F("score").desc(nulls_last=True), "anime__title"),
    "progress": (F("progress").desc(), "anime__title"),
    "rank": (F("anime__rank").asc(nulls_last=True), "anime__title"),
}


def list_entries(*, user: User, status: str = "", sort: str = "updated") -> QuerySet[ListEntry]:
    """The person's entries with their titles, of one status (all when empty), in the chosen order."""
    entries = ListEntry.objects.filter(user=user).select_related("anime")
    if status:
        entries = entries.filter(status=status)
    return entries.order_by(*SORTS[sort])


def status_counts(*, user: User) -> dict[str, int]:
    """How many titles the person has in each status (every status, zero included), and "all"."""
    counts: dict[str, int] = dict(ListEntry.objects.filter(user=user).values_list("status").annotate(n=Count("pk")))
    return {"all": sum(counts.values()), **{status: counts.get(status, 0) for status in ListStatus.values}}


def statuses_of(*, user: User | AnonymousUser, anime_ids: Iterable[int]) -> dict[int, ListEntry]:
    """The person's entries for these titles, by title id: one query for a whole page of titles."""
    if not user.is_authenticated:
        return {}
    return {entry.anime_id: entry for entry in ListEntry.objects.filter(user=user, anime_id__in=list(anime_ids))}
