"""The alerts pages' forms: they read what was typed; the rules between fields are alerts/services.py's."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth.models import User

from alerts.models import FEED_CHOICES, AlertRule, WebhookEndpoint
from snapshots.models import Anime
from tracking.models import ListStatus

# What N means for each kind, shown beside the form.
THRESHOLD_HELP = {
    AlertRule.Kind.ENTERED_TOP: "N is the size of the top: 10 tells you when a title enters the top 10 of the feed.",
    AlertRule.Kind.LEFT_TOP: "N is the size of the top: 10 tells you when a title drops out of the top 10.",
    AlertRule.Kind.CLIMBED: "N is a number of places gained over the window: 5 means at least 5 places up.",
    AlertRule.Kind.FELL: "N is a number of places lost over the window: 5 means at least 5 places down.",
    AlertRule.Kind.SCORE_MOVED: "N is a change of MAL score over the window, up or down: 0.1 means ±0.10 or more.",
    AlertRule.Kind.NEW_BEST: "N is not used: the rule fires when a title reaches a better place than ever before.",
}


class RuleForm(forms.Form):
    kind = forms.ChoiceField(label="When a title", choices=AlertRule.Kind.choices)
    feed = forms.ChoiceField(label="In the feed", choices=FEED_CHOICES, initial="top")
    threshold = forms.DecimalField(
        label="N",
        required=False,
        initial=Decimal(10),
        max_digits=6,
        decimal_places=2,
        help_text="Places (enters, leaves, climbs, falls) or score points (score moves); see below.",
    )
    window = forms.TypedChoiceField(
        label="Over",
        choices=[(7, "7 days"), (30, "30 days")],
        coerce=int,
        initial=7,
        help_text="For climbs, falls and score moves.",
    )
    scope = forms.ChoiceField(label="Which titles", choices=AlertRule.Scope.choices, initial=AlertRule.Scope.TITLE)
    anime = forms.IntegerField(
        label="Title (MAL id)",
        required=False,
        min_value=1,
        help_text="For “One title”: the number in the title's address, /anime/<id>/.",
    )
    statuses = forms.MultipleChoiceField(
        label="Statuses on my list",
        choices=ListStatus.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="For “Titles on my list”; none ticked: every status.",
    )
    email = forms.ChoiceField(label="E-mail", choices=AlertRule.Email.choices, initial=AlertRule.Email.INSTANT)
    webhooks = forms.ModelMultipleChoiceField(
        label="Webhooks",
        queryset=WebhookEndpoint.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    atom = forms.BooleanField(label="In my Atom feed", required=False, initial=True)
    active = forms.BooleanField(label="Active", required=False, initial=True)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the person's own endpoints can be picked.
        self.fields["webhooks"].queryset = WebhookEndpoint.objects.filter(user=user)  # type: ignore[attr-defined]

    @staticmethod
    def initial_for(rule: AlertRule) -> dict[str, Any]:
        return {
            "kind": rule.kind,
            "feed": rule.feed,
            "threshold": rule.threshold.normalize() if rule.threshold is not None else None,
            "window": rule.window,
            "scope": rule.scope,
            "anime": rule.anime_id,
            "statuses": rule.statuses,
            "email": rule.email,
            "webhooks": list(rule.webhooks.all()),
            "atom": rule.atom,
            "active": rule.active,
        }

    def clean_anime(self) -> Anime | None:
        mal_id = self.cleaned_data.get("anime")
        if mal_id is None:
            return None
        anime = Anime.objects.filter(pk=mal_id).first()
        if anime is None:
            raise forms.ValidationError("No title with this MAL id is known here; open its page first.")
        return anime

    def changes(self) -> dict[str, Any]:
        """The cleaned values as rule_save takes them; new best has no N, so it gets the one it ignores."""
        changes = dict(self.cleaned_data)
        if changes["threshold"] is None and changes["kind"] == AlertRule.Kind.NEW_BEST:
            changes["threshold"] = Decimal(1)
        return changes


class EndpointForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Yours to tell them apart, e.g. “Discord #anime”.")
    url = forms.CharField(
        label="URL",
        max_length=500,
        widget=forms.URLInput(attrs={"placeholder": "https://"}),
        help_text="An http:// or https:// address on the public internet.",
    )
    preset = forms.ChoiceField(
        label="Body",
        choices=WebhookEndpoint.Preset.choices,
        initial=WebhookEndpoint.Preset.STANDARD,
        help_text="Discord and Slack get a message they can post; any other receiver the signed JSON.",
    )
