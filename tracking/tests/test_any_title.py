"""Any MyAnimeList title can be tracked: one AnimeDash has not seen yet is fetched from Jikan on demand."""

from __future__ import annotations

import pytest
from django.urls import reverse

from snapshots.models import Anime
from snapshots.services import AnimeNotOnMal, AnimeUnavailable, anime_fetch
from tracking.models import ListEntry
from tracking.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NEW = 457  # in the fake Jikan's catalogue, not in the database


def test_a_title_is_fetched_once_validated_and_stored(etl):
    anime = anime_fetch(mal_id=NEW)
    assert anime.title
    assert Anime.objects.filter(mal_id=NEW).exists()
    anime_fetch(mal_id=NEW)
    assert etl.request_count(f"/anime/{NEW}") == 1


def test_a_title_myanimelist_does_not_have_is_said_so_and_remembered(etl):
    for _ in range(2):
        with pytest.raises(AnimeNotOnMal):
            anime_fetch(mal_id=999_999)
    assert etl.request_count("/anime/999999") == 1


def test_jikan_unreachable_is_unavailable_not_missing(etl, settings):
    etl.inject("500", times=99, path=f"/anime/{NEW}")
    with pytest.raises(AnimeUnavailable):
        anime_fetch(mal_id=NEW)
    assert not Anime.objects.filter(mal_id=NEW).exists()


def test_a_signed_in_person_opens_any_title_and_a_visitor_is_asked_to_sign_in(client, etl):
    assert client.get(f"/anime/{NEW}/").status_code == 404
    assert etl.request_count() == 0  # a visitor never makes AnimeDash ask Jikan
    client.force_login(UserFactory())
    page = client.get(f"/anime/{NEW}/")
    assert page.status_code == 200
    missing = client.get("/anime/999999/")
    assert missing.status_code == 404
    assert "MyAnimeList has no title 999999" in missing.content.decode()


def test_adding_an_unknown_title_fetches_it_from_the_page_and_the_api(client, etl):
    person = UserFactory()
    client.force_login(person)
    client.post(reverse("tracking:entry-status", args=[NEW]), {"status": "plan_to_watch"})
    assert ListEntry.objects.get(user=person).anime_id == NEW
    added = client.post(reverse("me:list"), {"mal_id": 19, "status": "watching"}, content_type="application/json")
    assert added.status_code == 201
    refused = client.post(reverse("me:list"), {"mal_id": 999_999}, content_type="application/json")
    assert refused.status_code == 400
    assert refused.json() == {"mal_id": ["No such title on MyAnimeList."]}
    quick = client.post(
        reverse("tracking:entry-status", args=[999_999]), {"status": "watching"}, HTTP_ACCEPT="application/json"
    )
    assert quick.status_code == 404


def test_jikan_unreachable_over_the_api_is_a_503_with_a_json_reason(client, etl, settings):
    settings.JIKAN_MAX_ATTEMPTS = 1
    etl.inject("500", times=9, path=f"/anime/{NEW}")
    client.force_login(UserFactory())
    response = client.post(reverse("me:list"), {"mal_id": NEW}, content_type="application/json")
    assert response.status_code == 503
    assert "detail" in response.json()
