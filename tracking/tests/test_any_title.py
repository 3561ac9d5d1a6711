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
    assert anime.episode_minutes  # read from Jikan's `duration`, as the ETL reads it
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


MAL_SEARCH = "/search/myanimelist/"


def test_searching_myanimelist_finds_titles_not_known_here_and_keeps_them(client, etl):
    client.force_login(UserFactory())
    page = client.get(MAL_SEARCH, {"q": "naruto"})
    titles = page.context["titles"]
    assert titles
    assert all("naruto" in anime.search_text for anime in titles)
    assert Anime.objects.filter(mal_id__in=[anime.mal_id for anime in titles]).count() == len(titles)
    assert 'class="track"' in page.content.decode()  # each one can be added at once
    client.get(MAL_SEARCH, {"q": "  Naruto "})  # the same search in other spacing and case: kept for a day
    assert etl.request_count("/anime") == 1


def test_one_myanimelist_search_per_person_every_few_seconds(client, etl):
    client.force_login(UserFactory())
    assert client.get(MAL_SEARCH, {"q": "naruto"}).context["problem"] == ""
    refused = client.get(MAL_SEARCH, {"q": "mushishi"})
    assert "every 5 seconds" in refused.context["problem"]
    assert etl.request_count("/anime") == 1
    other = UserFactory()
    client.force_login(other)
    assert client.get(MAL_SEARCH, {"q": "mushishi"}).context["titles"]  # another person has their own turn


def test_myanimelist_unreachable_is_a_message_not_an_error(client, etl, settings):
    settings.JIKAN_MAX_ATTEMPTS = 1
    etl.inject("500", times=9, path="/anime")
    client.force_login(UserFactory())
    page = client.get(MAL_SEARCH, {"q": "naruto"})
    assert page.status_code == 200
    assert "cannot be searched right now" in page.context["problem"]


def test_searching_myanimelist_needs_an_account(client, etl):
    assert client.get(MAL_SEARCH, {"q": "naruto"}).status_code == 302
    assert etl.request_count() == 0
    assert "Sign in</a> to search MyAnimeList" in client.get("/search/", {"q": "zzz"}).content.decode()
