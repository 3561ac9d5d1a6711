from __future__ import annotations

import pytest

from alerts import services
from alerts.models import AlertEvent, AlertRule, Delivery
from alerts.tests.factories import AlertRuleFactory, day
from snapshots.tests.factories import AnimeFactory, SnapshotFactory

pytestmark = pytest.mark.django_db


def history(ranks: dict[int, list[int | None]], feed: str = "top") -> None:
    """ranks[mal_id][n] is the title's feed rank on day(n); None: absent that day."""
    for mal_id, row in ranks.items():
        anime = AnimeFactory(mal_id=mal_id, title=f"Title {mal_id}")
        for n, rank in enumerate(row):
            if rank is not None:
                SnapshotFactory(anime=anime, feed=feed, taken_on=day(n), position=rank, rank=rank, run=None)


def evaluate_all(days: int, feed: str = "top") -> None:
    for n in range(days):
        services.rules_evaluate(feed=feed, day=day(n))


def test_entered_top_fires_when_it_starts_and_again_only_after_it_cleared():
    history({1: [5, 3, 2, 4, 3], 2: [1, 1, 1, 1, 1]})
    rule = AlertRuleFactory(kind=AlertRule.Kind.ENTERED_TOP, threshold=3)
    evaluate_all(5)
    fired = list(AlertEvent.objects.filter(rule=rule).order_by("day").values_list("anime_id", "day"))
    # Day 0 has no day before it: what holds then starts then.
    assert fired == [(2, day(0)), (1, day(1)), (1, day(4))]
    assert Delivery.objects.filter(channel=Delivery.Channel.EMAIL).count() == 3


def test_the_preview_is_what_evaluation_sends():
    history({1: [5, 3, 2, 4, 3, 9, 1], 2: [1, 1, 1, 1, 1, 2, 9], 3: [9, 9, 9, 2, 2, 2, 2]})
    preview_rule = AlertRuleFactory.build(kind=AlertRule.Kind.LEFT_TOP, threshold=3, user=AlertRuleFactory().user)
    preview = [(event.mal_id, event.day) for event in services.rule_preview(rule=preview_rule)]
    rule = AlertRuleFactory(kind=AlertRule.Kind.LEFT_TOP, threshold=3)
    evaluate_all(7)
    sent = list(AlertEvent.objects.filter(rule=rule).order_by("-day", "-anime_id").values_list("anime_id", "day"))
    assert preview == sent == [(2, day(6)), (1, day(5)), (1, day(3))]
