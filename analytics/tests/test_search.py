"""The advanced search page: every filter, sorts, bad input, "load more", and a person's recent searches."""

from __future__ import annotations

from decimal import Decimal

import pytest

from snapshots.tests.factories import AnimeFactory, GenreFactory
from tracking.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    action, drama = GenreFactory(mal_id=1, name="Action"), GenreFactory(mal_id=8, name="Drama")
    AnimeFactory(
        mal_id=1,
        title="Steel Alchemist",
        genres=[action, drama],
        year=2009,
        score=Decimal("9.1"),
        status="Finished Airing",
        type="TV",
        members=3000,
        rank=1,
    )
    AnimeFactory(
        mal_id=2,
        title="Steel Ball Run",
        genres=[action],
        year=2026,
        score=Decimal("8.2"),
        status="Currently Airing",
        type="TV",
        members=2000,
        rank=20,
    )
    AnimeFactory(mal_id=3, title="Quiet Steel", genres=[drama], year=1998, score=Decimal("7.0"),
                 status="Finished Airing", type="Movie", members=1000, rank=300)  # fmt: skip


def _found(client, **params) -> list[int]:
    response = client.get("/search/", params)
    assert response.status_code == 200, response
    return [anime.mal_id for anime in response.context["matches"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "steel"}, [1, 2, 3]),
        ({"q": "steel", "genre": ["1", "8"]}, [1]),  # all the genres, not any
        ({"q": "steel", "genre": "1"}, [1, 2]),
        ({"q": "steel", "year_min": "2000", "year_max": "2010"}, [1]),
        ({"q": "steel", "status": "Currently Airing"}, [2]),
        ({"q": "steel", "score_min": "8", "score_max": "9"}, [2]),
        ({"q": "steel", "type": "Movie"}, [3]),
        ({"genre": "8"}, [1, 3]),  # filters alone, no words
        ({"q": "steel", "sort": "title"}, [3, 1, 2]),
        ({"q": "steel", "sort": "score"}, [1, 2, 3]),
        ({"q": "steel", "sort": "rank"}, [1, 2, 3]),
        ({"q": "steel", "sort": "newest"}, [2, 1, 3]),
    ],
)
def test_each_filter_and_sort(client, catalogue, params, expected):
    assert _found(client, **params) == expected


@pytest.mark.parametrize(
    "params",
    [{"year_min": "abc"}, {"score_max": "11"}, {"genre": "999"}, {"sort": "members"}, {"status": "Paused"},
     {"q": "x" * 201}, {"page": "-3", "q": "steel"}],
)  # fmt: skip
def test_bad_input_names_the_field_and_never_fails(client, catalogue, params):
    response = client.get("/search/", params)
    assert response.status_code == 200
    if "page" not in params:
        assert response.context["form"].errors
        assert response.context["matches"] == []


def test_load_more_shows_the_next_fifty(client):
    for n in range(60):
        AnimeFactory(mal_id=100 + n, title=f"Many {n}", members=1000 - n)
    first = client.get("/search/", {"q": "many"})
    assert len(first.context["matches"]) == 50
    assert "page=2" in first.context["more_url"]
    second = client.get("/search/", {"q": "many", "page": "2"})
    assert len(second.context["matches"]) == 60
    assert not second.context["more"]


def test_a_person_sees_their_last_ten_searches_newest_first_and_nobody_elses(client, catalogue):
    fan = UserFactory()
    client.force_login(fan)
    for n in range(12):
        client.get("/search/", {"q": f"steel {n}"})
    client.get("/search/", {"q": "steel", "genre": "1"})
    client.get("/search/", {"q": "steel 11"})  # again: moves to the front, never twice
    page = client.get("/search/").content.decode()
    recent = page.split('aria-label="Your recent searches"')[1].split("</nav>")[0]
    assert recent.count("<li>") == 10
    assert recent.index("steel 11") < recent.index("steel · Action")
    assert "steel 0<" not in recent
    client.force_login(UserFactory())
    assert "Your recent searches" not in client.get("/search/").content.decode()
    client.logout()
    assert "Your recent searches" not in client.get("/search/", {"q": "steel"}).content.decode()
