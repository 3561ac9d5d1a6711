from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from alerts import services, tasks
from alerts.models import AlertEvent, AlertRule, AlertState, Delivery
from alerts.tests.factories import AlertRuleFactory, WebhookEndpointFactory, day
from snapshots.models import SnapshotDay
from snapshots.signals import snapshot_committed
from snapshots.tests.factories import AnimeFactory, SnapshotFactory
from tracking.models import ListEntry, ListStatus
from tracking.tests.factories import ListEntryFactory, UserFactory

pytestmark = pytest.mark.django_db

Kind = AlertRule.Kind


def history(
    ranks: dict[int, list[int | None]],
    feed: str = "top",
    *,
    scores: dict[int, list[str | None]] | None = None,
    every: int = 1,
) -> None:
    """ranks[mal_id][n] is the title's feed rank on day(n · every); None: absent that day.

    scores[mal_id][n], when given, is its score that day (else 8.00).
    """
    for mal_id, row in ranks.items():
        anime = AnimeFactory(mal_id=mal_id, title=f"Title {mal_id}")
        for n, rank in enumerate(row):
            if rank is not None:
                score = (scores or {}).get(mal_id, [None] * len(row))[n]
                SnapshotFactory(
                    anime=anime,
                    feed=feed,
                    taken_on=day(n * every),
                    position=rank,
                    rank=rank,
                    score=Decimal(score) if score is not None else Decimal("8.00"),
                    run=None,
                )


def snapshot_days(feed: str = "top") -> list[dt.date]:
    return list(SnapshotDay.objects.filter(feed=feed).order_by("taken_on").values_list("taken_on", flat=True))


def evaluate_all(days: int | None = None, feed: str = "top") -> None:
    """Evaluate the feed's snapshot days in order, as the ETL's commits would (the first `days` of them)."""
    for taken_on in snapshot_days(feed)[:days]:
        services.rules_evaluate(feed=feed, day=taken_on)


def fired(rule: AlertRule) -> list[tuple[int, int]]:
    """(mal_id, day number) of the rule's events, oldest first."""
    events = AlertEvent.objects.filter(rule=rule).order_by("day", "anime_id")
    return [(anime_id, (taken_on - day(0)).days) for anime_id, taken_on in events.values_list("anime_id", "day")]


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


# Each kind on a hand-built history: starts (fires), holds (silent), clears, starts again (fires).
# Windowed kinds read weekly snapshots (days 0, 7, 14, ...), so each day's baseline is the one 7 days back.
KIND_CASES = {
    "entered_top": (
        {"kind": Kind.ENTERED_TOP, "threshold": 3},
        {"ranks": {1: [5, 3, 2, 4, 3], 2: [1, 1, 1, 1, 1]}},
        [(2, 0), (1, 1), (1, 4)],
    ),
    "left_top": (
        {"kind": Kind.LEFT_TOP, "threshold": 3},
        # Title 2 leaves the feed altogether on day 3: out of the feed is out of the top.
        {"ranks": {1: [2, 5, 6, 3, 4], 2: [1, 1, 1, None, None]}},
        [(1, 1), (2, 3), (1, 4)],
    ),
    "climbed": (
        {"kind": Kind.CLIMBED, "threshold": 5, "window": 7},
        {"ranks": {1: [30, 20, 10, 10, 20, 10], 2: [5, 5, 5, 5, 5, 5]}, "every": 7},
        [(1, 7), (1, 35)],
    ),
    "fell": (
        {"kind": Kind.FELL, "threshold": 5, "window": 7},
        {"ranks": {1: [10, 20, 30, 30, 20, 30], 2: [5, 5, 5, 5, 5, 5]}, "every": 7},
        [(1, 7), (1, 35)],
    ),
    "score_moved": (
        {"kind": Kind.SCORE_MOVED, "threshold": Decimal("0.5"), "window": 7},
        {
            "ranks": {1: [1, 1, 1, 1, 1, 1], 2: [2, 2, 2, 2, 2, 2]},
            "scores": {1: ["8.00", "8.60", "9.20", "9.20", "9.20", "8.60"], 2: ["7.00"] * 6},
            "every": 7,
        },
        # A fall counts as much as a rise.
        [(1, 7), (1, 35)],
    ),
    "new_best": (
        {"kind": Kind.NEW_BEST},
        # Day 5 improves again, but the condition held the day before: no second event until it clears.
        {"ranks": {1: [5, 4, 4, 6, 3, 2, 2, 1], 2: [1, 1, 1, 1, 1, 1, 1, 1]}},
        [(1, 1), (1, 4), (1, 7)],
    ),
}
KIND_IDS = list(KIND_CASES)


