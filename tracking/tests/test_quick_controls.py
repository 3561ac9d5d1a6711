"""The quick control beside every title: the person's status, add or change in place, one query a page."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from analytics.tests.seed import seed_history
from snapshots.models import Anime
from tracking.models import ListEntry
from tracking.tests.factories import ListEntryFactory, UserFactory

pytestmark = pytest.mark.django_db

PAGES = ["/", "/trending/", "/anime/1000/", "/search/?q=Series", "/top-table/", "/trending/tables/"]


@pytest.fixture
def history():
    seed_history(days=40, titles=12)


@pytest.mark.parametrize("url", PAGES)
def test_a_visitor_is_asked_to_sign_in_to_track(client, history, url):
    assert "Sign in to track" in client.get(url).content.decode()


@pytest.mark.parametrize("url", PAGES)
def test_a_person_sees_their_status_of_each_title_and_can_add_the_others(client, history, url):
    fan = UserFactory()
    ListEntryFactory(user=fan, anime=Anime.objects.get(mal_id=1000), status="on_hold")
    client.force_login(fan)
    page = client.get(url).content.decode()
    assert "Sign in to track" not in page
    assert '<option value="on_hold" selected>On hold</option>' in page
    if url != "/anime/1000/":
        assert "Add to list…" in page


def test_the_controls_cost_one_query_however_many_titles_are_on_the_list(client, history):
    fan = UserFactory()
    client.force_login(fan)
    client.get("/trending/")  # warm the answer cache
    with CaptureQueriesContext(connection) as few:
        client.get("/trending/")
    for anime in Anime.objects.all():
        ListEntryFactory(user=fan, anime=anime)
    with CaptureQueriesContext(connection) as many:
        client.get("/trending/")
    assert len(many) == len(few)
    assert sum("tracking_listentry" in query["sql"] for query in many.captured_queries) == 1


def test_the_control_answers_its_script_in_json(client, history):
    fan = UserFactory()
    client.force_login(fan)
    url = reverse("tracking:entry-status", args=[1000])
    answer = client.post(url, {"status": "watching"}, HTTP_ACCEPT="application/json")
    assert answer.json() == {"status": "watching", "said": "Watching: saved."}
    refused = client.post(url, {"status": ""}, HTTP_ACCEPT="application/json")
    assert refused.status_code == 400
    assert "status" in refused.json()["errors"]
    assert ListEntry.objects.get().status == "watching"


def test_one_persons_statuses_never_show_in_anothers_pages_warm_or_cold(client, history):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    ListEntryFactory(user=alice, anime=Anime.objects.get(mal_id=1000), status="dropped")
    for _ in range(2):
        client.force_login(alice)
        assert '<option value="dropped" selected>' in client.get("/").content.decode()
        client.force_login(bob)
        assert '<option value="dropped" selected>' not in client.get("/").content.decode()
        client.logout()
        assert '<option value="dropped" selected>' not in client.get("/").content.decode()
