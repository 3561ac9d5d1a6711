"""The companion's rules, table-driven: each mood, each edge, and the one suggestion a day."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from analytics.selectors import rank_climbers
from snapshots.tests.factories import AnimeFactory
from tracking.companion import Candidate, Event, companion_mood, companion_suggestion
from tracking.tests.factories import ListEntryFactory, UserFactory

TODAY = dt.date(2026, 12, 4)


def ago(days: int, kind: str = "score", before: str = "", after: str = "") -> Event:
    return Event(on=TODAY - dt.timedelta(days=days), kind=kind, from_value=before, to_value=after)


@pytest.mark.parametrize(
    ("events", "mood", "reason", "napping", "greeting"),
    [
        # No events at all: a nap, never a reproach.
        ([], "bored", "having a nap", True, False),
        # Only events older than the 14-day window.
        ([ago(20), ago(30)], "bored", "having a nap", True, False),
        # A completion today.
        ([ago(0, "status", "watching", "completed")], "excited", "finished a title today", False, False),
        # Three episodes today, in two steps.
        ([ago(0, "progress", "1", "3"), ago(0, "progress", "3", "4")], "excited", "3 episodes today", False, False),
        # Two episodes today: active, not excited.
        ([ago(0, "progress", "1", "3")], "happy", "today", False, False),
        ([ago(1)], "happy", "yesterday", False, False),
        ([ago(3)], "happy", "3 days ago", False, False),
        ([ago(4)], "neutral", "4 days ago", False, False),
        ([ago(6)], "neutral", "6 days ago", False, False),
        ([ago(7)], "bored", "7 quiet days", True, False),
        ([ago(13)], "bored", "13 quiet days", True, False),
        # A return after a long pause: active today, and the cat says hello.
        ([ago(0), ago(10)], "happy", "today", False, True),
        ([ago(0), ago(40)], "happy", "today", False, True),
        ([ago(0, "status", "watching", "completed"), ago(9)], "excited", "finished", False, True),
        # A first day is no return.
        ([ago(0)], "happy", "today", False, False),
        # Back after only a short pause: no greeting.
        ([ago(0), ago(2)], "happy", "today", False, False),
        # Events from the future (a clock ahead) are ignored.
        ([ago(-2, "status", "watching", "completed")], "bored", "having a nap", True, False),
        # Negative or unreadable progress counts no episodes.
        ([ago(0, "progress", "5", "2"), ago(0, "progress", "x", "9")], "happy", "today", False, False),
    ],
)
def test_the_mood_rules(events, mood, reason, napping, greeting):
    result = companion_mood(events, TODAY)
    assert result.mood == mood
    assert reason in result.reason
    assert result.napping is napping
    assert bool(result.greeting) is greeting
    # Never guilt, never a streak.
    assert not any(word in result.reason.lower() for word in ("streak", "should", "missed", "lost"))


CANDIDATES = [
    Candidate("climbing", 2, "Frieren", "up 12 places this week"),
    Candidate("next_episode", 1, "Mushishi", "5"),
    Candidate("new_in_genre", 3, "Apothecary", "Drama"),
]


def test_one_suggestion_a_day_the_same_all_day():
    first = companion_suggestion(CANDIDATES, TODAY, dismissed_on=None)
    assert first is not None
    assert companion_suggestion(list(reversed(CANDIDATES)), TODAY, dismissed_on=None) == first
    days = {companion_suggestion(CANDIDATES, TODAY + dt.timedelta(days=n), None).mal_id for n in range(3)}
    assert days == {1, 2, 3}  # other days bring the others


def test_a_dismissed_suggestion_stays_away_until_tomorrow():
    assert companion_suggestion(CANDIDATES, TODAY, dismissed_on=TODAY) is None
    assert companion_suggestion(CANDIDATES, TODAY + dt.timedelta(days=1), dismissed_on=TODAY) is not None


def test_no_candidates_no_suggestion():
    assert companion_suggestion([], TODAY, dismissed_on=None) is None


@pytest.mark.parametrize(
    ("candidate", "words"),
    [
        (CANDIDATES[0], "Frieren, on your plan-to-watch list, is climbing: up 12 places this week."),
        (CANDIDATES[1], "Episode 5 of Mushishi is next."),
        (CANDIDATES[2], "Apothecary just entered the top 50, in Drama, your favourite genre."),
    ],
)
def test_each_suggestion_in_words(candidate, words):
    assert companion_suggestion([candidate], TODAY, dismissed_on=None).text == words


# The cat on the pages and over the API ------------------------------------------------------------------

pytestmark_db = pytest.mark.django_db


@pytestmark_db
def test_a_person_sees_the_cat_on_the_dashboard_and_their_list_and_a_visitor_never(client):
    from analytics.tests.seed import seed_history

    seed_history(days=10, titles=5)
    assert "companion" not in client.get("/").content.decode()
    client.force_login(UserFactory())
    for url in ("/", reverse("tracking:my-list")):
        assert 'class="companion companion-bored companion-napping"' in client.get(url).content.decode(), url


@pytestmark_db
def test_the_next_episode_is_suggested_and_not_today_keeps_it_away(client):
    fan = UserFactory()
    client.force_login(fan)
    client.post(reverse("tracking:entry-update", args=[AnimeFactory(title="Mushishi", episodes=26).mal_id]),
                {"status": "watching", "progress": "2"})  # fmt: skip
    cat = client.get(reverse("me:companion")).json()
    assert (cat["shown"], cat["mood"]) == (True, "happy")  # two episodes today: happy, not yet excited
    assert cat["suggestion"]["text"] == "Episode 3 of Mushishi is next."
    client.post(reverse("tracking:companion"), {"action": "dismiss"})
    assert client.get(reverse("me:companion")).json()["suggestion"] is None
    assert "Episode 3 of Mushishi" not in client.get(reverse("tracking:my-list")).content.decode()


@pytestmark_db
def test_a_planned_title_that_climbs_is_suggested(client):
    from analytics.tests.seed import seed_history

    anime = seed_history(days=20, titles=8)
    fan = UserFactory()
    client.force_login(fan)
    climbers = [row["mal_id"] for row in rank_climbers(feed="top", window=7, as_of=None)["results"]]
    assert climbers
    ListEntryFactory(user=fan, anime_id=climbers[0], status="plan_to_watch")
    cat = client.get(reverse("me:companion")).json()
    assert cat["suggestion"]["kind"] == "climbing"
    assert cat["suggestion"]["mal_id"] == climbers[0]
    assert "is climbing: up" in cat["suggestion"]["text"]
    assert anime


@pytestmark_db
def test_the_cat_can_be_hidden_and_shown_again(client):
    fan = UserFactory()
    client.force_login(fan)
    client.post(reverse("tracking:companion"), {"action": "hide"})
    assert "companion-" not in client.get(reverse("tracking:my-list")).content.decode()
    assert client.get(reverse("me:companion")).json() == {
        "shown": False, "mood": None, "reason": "", "napping": False, "greeting": "", "suggestion": None,
    }  # fmt: skip
    client.post(reverse("tracking:companion"), {"action": "show"})
    assert "companion-bored" in client.get(reverse("tracking:my-list")).content.decode()
    bad = client.post(reverse("tracking:companion"), {"action": "pet"}, follow=True)
    assert any("Choose hide, show or dismiss" in str(m) for m in bad.context["messages"])