@pytest.mark.parametrize("case", KIND_IDS, ids=KIND_IDS)
def test_each_kind_fires_when_its_condition_starts_and_again_only_after_it_cleared(case):
    rule_fields, hist, expected = KIND_CASES[case]
    history(**hist)
    rule = AlertRuleFactory(**rule_fields)
    evaluate_all()
    assert fired(rule) == expected
    event = AlertEvent.objects.filter(rule=rule).first()
    assert event is not None
    assert event.data["kind"] == rule.kind
    assert event.message.startswith("Title ")


@pytest.mark.parametrize("case", KIND_IDS, ids=KIND_IDS)
def test_the_preview_is_what_day_by_day_evaluation_sends_for_each_kind(case):
    rule_fields, hist, expected = KIND_CASES[case]
    history(**hist)
    user = UserFactory()
    preview = services.rule_preview(rule=AlertRuleFactory.build(user=user, **rule_fields))
    rule = AlertRuleFactory(user=user, **rule_fields)
    evaluate_all()
    sent = AlertEvent.objects.filter(rule=rule).order_by("-day", "-anime_id")
    assert [(e.mal_id, e.day, e.message) for e in preview] == [(e.anime_id, e.day, e.message) for e in sent]
    # Only the last 30 days: the windowed histories span 35 days and their day-7 events are older.
    first = (snapshot_days()[-1] - dt.timedelta(days=29) - day(0)).days
    in_range = sorted((mal_id, n) for mal_id, n in expected if n >= first)
    assert sorted((e.mal_id, (e.day - day(0)).days) for e in preview) == in_range


def test_event_data_and_message_say_what_moved():
    history({1: [30, 10]}, every=7)
    rule = AlertRuleFactory(kind=Kind.CLIMBED, threshold=5, window=7)
    evaluate_all()
    event = AlertEvent.objects.get(rule=rule)
    assert event.data == {
        "feed": "top",
        "date": day(7).isoformat(),
        "rank": 10,
        "score": "8.00",
        "window": 7,
        "baseline_date": day(0).isoformat(),
        "previous_rank": 30,
        "previous_score": "8.00",
        "change": 20,
        "mal_id": 1,
        "title": "Title 1",
        "kind": "climbed",
    }
    assert event.message == "Title 1 climbed 20 places in the top feed in 7 days, from #30 to #10"


# Window edges: the baseline B is the newest snapshot day with D - 2w <= B <= D - w.


@pytest.mark.parametrize(
    ("window", "gap", "fires"),
    [
        pytest.param(7, 7, True, id="7d-baseline-exactly-D-7"),
        pytest.param(7, 14, True, id="7d-baseline-exactly-D-14"),
        pytest.param(7, 6, False, id="7d-baseline-too-recent"),
        pytest.param(7, 15, False, id="7d-baseline-too-old"),
        pytest.param(30, 30, True, id="30d-baseline-exactly-D-30"),
        pytest.param(30, 60, True, id="30d-baseline-exactly-D-60"),
        pytest.param(30, 29, False, id="30d-baseline-too-recent"),
        pytest.param(30, 61, False, id="30d-baseline-too-old"),
    ],
)
def test_a_window_compares_with_the_newest_day_between_d_minus_2w_and_d_minus_w(window, gap, fires):
    history({1: [20, 10]}, every=gap)
    rule = AlertRuleFactory(kind=Kind.CLIMBED, threshold=5, window=window)
    evaluate_all()
    assert fired(rule) == ([(1, gap)] if fires else [])


