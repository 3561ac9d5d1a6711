"""The moves kept per feed and day: written at a day's commit, read only while the days they came from stand."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.db import DatabaseError

from analytics import selectors, services
from analytics.models import FeedMoves
from analytics.selectors import trends
from analytics.services import feed_moves_write
from analytics.tests.seed import TODAY, seed_history
from snapshots.models import DataEdit, EtlRun, Snapshot, SnapshotDay
from snapshots.signals import snapshot_committed

pytestmark = pytest.mark.django_db

ASKS = [
    (selectors.rank_climbers, {"window": 7}),
    (selectors.rank_fallers, {"window": 30}),
    (selectors.score_momentum, {"window": 7}),
]


def _answers() -> list:
    return [select(feed="top", as_of=None, **kw) for select, kw in ASKS] + [selectors.trending(feed="top", as_of=None)]


def _computed() -> mock._patch:
    return mock.patch.object(trends, "moves_compute", wraps=trends.moves_compute)


@pytest.fixture
def history():
    seed_history(days=70, titles=12)
    with _computed():
        live = _answers()
    assert all(answer["results"] for answer in live[:3])
    return live


def test_kept_moves_answer_as_the_days_do_without_comparing_them(history):
    written = feed_moves_write(feed="top", day=TODAY)
    assert {(m.window, m.baseline) for m in written} == {
        (7, TODAY - dt.timedelta(days=7)),
        (30, TODAY - dt.timedelta(days=30)),
    }
    with _computed() as computed:
        assert _answers() == history
    assert not computed.called


def test_a_day_without_a_baseline_keeps_nothing():
    seed_history(days=5, titles=4)
    assert feed_moves_write(feed="top", day=TODAY) == []
    assert feed_moves_write(feed="airing", day=TODAY) == []
    assert not FeedMoves.objects.exists()


def _rerun_today() -> None:
    SnapshotDay.objects.get(feed="top", taken_on=TODAY).save()


def _rerun_baseline() -> None:
    SnapshotDay.objects.get(feed="top", taken_on=TODAY - dt.timedelta(days=7)).save()


def _delete_baseline() -> None:
    baseline = TODAY - dt.timedelta(days=7)
    Snapshot.objects.filter(feed="top", taken_on=baseline).delete()
    SnapshotDay.objects.filter(feed="top", taken_on=baseline).delete()


def _edit_by_hand() -> None:
    Snapshot.objects.filter(feed="top", taken_on=TODAY).update(rank=None)
    DataEdit.objects.create(what="cleared the ranks of top today")


@pytest.mark.parametrize("change", [_rerun_today, _rerun_baseline, _delete_baseline, _edit_by_hand])
def test_kept_moves_are_passed_over_once_their_days_change(history, change):
    feed_moves_write(feed="top", day=TODAY)
    change()
    with _computed() as computed:
        answers = _answers()
    assert computed.called
    # What the days say now, as if nothing had been kept.
    FeedMoves.objects.all().delete()
    assert answers == _answers()


def test_a_committed_day_has_its_moves_kept(history):
    run = EtlRun.objects.filter(feed="top", taken_on=TODAY).get()
    snapshot_committed.send(sender=EtlRun, run=run, feed="top", taken_on=TODAY)
    assert FeedMoves.objects.filter(feed="top", taken_on=TODAY).count() == 2


def test_moves_that_cannot_be_kept_leave_the_commit_alone(history, caplog):
    run = EtlRun.objects.filter(feed="top", taken_on=TODAY).get()
    with mock.patch.object(services, "moves_compute", side_effect=DatabaseError("disk full")):
        snapshot_committed.send(sender=EtlRun, run=run, feed="top", taken_on=TODAY)
    assert not FeedMoves.objects.exists()
    assert "could not keep the moves of top" in caplog.text
    assert _answers() == history
