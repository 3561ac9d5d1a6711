from __future__ import annotations

from typing import Any

from django import forms

from tracking.mal_xml import MAX_UPLOAD_BYTES
from tracking.models import ListEntry, ListStatus
from tracking.selectors import SORTS


class ListEntryForm(forms.ModelForm):
    """The fields a person edits on their list; the rules between them are the service's."""

    score = forms.TypedChoiceField(
        choices=[("", "No score"), *[(n, str(n)) for n in range(10, 0, -1)]],
        coerce=int,
        empty_value=None,
        required=False,
    )

    progress = forms.IntegerField(min_value=0, required=False)

    class Meta:
        model = ListEntry
        fields = ("status", "score", "progress", "started_on", "finished_on", "notes")
        widgets = {
            "started_on": forms.DateInput(attrs={"type": "date"}),
            "finished_on": forms.DateInput(attrs={"type": "date"}),
            "notes": forms.Textarea(attrs={"rows": 2}),
        }


class StatusForm(forms.Form):
    """The quick control: add a title or change its status."""

    status = forms.ChoiceField(
        choices=ListStatus.choices, error_messages={"required": "Choose a status to add the title to your list."}
    )


class ListFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "All"), *ListStatus.choices], required=False)
    sort = forms.ChoiceField(
        choices=[(key, key.capitalize() if key != "rank" else "MAL rank") for key in SORTS], required=False
    )


class AccountDeleteForm(forms.Form):
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))

    def __init__(self, *args: object, user: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):  # type: ignore[attr-defined]
            raise forms.ValidationError("That is not your password.")
        return password


class ProfileForm(forms.Form):
    list_public = forms.BooleanField(required=False, label="Anyone may see my list")


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “my laptop's sync script”.")


class ImportForm(forms.Form):
    file = forms.FileField(
        label="MyAnimeList export (.xml or .xml.gz)",
        help_text="On MyAnimeList: your profile, then 'Export My List', then 'Export'. Up to 5 MB.",
    )
    overwrite = forms.BooleanField(
        required=False, label="Let the file change titles I completed or dropped (otherwise they stay as they are)"
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_UPLOAD_BYTES // 2**20} MB.")
        return upload
