"""People's lists in the admin: searchable, and edited through the same rules as everywhere else."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from tracking import services
from tracking.models import ApiToken, ImportJob, ListEntry, ListEvent


class ListEntryForm(forms.ModelForm):
    class Meta:
        model = ListEntry
        fields = ("user", "anime", *services.EDITABLE)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors:
            for name, value in cleaned.items():
                setattr(self.instance, name, value)
            services.list_entry_check(entry=self.instance)  # its ValidationError names the fields
        return cleaned


@admin.register(ListEntry)
class ListEntryAdmin(admin.ModelAdmin):
    form = ListEntryForm
    list_display = ("user", "anime", "status", "score", "progress", "updated_at")
    list_filter = ("status",)
    search_fields = ("user__username", "user__email", "anime__title", "=anime__mal_id")
    list_select_related = ("user", "anime")
    raw_id_fields = ("user", "anime")

    def save_model(self, request: HttpRequest, obj: ListEntry, form: Any, change: bool) -> None:
        # Saved by the service, as everywhere else: completing a title and the events come with it.
        changes = {name: form.cleaned_data[name] for name in services.EDITABLE}
        obj.pk = services.list_entry_save(user=obj.user, anime=obj.anime, changes=changes).pk

    def delete_model(self, request: HttpRequest, obj: ListEntry) -> None:
        services.list_entry_remove(user=obj.user, anime=obj.anime)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ListEntry]) -> None:
        for entry in queryset.select_related("user", "anime"):
            services.list_entry_remove(user=entry.user, anime=entry.anime)


@admin.register(ListEvent)
class ListEventAdmin(admin.ModelAdmin):
    list_display = ("at", "user", "anime", "kind", "from_value", "to_value")
    list_filter = ("kind",)
    search_fields = ("user__username", "anime__title", "=anime__mal_id")
    list_select_related = ("user", "anime")
    date_hierarchy = "at"

    # The log is history: it is read here, never written.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("created_at", "user", "file_name", "state", "processed", "added", "changed", "unchanged")
    list_filter = ("state",)
    search_fields = ("user__username", "file_name")
    list_select_related = ("user",)
    exclude = ("entries",)
    readonly_fields = [f.name for f in ImportJob._meta.fields if f.name != "entries"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Staff see who holds which token and may revoke one; the token itself is nowhere to be seen."""

    list_display = ("user", "name", "prefix", "created_at", "last_used_at")
    search_fields = ("user__username", "name")
    list_select_related = ("user",)
    fields = readonly_fields = ("user", "name", "prefix", "created_at", "last_used_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
