from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from analytics.api.trends import RankClimbersApi
from analytics.tests.seed import seed_history
from devtools.benchdb import child_env, run_child
from devtools.endpoints import ENDPOINTS
from devtools.history import fill
from devtools.management.commands.bench_api import _checked_get
from snapshots.feeds import FEEDS
from snapshots.models import Snapshot, SnapshotDay


# transaction=True: the bench creates and drops a database of its own beside the test database.
@pytest.mark.django_db(transaction=True)
def test_bench_api_prints_a_table_of_every_endpoint():
    out = StringIO()
    call_command("bench_api", "--rows", "2000", "--requests", "2", stdout=out)
    text = out.getvalue()
    # The bench is a command, not a timed test: check the report's shape, never its timings.
    assert "endpoint" in text
    assert "cold p95" in text
    assert "warm p95" in text
    for endpoint in ENDPOINTS:
        assert f"\n{endpoint.label} " in text


@pytest.mark.parametrize("rows", ["many", "100"])
def test_bench_api_rejects_a_bad_row_count(rows):
    with pytest.raises(CommandError, match="--rows"):
        call_command("bench_api", "--rows", rows)


@pytest.mark.django_db(transaction=True)
def test_bench_api_runs_with_the_demo_settings(monkeypatch):
    """`DEBUG=1` with no ALLOWED_HOSTS, as a fresh clone runs it: the children must still answer 200."""
    monkeypatch.setenv("DEBUG", "1")
    monkeypatch.delenv("ALLOWED_HOSTS", raising=False)
    out = StringIO()
    call_command("bench_api", "--rows", "2000", "--requests", "1", stdout=out)
    assert "cold p95" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_bench_api_ends_with_the_last_lines_of_a_child_that_failed(monkeypatch):
    # The children read the environment afresh: this one stops them at start-up (the migrate child first).
    monkeypatch.setenv("DATABASE_CONN_MAX_AGE", "-1")
    with pytest.raises(CommandError) as failure:
        call_command("bench_api", "--rows", "2000", "--requests", "1")
    assert "DATABASE_CONN_MAX_AGE" in str(failure.value).splitlines()[-1]


def test_a_failed_child_process_raises_its_last_lines_not_a_traceback(settings):
    with pytest.raises(CommandError) as failure:
        run_child(["bench_api", "--child", "--requests", "0"], child_env(settings.DATABASE_URL or ""))
    message = str(failure.value)
    assert message.splitlines()[0] == "manage.py bench_api --child --requests 0 failed (exit status 1); its last lines:"
    assert message.splitlines()[-1].strip() == "CommandError: --requests must be at least 1."


@pytest.mark.django_db
def test_bench_api_history_is_one_the_read_side_answers_for_every_timed_request(settings):
    # The fill writes in bulk, past the signals that move the data version: no cached answer may stand in.
    settings.ANALYTICS_CACHE_ENABLED = False
    shape, context = fill(3000)
    # As the ETL records it: each feed's day with its row count.
    assert SnapshotDay.objects.count() == len(FEEDS) * shape.days
    assert sum(SnapshotDay.objects.values_list("rows", flat=True)) == Snapshot.objects.count()
    assert RankClimbersApi.answer({})["results"]
    client = Client(headers={"accept": "application/json"})
    for endpoint in ENDPOINTS:
        for i in range(8):  # every feed, and each day of the last week
            _checked_get(client, endpoint.url(ctx=context, i=i))


@pytest.mark.django_db
def test_bench_api_refuses_to_time_an_empty_answer():
    client = Client(headers={"accept": "application/json"})
    with pytest.raises(CommandError, match=r"empty answer \(answer.insufficient_history, answer.results\)"):
        _checked_get(client, "/api/v1/trending/climbers")
    # Snapshot rows without their SnapshotDay (as the bench once wrote them): the read side sees no day.
    seed_history(days=10, titles=5)
    SnapshotDay.objects.all().delete()
    with pytest.raises(CommandError, match="empty answer"):
        _checked_get(client, "/api/v1/trending/streaks")


@pytest.mark.django_db
def test_bench_api_refuses_to_time_an_answer_its_selector_does_not_give(monkeypatch):
    seed_history(days=10, titles=5)
    client = Client(headers={"accept": "application/json"})
    _checked_get(client, "/api/v1/trending/streaks")
    # A stale answer, as a cache that missed a new snapshot would send.
    answer = RankClimbersApi.cached_answer
    stale = classmethod(lambda cls, params: {**answer(params), "date": None})
    monkeypatch.setattr(RankClimbersApi, "cached_answer", stale)
    with pytest.raises(CommandError, match="differs from the selector's own answer"):
        _checked_get(client, "/api/v1/trending/climbers?window=7")
