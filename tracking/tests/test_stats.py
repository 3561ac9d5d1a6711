"""A person's stats against a hand-built list: every number, the estimates, the taste-vs-crowd numbers,
empty and one-entry lists, and a fixed number of queries whatever the list's size."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from snapshots.tests.factories import AnimeFactory, GenreFactory, SnapshotFactory, StudioFactory
from tracking.models import ListEntry, ListEvent, Profile
from tracking.stats import person_stats
from tracking.tests.factories import ListEntryFactory, UserFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 12, 4)


def _at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T12:00:00+00:00")


@pytest.fixture
def fan():
    action, drama = GenreFactory(mal_id=1, name="Action"), GenreFactory(mal_id=8, name="Drama")
    studio = StudioFactory(mal_id=4, name="Bones")
    a = AnimeFactory(
        mal_id=1,
        title="A",
        type="TV",
        episodes=12,
        episode_minutes=24,
        score=Decimal("8.00"),
        genres=[action],
    )
    b = AnimeFactory(
        mal_id=2, title="B", type="TV", episodes=24, episode_minutes=None, score=Decimal("7.50"), genres=[action, drama]
    )
    AnimeFactory(mal_id=3, title="C", type="TV", episode_minutes=20)  # known length, not on the list
    d = AnimeFactory(
        mal_id=4, title="D", type="Movie", episodes=1, episode_minutes=100, score=Decimal("6.00"), genres=[drama]
    )
    e = AnimeFactory(mal_id=5, title="E", type="OVA", episode_minutes=None)  # fmt: skip
    a.studios.set([studio])
    person = UserFactory()
    ListEntryFactory(user=person, anime=a, status="completed", score=9, progress=12, finished_on=dt.date(2026, 6, 1))
    ListEntryFactory(user=person, anime=b, status="watching", score=7, progress=10)
    ListEntryFactory(user=person, anime=d, status="dropped", score=3, progress=0)
    ListEntryFactory(user=person, anime=e, status="plan_to_watch", progress=3)  # no length to estimate from
    ListEntry.objects.filter(anime_id__in=[1, 2]).update(created_at=_at("2026-05-01"))
    # A entered the top 50 after it was added (an early pick) and was #10 on the day it was finished.
    SnapshotFactory(anime=a, feed="top", taken_on=dt.date(2026, 6, 1), position=10, rank=10)
    SnapshotFactory(anime=b, feed="top", taken_on=dt.date(2026, 1, 1), position=40, rank=40)
    for at, kind, before, after in [
        ("2026-11-10", "progress", "0", "5"),
        ("2026-12-01", "progress", "5", "10"),
        ("2026-12-02", "status", "plan_to_watch", "watching"),
        ("2025-10-01", "progress", "0", "50"),  # more than a year ago: not in the chart
    ]:
        ListEvent.objects.create(user=person, anime=b, kind=kind, from_value=before, to_value=after, at=_at(at))
    return person


def test_every_number_of_a_hand_built_list(fan):
    stats = person_stats(user=fan, today=TODAY)
    assert stats["total"] == 4
    assert stats["by_status"] == {"watching": 1, "completed": 1, "on_hold": 0, "dropped": 1, "plan_to_watch": 1}
    assert stats["episodes_watched"] == 25
    # A: 12 x 24; B: 10 x 22 (the median of the TV titles of known length, 24 and 20), an estimate; E: unknown.
    assert (stats["watch_minutes"], stats["watch_estimated_titles"]) == (12 * 24 + 10 * 22, 1)
    assert stats["mean_score"] == 6.33
    assert stats["score_distribution"] == {**{str(n): 0 for n in range(1, 11)}, "9": 1, "7": 1, "3": 1}
    assert (stats["completion_rate"], stats["drop_rate"]) == (0.5, 0.5)
    assert stats["top_genres"] == [
        {"name": "Action", "count": 2, "mean_score": 8.0},
        {"name": "Drama", "count": 2, "mean_score": 5.0},
    ]
    assert stats["top_studios"] == [{"name": "Bones", "count": 1, "mean_score": 9.0}]


def test_taste_against_the_crowd_per_genre(fan):
    crowd = person_stats(user=fan, today=TODAY)["taste_vs_crowd"]
    assert crowd == [
        {"genre": "Drama", "titles": 2, "your_mean": 5.0, "mal_mean": 6.75, "difference": -1.75},
        {"genre": "Action", "titles": 2, "your_mean": 8.0, "mal_mean": 7.75, "difference": 0.25},
    ]


def test_monthly_activity_covers_the_last_twelve_months(fan):
    activity = person_stats(user=fan, today=TODAY)["activity"]
    assert [row["month"] for row in activity] == [f"2026-{m:02d}" for m in range(1, 13)]
    assert activity[-2] == {"month": "2026-11", "events": 1, "episodes": 5}
    assert activity[-1] == {"month": "2026-12", "events": 2, "episodes": 5}
    assert sum(row["episodes"] for row in activity) == 10


def test_early_picks_and_the_rank_on_the_day_a_title_was_finished(fan):
    stats = person_stats(user=fan, today=TODAY)
    assert stats["early_picks"] == [
        {"mal_id": 1, "title": "A", "added_on": dt.date(2026, 5, 1), "entered_top_50_on": dt.date(2026, 6, 1)}
    ]
    assert stats["finished_ranks"] == [{"mal_id": 1, "title": "A", "finished_on": dt.date(2026, 6, 1), "mal_rank": 10}]


def test_an_empty_list_has_zeros_and_no_rates():
    stats = person_stats(user=UserFactory(), today=TODAY)
    assert (stats["total"], stats["episodes_watched"], stats["watch_minutes"]) == (0, 0, 0)
    assert (stats["mean_score"], stats["completion_rate"], stats["drop_rate"]) == (None, None, None)
    assert stats["top_genres"] == stats["early_picks"] == stats["finished_ranks"] == []
    assert len(stats["activity"]) == 12


def test_a_one_entry_list():
    person = UserFactory()
    ListEntryFactory(user=person, anime=AnimeFactory(episode_minutes=30), status="completed", score=10, progress=2)
    stats = person_stats(user=person, today=TODAY)
    assert (stats["total"], stats["watch_minutes"], stats["mean_score"], stats["completion_rate"]) == (1, 60, 10.0, 1.0)


def test_the_queries_do_not_grow_with_the_list(fan):
    with CaptureQueriesContext(connection) as small:
        person_stats(user=fan, today=TODAY)
    for n in range(30):
        ListEntryFactory(user=fan, anime=AnimeFactory(type="TV", episode_minutes=None), progress=n, score=n % 10 + 1)
    with CaptureQueriesContext(connection) as large:
        person_stats(user=fan, today=TODAY)
    assert len(large) == len(small) <= 12


@time_machine.travel(dt.datetime(2026, 12, 4, 12, tzinfo=dt.UTC), tick=False)  # the page's "today"
def test_the_stats_page_shows_the_numbers_in_tables_and_a_friendly_start_when_empty(client, fan):
    client.force_login(fan)
    page = client.get(reverse("tracking:my-stats")).content.decode()
    assert "4 titles on the list, 25 episodes watched" in page
    assert "an estimate for 1 title" in page
    drama = '<td>Drama</td><td class="num">2</td><td class="num">5.0</td><td class="num">6.75</td>'
    assert f'{drama}<td class="num">-1.75</td>' in page
    assert 'id="stats-data"' in page
    assert "The genre met most often is Action (2 titles)." in page
    assert "The busiest month was 2026-12, with 2 changes." in page
    client.force_login(UserFactory())
    empty = client.get(reverse("tracking:my-stats")).content.decode()
    assert "Your stats start with your first title" in empty
    assert "<canvas" not in empty


def test_stats_over_the_api_match_the_page(client, fan):
    client.force_login(fan)
    answer = client.get(reverse("me:stats")).json()
    assert answer["total"] == 4
    assert answer["taste_vs_crowd"][0]["genre"] == "Drama"
    assert answer["early_picks"][0]["added_on"] == "2026-05-01"
    assert Client().get(reverse("me:stats")).status_code in (401, 403)


def test_public_stats_follow_the_lists_visibility(client, fan):
    url = reverse("tracking:public-stats", args=[fan.username])
    assert client.get(url).status_code == 404
    Profile.objects.create(user=fan, list_public=True)
    assert "4 titles on the list" in client.get(url).content.decode()