def test_a_window_takes_the_newest_baseline_in_range():
    # Days 0, 3 and 10: on day 10 both 0 and 3 are in [D-14, D-7]; 3 is the baseline (rank 11: a climb of 1).
    history({1: [20, 11, None, 10]}, every=1)
    SnapshotDay.objects.filter(taken_on=day(3)).delete()
    AnimeFactory(mal_id=1).snapshots.filter(taken_on=day(3)).update(taken_on=day(10))
    SnapshotDay.objects.create(feed="top", taken_on=day(10), rows=1)
    SnapshotDay.objects.filter(taken_on=day(1)).update(taken_on=day(3))
    AnimeFactory(mal_id=1).snapshots.filter(taken_on=day(1)).update(taken_on=day(3))
    assert snapshot_days() == [day(0), day(3), day(10)]
    rule = AlertRuleFactory(kind=Kind.CLIMBED, threshold=5, window=7)
    evaluate_all()
    assert fired(rule) == []
    AlertRule.objects.filter(pk=rule.pk).update(threshold=1, evaluated_on=None)
    services.rules_evaluate(feed="top", day=day(10))
    assert AlertEvent.objects.get(rule=rule).data["baseline_date"] == day(3).isoformat()


# Ties and exact thresholds


def test_titles_tied_on_a_rank_at_the_threshold_both_enter():
    history({1: [5, 3], 2: [6, 3], 3: [7, 4]})
    rule = AlertRuleFactory(kind=Kind.ENTERED_TOP, threshold=3)
    evaluate_all()
    assert fired(rule) == [(1, 1), (2, 1)]


@pytest.mark.parametrize(
    ("kind", "ranks", "threshold", "fires"),
    [
        pytest.param(Kind.CLIMBED, [15, 10], 5, True, id="climbed-exactly"),
        pytest.param(Kind.CLIMBED, [14, 10], 5, False, id="climbed-one-short"),
        pytest.param(Kind.FELL, [10, 15], 5, True, id="fell-exactly"),
        pytest.param(Kind.FELL, [10, 14], 5, False, id="fell-one-short"),
        pytest.param(Kind.CLIMBED, [10, 15], 5, False, id="a-fall-is-no-climb"),
        pytest.param(Kind.FELL, [15, 10], 5, False, id="a-climb-is-no-fall"),
    ],
)
def test_a_rank_change_of_exactly_the_threshold_fires(kind, ranks, threshold, fires):
    history({1: ranks}, every=7)
    rule = AlertRuleFactory(kind=kind, threshold=threshold, window=7)
    evaluate_all()
    assert fired(rule) == ([(1, 7)] if fires else [])


@pytest.mark.parametrize(
    ("scores", "fires"),
    [
        pytest.param(["8.00", "8.50"], True, id="up-exactly"),
        pytest.param(["8.50", "8.00"], True, id="down-exactly"),
        pytest.param(["8.00", "8.49"], False, id="one-short"),
    ],
)
def test_a_score_change_of_exactly_the_threshold_fires(scores, fires):
    history({1: [1, 1]}, scores={1: scores}, every=7)
    rule = AlertRuleFactory(kind=Kind.SCORE_MOVED, threshold=Decimal("0.5"), window=7)
    evaluate_all()
    assert fired(rule) == ([(1, 7)] if fires else [])


def test_new_best_needs_a_strictly_better_rank_than_every_day_before():
    history({1: [3, 5, 3, 2]})
    rule = AlertRuleFactory(kind=Kind.NEW_BEST)
    evaluate_all()
    # Day 2 equals the best (3), day 3 beats it; a title's first day has nothing to beat.
    assert fired(rule) == [(1, 3)]


# Scopes


def test_a_title_rule_watches_only_its_title():
    history({1: [5, 2], 2: [5, 2]})
    rule = AlertRuleFactory(kind=Kind.ENTERED_TOP, scope=AlertRule.Scope.TITLE, anime=AnimeFactory(mal_id=2))
    evaluate_all()
    assert fired(rule) == [(2, 1)]


