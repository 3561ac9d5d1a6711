"""The people side in the admin: searchable, edited through the list's rules, no token or password shown."""

from __future__ import annotations

import pytest
from django.urls import reverse

from snapshots.tests.factories import AnimeFactory
from tracking import services
from tracking.models import ImportJob, ListEntry, ListEvent
from tracking.tests.factories import ListEntryFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["listentry", "listevent", "importjob", "apitoken"])
def test_each_changelist_opens_and_searches(admin_client, model):
    entry = ListEntryFactory(anime=AnimeFactory(title="Findable"))
    services.list_entry_save(user=entry.user, anime=entry.anime, changes={"score": 5})
    services.api_token_create(user=entry.user, name="laptop")
    ImportJob.objects.create(user=entry.user, file_name="animelist.xml")
    url = reverse(f"admin:tracking_{model}_changelist")
    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url, {"q": entry.user.username}).status_code == 200


def test_staff_never_see_a_token_or_a_password(admin_client):
    person = UserFactory()
    token, raw = services.api_token_create(user=person, name="laptop")
    pages = [
        admin_client.get(reverse("admin:tracking_apitoken_changelist")),
        admin_client.get(reverse("admin:tracking_apitoken_change", args=[token.pk])),
        admin_client.get(reverse("admin:auth_user_change", args=[person.pk])),
    ]
    for page in pages:
        html = page.content.decode()
        assert raw not in html
        assert token.digest not in html
        assert person.password not in html


def test_an_admin_edit_goes_through_the_rules_and_is_logged(admin_client):
    entry = ListEntryFactory(anime=AnimeFactory(episodes=12), progress=2)
    url = reverse("admin:tracking_listentry_change", args=[entry.pk])
    data = {"user": entry.user_id, "anime": entry.anime_id, "status": "watching", "progress": "13",
            "times_rewatched": "0", "notes": ""}  # fmt: skip
    refused = admin_client.post(url, data)
    assert refused.status_code == 200
    assert "12 episodes" in refused.content.decode()
    assert admin_client.post(url, {**data, "progress": "5"}).status_code == 302
    assert ListEntry.objects.get().progress == 5
    assert ListEvent.objects.filter(kind="progress", to_value="5").exists()
