"""The search page's filters (django-filter): words of any title, genres, years, airing status, score, type."""

from __future__ import annotations

from django import forms
from django.db.models import F, QuerySet
from django_filters import (
    CharFilter,
    ChoiceFilter,
    FilterSet,
    ModelMultipleChoiceFilter,
    NumberFilter,
)

from analytics.selectors.catalog import titles_matching
from snapshots.models import Anime, Genre

AIRING = [(s, s) for s in ("Currently Airing", "Finished Airing", "Not yet aired")]
SORTS = {
    "score": ("Best score", (F("score").desc(nulls_last=True), "mal_id")),
    "rank": ("MAL rank", (F("rank").asc(nulls_last=True), "mal_id")),
    "newest": ("Newest", (F("year").desc(nulls_last=True), F("members").desc(nulls_last=True), "mal_id")),
    "title": ("Title", ("title", "mal_id")),
}
TYPES = [(t, t) for t in ("TV", "Movie", "OVA", "ONA", "Special", "TV Special", "Music")]


class AnimeFilter(FilterSet):
    q = CharFilter(method="words", label="Words of the title (any language)", max_length=200)
    genre = ModelMultipleChoiceFilter(
        field_name="genres",
        queryset=Genre.objects.order_by("name"),
        conjoined=True,
        label="Genres (all of them)",
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )
    year_min = NumberFilter(field_name="year", lookup_expr="gte", label="From year", min_value=1900, max_value=2100)
    year_max = NumberFilter(field_name="year", lookup_expr="lte", label="To year", min_value=1900, max_value=2100)
    status = ChoiceFilter(choices=AIRING, label="Airing", empty_label="Any")
    score_min = NumberFilter(field_name="score", lookup_expr="gte", label="Score from", min_value=0, max_value=10)
    score_max = NumberFilter(field_name="score", lookup_expr="lte", label="Score to", min_value=0, max_value=10)
    type = ChoiceFilter(choices=TYPES, label="Type", empty_label="Any")
    sort = ChoiceFilter(
        choices=[(key, label) for key, (label, _order) in SORTS.items()],
        method="order",
        label="Sort by",
        empty_label="Most members",
    )

    class Meta:
        model = Anime
        fields: list[str] = []

    def words(self, queryset: QuerySet[Anime], name: str, value: str) -> QuerySet[Anime]:
        return titles_matching(queryset, value)

    def order(self, queryset: QuerySet[Anime], name: str, value: str) -> QuerySet[Anime]:
        return queryset.order_by(*SORTS[value][1])


def most_members_first() -> QuerySet[Anime]:
    return Anime.objects.order_by(F("members").desc(nulls_last=True), "mal_id")