def test_a_list_rule_watches_the_titles_on_the_list_with_its_statuses():
    history({1: [5, 2], 2: [5, 2], 3: [5, 2], 4: [5, 2]})
    user = UserFactory()
    ListEntryFactory(user=user, anime=AnimeFactory(mal_id=1), status=ListStatus.WATCHING)
    ListEntryFactory(user=user, anime=AnimeFactory(mal_id=2), status=ListStatus.COMPLETED)
    ListEntryFactory(user=user, anime=AnimeFactory(mal_id=3), status=ListStatus.DROPPED)
    # Someone else's list does not count.
    ListEntryFactory(anime=AnimeFactory(mal_id=4), status=ListStatus.WATCHING)
    some = AlertRuleFactory(user=user, scope=AlertRule.Scope.LIST, statuses=[ListStatus.WATCHING, ListStatus.COMPLETED])
    every_status = AlertRuleFactory(user=user, scope=AlertRule.Scope.LIST, statuses=[])
    evaluate_all()
    assert fired(some) == [(1, 1), (2, 1)]
    assert fired(every_status) == [(1, 1), (2, 1), (3, 1)]


def test_a_title_removed_from_the_list_is_no_longer_watched():
    history({1: [2, 5, 2, 5], 2: [2, 5, 2, 5]})
    user = UserFactory()
    for mal_id in (1, 2):
        ListEntryFactory(user=user, anime=AnimeFactory(mal_id=mal_id))
    entered = AlertRuleFactory(user=user, kind=Kind.ENTERED_TOP, scope=AlertRule.Scope.LIST)
    left = AlertRuleFactory(user=user, kind=Kind.LEFT_TOP, scope=AlertRule.Scope.LIST)
    evaluate_all(1)
    assert set(AlertState.objects.filter(rule=left).values_list("anime_id", flat=True)) == {1, 2}
    ListEntry.objects.filter(user=user, anime_id=2).delete()
    evaluate_all()
    assert fired(entered) == [(1, 0), (2, 0), (1, 2)]
    # Leaving the list is not leaving the top.
    assert fired(left) == [(1, 1), (1, 3)]
    assert not AlertState.objects.filter(anime_id=2).exists()


def test_a_title_put_on_the_list_while_in_the_top_has_not_entered_the_top():
    history({1: [2, 2, 2, 2], 2: [9, 9, 9, 2], 3: [9, 2, 2, 9]})
    user = UserFactory()
    entered = AlertRuleFactory(user=user, kind=Kind.ENTERED_TOP, scope=AlertRule.Scope.LIST)
    left = AlertRuleFactory(user=user, kind=Kind.LEFT_TOP, scope=AlertRule.Scope.LIST)
    evaluate_all(2)
    for mal_id in (1, 2, 3):
        ListEntryFactory(user=user, anime=AnimeFactory(mal_id=mal_id))
    evaluate_all()
    # Titles 1 and 3 were in the top 3 before they joined the list: only title 2 enters, only title 3 leaves.
    assert fired(entered) == [(2, 3)]
    assert fired(left) == [(3, 3)]


def test_a_list_rule_with_a_status_stops_watching_a_title_whose_status_changed():
    history({1: [5, 2, 5, 2]})
    user = UserFactory()
    entry = ListEntryFactory(user=user, anime=AnimeFactory(mal_id=1), status=ListStatus.WATCHING)
    rule = AlertRuleFactory(user=user, scope=AlertRule.Scope.LIST, statuses=[ListStatus.WATCHING])
    evaluate_all(2)
    entry.status = ListStatus.COMPLETED
    entry.save()
    evaluate_all()
    assert fired(rule) == [(1, 1)]


def test_a_whole_feed_rule_watches_every_title_and_only_its_feed():
    history({1: [5, 2], 2: [6, 3], 3: [7, 4]})
    history({9: [5, 1]}, feed="airing")
    rule = AlertRuleFactory(kind=Kind.ENTERED_TOP, threshold=3, scope=AlertRule.Scope.FEED)
    evaluate_all()
    evaluate_all(feed="airing")
    assert fired(rule) == [(1, 1), (2, 1)]


# Rule life: new, edited, inactive


def test_a_new_rule_takes_what_held_before_from_the_previous_snapshot_day():
    history({1: [5, 2, 2, 2], 2: [5, 5, 5, 2]})
    rule = AlertRuleFactory(kind=Kind.ENTERED_TOP, threshold=3, active=False)
    evaluate_all(3)
    AlertRule.objects.filter(pk=rule.pk).update(active=True)
    services.rules_evaluate(feed="top", day=day(3))
    # Title 1 has been in the top 3 since day 1: nothing starts for it on day 3.
    assert fired(rule) == [(2, 3)]


