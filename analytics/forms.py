"""Query-string forms of the pages: they validate what a visitor typed and render the controls."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import QueryDict

from analytics.selectors.trends import WEEKLY, WINDOW_LABELS
from snapshots.feeds import DEFAULT_FEED, FEEDS

FEED_CHOICES = [(name, f"{name} · {feed.description}") for name, feed in FEEDS.items()]


class TrendingForm(forms.Form):
    """The controls of /trending/: which feed, which window, how many rows, and which day to replay."""

    feed = forms.ChoiceField(choices=FEED_CHOICES, initial=DEFAULT_FEED)
    window = forms.TypedChoiceField(choices=list(WINDOW_LABELS.items()), coerce=int, initial=WEEKLY)
    limit = forms.TypedChoiceField(
        label="Rows", choices=[(n, str(n)) for n in (10, 25, 50, 100)], coerce=int, initial=25
    )
    as_of = forms.DateField(
        label="As of",
        required=False,
        help_text="Replay a past day; empty means the latest snapshot.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Each field's initial value: what a missing or invalid parameter means."""
        return {name: field.initial for name, field in cls.base_fields.items()}

    @classmethod
    def from_query(cls, query: QueryDict) -> TrendingForm:
        """A bound form where a missing parameter takes its default, as the API does."""
        data = {name: "" if value is None else str(value) for name, value in cls.defaults().items()}
        data.update({name: str(query.get(name)) for name in cls.base_fields if query.get(name)})
        return cls(data=data)

    def params(self) -> dict[str, Any]:
        """The valid values, each invalid one replaced by its default (the errors show beside the field)."""
        self.is_valid()
        return {
            name: default if name in self.errors else self.cleaned_data.get(name, default)
            for name, default in self.defaults().items()
        }
