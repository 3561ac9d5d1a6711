from __future__ import annotations

from typing import Any

import feedparser
import pytest

from alerts import services
from alerts.models import AlertEvent
from alerts.tests.factories import AlertRuleFactory, day
from alerts.tests.test_evaluation import history
from snapshots.tests.factories import AnimeFactory
from tracking.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# Per metric: a hand-built history of the top feed and the entry titles its feed shows, newest first.
PUBLIC_CASES = {
    "climbers-7d": (
        {"ranks": {1: [20, 10], 2: [5, 5]}, "every": 7},
        ["Top: the biggest climbers over 7 days, 08 January 2024"],
        "Title 1: #20 → #10 (+10)",
    ),
    "climbers-30d": (
        {"ranks": {1: [20, 10], 2: [5, 5]}, "every": 30},
        ["Top: the biggest climbers over 30 days, 31 January 2024"],
        "Title 1: #20 → #10 (+10)",
    ),
    "fallers-7d": (
        {"ranks": {1: [10, 20], 2: [5, 5]}, "every": 7},
        ["Top: the biggest fallers over 7 days, 08 January 2024"],
        "Title 1: #10 → #20 (-10)",
    ),
    "fallers-30d": (
        {"ranks": {1: [10, 20], 2: [5, 5]}, "every": 30},
        ["Top: the biggest fallers over 30 days, 31 January 2024"],
        "Title 1: #10 → #20 (-10)",
    ),
    "new-entries": (
        {"ranks": {1: [5, 5], 2: [None, 3]}, "every": 7},
        ["Title 2 entered the top 50 of top at #3"],
        "Title 2 entered the top 50 of top at #3",
    ),
    "streaks": (
        {"ranks": {1: [1] * 7, 2: [None] * 6 + [2]}},
        ["Title 1 has been in the top 10 of top for 7 snapshot days"],
        "Title 1 has been in the top 10 of top for 7 snapshot days",
    ),
}
METRICS = list(PUBLIC_CASES)


def parse(response) -> feedparser.FeedParserDict:
    parsed = feedparser.parse(response.content)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed


@pytest.mark.parametrize("metric", METRICS, ids=METRICS)
def test_each_public_feed_is_valid_atom_with_the_expected_entries(client, metric):
    hist, titles, text = PUBLIC_CASES[metric]
    history(**hist)
    response = client.get(f"/feeds/top/{metric}.atom")
    assert response.status_code == 200
    assert response["content-type"].startswith("application/atom+xml")
    parsed = parse(response)
    assert "AnimeDash" in parsed.feed.title
    assert [entry.title for entry in parsed.entries] == titles
    entry = parsed.entries[0]
    assert text in entry.summary
    assert entry.id.startswith("tag:animedash,")
    assert entry.link.startswith("http://testserver/")


@pytest.mark.parametrize("metric", METRICS, ids=METRICS)
def test_a_public_feed_without_history_is_valid_and_empty(client, metric):
    response = client.get(f"/feeds/airing/{metric}.atom")
    assert response.status_code == 200
    assert parse(response).entries == []


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/feeds/nope/climbers-7d.atom", id="unknown-feed"),
        pytest.param("/feeds/top/climbers-14d.atom", id="unknown-metric"),
        pytest.param("/feeds/top/.atom", id="no-metric"),
    ],
)
def test_an_unknown_feed_or_metric_is_404(client, path):
    assert client.get(path).status_code == 404


def event(rule: Any, mal_id: int, n: int, message: str) -> AlertEvent:
    anime: Any = AnimeFactory(mal_id=mal_id, title=f"Title {mal_id}")
    return AlertEvent.objects.create(rule=rule, anime=anime, day=day(n), message=message)


def test_the_private_feed_lists_only_the_person_s_events_from_rules_in_their_atom_feed(client):
    alice, bob = UserFactory(), UserFactory()
    shown = AlertRuleFactory(user=alice, atom=True)
    hidden = AlertRuleFactory(user=alice, atom=False)
    event(shown, 1, 0, "Title 1 entered the top 3")
    event(shown, 2, 1, "Title 2 entered the top 3")
    event(hidden, 3, 1, "Title 3 left the top 3")
    event(AlertRuleFactory(user=bob), 4, 1, "Title 4 entered the top 3")
    key = services.feed_key(user=alice).key
    response = client.get(f"/feeds/me/{key}.atom")
    assert response.status_code == 200
    assert "no-store" in response["cache-control"]
    assert response["x-robots-tag"] == "noindex"
    parsed = parse(response)
    assert [entry.title for entry in parsed.entries] == ["Title 2 entered the top 3", "Title 1 entered the top 3"]
    assert parsed.entries[0].link == "http://testserver/anime/2/"


def test_a_reset_key_makes_the_old_private_feed_url_404(client):
    user = UserFactory()
    old = services.feed_key(user=user).key
    assert client.get(f"/feeds/me/{old}.atom").status_code == 200
    new = services.feed_key_reset(user=user).key
    assert new != old
    assert client.get(f"/feeds/me/{old}.atom").status_code == 404
    assert client.get(f"/feeds/me/{new}.atom").status_code == 200


def test_an_unknown_private_key_is_404(client):
    assert client.get("/feeds/me/not-a-key.atom").status_code == 404