def test_a_rule_whose_condition_is_edited_restarts_from_the_history():
    history({1: [9, 4, 4, 4], 2: [9, 9, 9, 2]})
    rule = AlertRuleFactory(kind=Kind.ENTERED_TOP, threshold=3)
    evaluate_all(3)
    assert fired(rule) == []
    rule.refresh_from_db()
    rule = services.rule_save(user=rule.user, rule=rule, changes={"threshold": 5})
    assert rule.evaluated_on is None
    assert not AlertState.objects.filter(rule=rule).exists()
    services.rules_evaluate(feed="top", day=day(3))
    # Title 1 has been in the top 5 since day 1; only title 2 starts on day 3.
    assert fired(rule) == [(2, 3)]


def test_editing_only_a_channel_keeps_the_rule_going():
    history({1: [9, 2, 2]})
    rule = AlertRuleFactory(kind=Kind.ENTERED_TOP, threshold=3)
    evaluate_all(2)
    rule.refresh_from_db()
    rule = services.rule_save(user=rule.user, rule=rule, changes={"email": AlertRule.Email.DIGEST, "atom": False})
    assert rule.evaluated_on == day(1)
    evaluate_all()
    assert fired(rule) == [(1, 1)]


def test_an_inactive_rule_does_not_fire():
    history({1: [9, 2]})
    rule = AlertRuleFactory(kind=Kind.ENTERED_TOP, threshold=3, active=False)
    evaluate_all()
    assert fired(rule) == []
    assert not Delivery.objects.exists()


def test_a_rule_without_channels_still_records_its_events_without_deliveries():
    history({1: [9, 2]})
    rule = AlertRuleFactory(kind=Kind.ENTERED_TOP, threshold=3, email=AlertRule.Email.OFF)
    evaluate_all()
    assert fired(rule) == [(1, 1)]
    assert not Delivery.objects.exists()


def test_events_go_to_the_rule_channels():
    history({1: [9, 2]})
    user = UserFactory()
    live, disabled = WebhookEndpointFactory(user=user), WebhookEndpointFactory(user=user, active=False)
    rule = AlertRuleFactory(user=user, kind=Kind.ENTERED_TOP, threshold=3, email=AlertRule.Email.DIGEST)
    rule.webhooks.set([live, disabled])
    evaluate_all()
    assert sorted(Delivery.objects.values_list("channel", "endpoint_id", "user_id")) == [
        ("digest", None, user.pk),
        ("webhook", live.pk, user.pk),
    ]


# Idempotency


def test_re_running_a_day_sends_nothing_twice():
    history({1: [9, 2, 9, 2]})
    rule = AlertRuleFactory(kind=Kind.ENTERED_TOP, threshold=3)
    rule.webhooks.add(WebhookEndpointFactory(user=rule.user))
    evaluate_all()
    counts = (AlertEvent.objects.count(), Delivery.objects.count(), AlertState.objects.count())
    for taken_on in snapshot_days():
        assert services.rules_evaluate(feed="top", day=taken_on).events == 0
    assert (AlertEvent.objects.count(), Delivery.objects.count(), AlertState.objects.count()) == counts
    assert fired(rule) == [(1, 1), (1, 3)]


def test_a_day_found_in_the_events_is_not_fired_again_even_if_the_rule_forgot_it():
    history({1: [9, 2]})
    rule = AlertRuleFactory(kind=Kind.ENTERED_TOP, threshold=3)
    evaluate_all()
    AlertRule.objects.filter(pk=rule.pk).update(evaluated_on=day(0))
    AlertState.objects.filter(rule=rule).delete()
    assert services.rules_evaluate(feed="top", day=day(1)).events == 0
    assert Delivery.objects.count() == 1


