"""Alert rules, events, webhooks and deliveries in the admin: rules are edited through the same checks as
everywhere else, and no webhook secret or private feed key is ever shown to staff."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from alerts import services
from alerts.models import AlertEvent, AlertRule, Delivery, WebhookEndpoint


class AlertRuleForm(forms.ModelForm):
    class Meta:
        model = AlertRule
        fields = ("user", *services.RULE_FIELDS)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors:
            for name, value in cleaned.items():
                if name != "webhooks":
                    setattr(self.instance, name, value)
            services.rule_check(self.instance)  # its ValidationError names the fields
            user = cleaned.get("user")
            if any(endpoint.user_id != getattr(user, "pk", None) for endpoint in cleaned.get("webhooks", [])):
                raise forms.ValidationError({"webhooks": "A rule can only use its owner's webhooks."})
        return cleaned


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    form = AlertRuleForm
    list_display = ("__str__", "user", "kind", "feed", "scope", "email", "active", "evaluated_on")
    list_filter = ("kind", "feed", "scope", "email", "active")
    search_fields = ("user__username", "user__email", "anime__title", "=anime__mal_id")
    list_select_related = ("user", "anime")
    raw_id_fields = ("user", "anime")
    filter_horizontal = ("webhooks",)

    def save_model(self, request: HttpRequest, obj: AlertRule, form: Any, change: bool) -> None:
        # Saved by the service, as everywhere else: a changed condition starts again from the history.
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name != "user"}
        if "anime" in changes and changes["anime"] is not None:
            changes["anime"] = changes["anime"].pk
        if "webhooks" in changes:
            changes["webhooks"] = [endpoint.pk for endpoint in changes["webhooks"]]
        rule = AlertRule.objects.get(pk=obj.pk) if change else None
        obj.pk = services.rule_save(user=obj.user, changes=changes, rule=rule).pk

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # rule_save has set the webhooks; the form's own m2m save would repeat it.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


@admin.register(AlertEvent)
class AlertEventAdmin(admin.ModelAdmin):
    list_display = ("day", "message", "rule")
    search_fields = ("message", "rule__user__username", "=anime__mal_id")
    list_select_related = ("rule__user", "rule__anime")
    date_hierarchy = "day"

    # Events are what happened: read here, never written.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "url", "preset", "active", "disabled_reason")
    list_filter = ("preset", "active")
    search_fields = ("name", "url", "user__username")
    # The secret is never shown here: staff can disable an endpoint, not sign as it.
    fields = ("user", "name", "url", "preset", "active", "disabled_reason")
    raw_id_fields = ("user",)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "user", "channel", "endpoint", "status", "attempts", "response_code", "next_try_at")
    list_filter = ("channel", "status")
    search_fields = ("user__username", "error", "endpoint__url")
    list_select_related = ("user", "endpoint")
    readonly_fields = (
        "user",
        "event",
        "channel",
        "endpoint",
        "attempts",
        "response_code",
        "error",
        "sent_at",
        "created_at",
    )
    fields = (*readonly_fields, "status", "next_try_at")
