from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from snapshots import services
from snapshots.models import Anime, DataEdit, EtlRun, Genre, RawPage, Rejection, Snapshot, SnapshotDay, Studio


class ReadOnlyAdminMixin:
    """Runs and what they recorded are history: visible, never edited by hand."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class RecordsEditsMixin:
    """Saves and deletes here change what pages and the API show: each is recorded as a DataEdit (in
    the admin's transaction), which moves the data version, so every process drops its cached answers."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)  # type: ignore[misc]
        services.data_edit_create(what=f"{'changed' if change else 'added'} {_name(obj)} {obj.pk}: {obj}")

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        what = f"deleted {_name(obj)} {obj.pk}: {obj}"
        super().delete_model(request, obj)  # type: ignore[misc]
        services.data_edit_create(what=what)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        what = f"deleted {queryset.count()} {queryset.model._meta.model_name}(s)"
        super().delete_queryset(request, queryset)  # type: ignore[misc]
        services.data_edit_create(what=what)


def _name(obj: Model) -> str:
    return obj._meta.model_name or type(obj).__name__


class RejectionInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Rejection
    fields = readonly_fields = ("page", "mal_id", "field", "reason", "value")
    extra = 0
    show_change_link = False


class RawPageInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = RawPage
    fields = readonly_fields = ("page", "url", "http_status", "has_next_page", "fetched_at")
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[RawPage]:
        # A body is about 130 KB: a run's page list must not load them.
        return super().get_queryset(request).defer("body")


@admin.register(EtlRun)
class EtlRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "feed",
        "taken_on",
        "status",
        "trigger",
        "started_at",
        "duration",
        "pages",
        "requests",
        "items_loaded",
        "items_rejected",
        "items_duplicate",
    ]
    list_filter = ["status", "feed", "trigger", "taken_on"]
    search_fields = ["feed", "error"]
    date_hierarchy = "started_at"
    inlines = [RejectionInline, RawPageInline]

    @admin.display(description="duration")
    def duration(self, run: EtlRun) -> str:
        seconds = run.duration_seconds
        return "—" if seconds is None else f"{seconds:.1f} s"


@admin.register(Rejection)
class RejectionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "run", "page", "mal_id", "field", "reason"]
    list_filter = ["field", "run__feed"]
    search_fields = ["reason", "value", "=mal_id"]
    list_select_related = ["run"]


@admin.register(RawPage)
class RawPageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "run", "page", "http_status", "has_next_page", "fetched_at", "url"]
    list_filter = ["run__feed", "http_status"]
    search_fields = ["url"]
    list_select_related = ["run"]
    fields = readonly_fields = ("run", "page", "url", "http_status", "has_next_page", "fetched_at", "indented_body")

    @admin.display(description="body")
    def indented_body(self, raw: RawPage) -> str:
        # Stored exactly as received (one long line); indented here only to be read.
        try:
            text = json.dumps(json.loads(raw.body), indent=2, ensure_ascii=False)
        except ValueError:
            text = raw.body
        return format_html("<pre>{}</pre>", text)

    def get_queryset(self, request: HttpRequest) -> QuerySet[RawPage]:
        # Bodies (about 130 KB each) stay out of the list; a page's own view loads its one on access.
        return super().get_queryset(request).defer("body")


@admin.register(Anime)
class AnimeAdmin(RecordsEditsMixin, admin.ModelAdmin):
    list_display = ["mal_id", "title", "type", "year", "season", "score", "rank", "popularity", "members", "last_seen"]
    list_filter = ["type", "status", "season", "airing", "genres__kind", "genres"]
    search_fields = ["title", "title_english", "title_japanese", "search_text", "=mal_id"]
    filter_horizontal = ["genres", "studios"]
    readonly_fields = ["first_seen", "last_seen"]


@admin.register(Snapshot)
class SnapshotAdmin(RecordsEditsMixin, admin.ModelAdmin):
    list_display = ["taken_on", "feed", "position", "anime", "rank", "score", "members", "run"]
    list_filter = ["feed", "taken_on"]
    search_fields = ["anime__title", "=anime__mal_id"]
    raw_id_fields = ["anime", "run"]
    list_select_related = ["anime", "run"]
    date_hierarchy = "taken_on"


@admin.register(SnapshotDay)
class SnapshotDayAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["taken_on", "feed", "rows", "run"]
    list_filter = ["feed"]
    date_hierarchy = "taken_on"
    list_select_related = ["run"]


@admin.register(Genre)
class GenreAdmin(RecordsEditsMixin, admin.ModelAdmin):
    list_display = ["mal_id", "name", "kind"]
    list_filter = ["kind"]
    search_fields = ["name"]


@admin.register(Studio)
class StudioAdmin(RecordsEditsMixin, admin.ModelAdmin):
    list_display = ["mal_id", "name"]
    search_fields = ["name"]


@admin.register(DataEdit)
class DataEditAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["edited_at", "what"]
    search_fields = ["what"]
    date_hierarchy = "edited_at"

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # The data version counts these rows: a deleted one could bring back an older version's answers.
        return False