def test_a_redelivered_task_creates_no_extra_events_or_deliveries(mailoutbox):
    history({1: [9, 2]})
    rule = AlertRuleFactory(kind=Kind.ENTERED_TOP, threshold=3)
    rule.webhooks.add(WebhookEndpointFactory(user=rule.user))
    tasks.rules_evaluate(feed="top", day=day(0).isoformat())
    assert tasks.rules_evaluate(feed="top", day=day(1).isoformat()) == 1
    assert tasks.rules_evaluate(feed="top", day=day(1).isoformat()) == 0
    assert AlertEvent.objects.count() == 1
    assert Delivery.objects.count() == 2


def test_a_committed_snapshot_day_evaluates_the_rules_and_sends_after_commit(
    django_capture_on_commit_callbacks, mailoutbox
):
    history({1: [9, 2]})
    rule = AlertRuleFactory(kind=Kind.ENTERED_TOP, threshold=3)
    for n in (0, 1):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            snapshot_committed.send(sender=None, run=None, feed="top", taken_on=day(n))
            # Nothing happens before the commit.
            assert not AlertEvent.objects.filter(day=day(n)).exists()
    assert fired(rule) == [(1, 1)]
    assert Delivery.objects.get().status == Delivery.Status.SENT
    (mail,) = mailoutbox
    assert mail.subject == "Title 1 entered the top 3 of the top feed at #2"


# A fixed number of queries, whatever the number of rules


def moving_history(titles: int = 12, days: int = 16) -> None:
    """Every title moves every day: each kind of rule finds something on most days."""
    history(
        {i: [(i + 3 * n) % titles + 1 for n in range(days)] for i in range(1, titles + 1)},
        scores={i: [f"{8 + ((i + n) % 5) / 10:.2f}" for n in range(days)] for i in range(1, titles + 1)},
    )


def make_rules(count: int, users: list[Any]) -> None:
    combos = itertools.cycle(itertools.product(Kind.values, AlertRule.Scope.values))
    for n in range(count):
        kind, scope = next(combos)
        user = users[n % len(users)]
        thresholds: dict[str, Any] = {Kind.SCORE_MOVED: Decimal("0.1"), Kind.CLIMBED: 2, Kind.FELL: 2}
        threshold = thresholds.get(kind, 3 + n % 4)
        rule: Any = AlertRuleFactory(
            user=user,
            kind=kind,
            scope=scope,
            threshold=threshold,
            window=7 if n % 3 else 30,
            anime=AnimeFactory(mal_id=1 + n % 12) if scope == AlertRule.Scope.TITLE else None,
            statuses=[ListStatus.WATCHING] if scope == AlertRule.Scope.LIST and n % 2 else [],
            email=[AlertRule.Email.INSTANT, AlertRule.Email.DIGEST, AlertRule.Email.OFF][n % 3],
        )
        if n % 4 == 0:
            rule.webhooks.add(user.webhook_endpoints.first())


def queries_for(count: int) -> tuple[int, int, int]:
    """Queries of a day's evaluation with `count` rules just created, then of the next day; and the events."""
    AlertRule.objects.all().delete()
    make_rules(count, list(UserFactory._meta.model.objects.filter(username__startswith="q")))
    with CaptureQueriesContext(connection) as first:
        services.rules_evaluate(feed="top", day=day(12))
    with CaptureQueriesContext(connection) as second:
        services.rules_evaluate(feed="top", day=day(13))
    events = AlertEvent.objects.filter(day__in=[day(12), day(13)]).values("day").distinct().count()
    return len(first), len(second), events


# SQLite's limit on a statement's parameters splits the INSERTs into more batches as rows grow.
@pytest.mark.skipif(connection.vendor == "sqlite", reason="the fixed query count is PostgreSQL's")
def test_evaluation_takes_the_same_number_of_queries_for_a_few_rules_and_for_200():
    moving_history()
    for n in range(5):
        user = UserFactory(username=f"q{n}")
        WebhookEndpointFactory(user=user)
        for mal_id in range(1, 13, 2 + n):
            ListEntryFactory(user=user, anime=AnimeFactory(mal_id=mal_id), status=ListStatus.WATCHING)
    few = queries_for(len(Kind.values) * len(AlertRule.Scope.values))
    many = queries_for(200)
    assert few == many
    # Both days fired events, so every step ran (a day without events skips some).
    assert few[2] == 2
    # One rule needs no more than that.
    assert queries_for(1)[:2] <= few[:2]
