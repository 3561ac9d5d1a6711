from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from analytics.selectors.status import data_version, forget_data_version
from snapshots import services
from snapshots.models import DataEdit, EtlRun, RawPage, Snapshot, SnapshotDay
from snapshots.tests.factories import EtlRunFactory, SnapshotFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2024, 5, 1)


def _noon(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)


@pytest.fixture
def on_day(time_machine):
    """The clock at noon UTC on DAY: a run without --date snapshots DAY."""
    time_machine.move_to(_noon(DAY))
    return time_machine


def _call(*args: str) -> str:
    out = StringIO()
    call_command("etl", *args, stdout=out)
    return out.getvalue()


def test_run_one_feed_prints_a_summary(etl, on_day):
    out = _call("run", "--feed", "airing", "--pages", "1")
    run = EtlRun.objects.get()
    assert out.strip() == (
        f"run #{run.pk} airing 2024-05-01: success, 1 pages, 1 requests, 25 loaded, 0 rejected, 0 duplicates"
    )
    assert run.trigger == EtlRun.Trigger.CLI


def test_run_all_feeds(etl, on_day):
    out = _call("run", "--all", "--date", "2024-05-01")
    assert out.count("success") == 6
    assert set(Snapshot.objects.values_list("feed", flat=True)) == {
        "top",
        "airing",
        "upcoming",
        "popular",
        "movies",
        "season",
    }


def test_run_that_fails_exits_non_zero_with_one_line_saying_why(etl, on_day):
    etl.inject("404")
    with pytest.raises(CommandError) as failure:
        _call("run", "--feed", "top")
    run = EtlRun.objects.get()
    assert str(failure.value) == f"run #{run.pk} top 2024-05-01 failed: {run.error}"
    assert "\n" not in str(failure.value)


def test_a_run_that_fails_on_a_bug_says_so_in_one_line_and_logs_the_traceback(etl, on_day, caplog):
    bug = RuntimeError("boom\nmore")
    with (
        mock.patch.object(services, "feed_snapshot", autospec=True, side_effect=bug),
        pytest.raises(CommandError) as failure,
    ):
        _call("run", "--feed", "top")
    assert str(failure.value) == "run of top 2024-05-01 failed: RuntimeError: boom"
    assert caplog.records[-1].exc_info is not None


def test_a_run_that_cannot_reach_the_database_prints_one_line_and_no_traceback():
    env = {**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:1/nowhere"}
    result = subprocess.run(
        [sys.executable, "manage.py", "etl", "run", "--feed", "top"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    # Log lines are JSON, for the log collector; the command itself says one thing.
    said = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert len(said) == 1
    assert said[0].startswith("CommandError: Database error: connection failed")
    assert all(json.loads(line) for line in result.stderr.splitlines() if line.startswith("{"))


def test_run_refuses_a_day_in_the_future_and_asks_jikan_nothing(etl, on_day):
    with pytest.raises(CommandError, match="2024-05-02 is in the future \\(today is 2024-05-01, UTC\\)"):
        _call("run", "--feed", "top", "--date", "2024-05-02")
    assert not EtlRun.objects.exists()
    assert etl.request_count() == 0


def test_run_refuses_a_past_day_without_pages_stored_that_day(etl, on_day):
    with pytest.raises(CommandError, match="No raw pages of top, airing, upcoming, popular, movies, season stored"):
        _call("run", "--all", "--date", "2024-04-30")
    assert not EtlRun.objects.exists()
    assert etl.request_count() == 0


def test_run_refuses_fresh_for_a_past_day(etl, on_day):
    with pytest.raises(CommandError, match="--fresh would store Jikan's numbers of today under 2024-04-30"):
        _call("run", "--feed", "top", "--date", "2024-04-30", "--fresh")


def test_a_past_day_resumes_from_the_pages_stored_that_day_and_asks_jikan_nothing(etl, on_day):
    etl.inject("latency", seconds=0, path="/top/anime")  # page 1 is stored
    etl.inject("404", path="/top/anime")  # page 2 fails for good
    with pytest.raises(CommandError):
        _call("run", "--feed", "top")
    on_day.move_to(_noon(DAY + dt.timedelta(days=1)))
    etl.reset()

    out = _call("run", "--feed", "top", "--date", "2024-05-01")

    assert "top 2024-05-01: success, 1 pages, 0 requests, 25 loaded" in out
    assert etl.request_count() == 0, "Jikan's numbers of today never go under a past day"
    assert SnapshotDay.objects.get(feed="top", taken_on=DAY).rows == 25


def test_a_past_day_is_not_resumed_from_pages_a_run_of_another_day_stored_under_it(etl, on_day):
    on_day.move_to(_noon(DAY + dt.timedelta(days=3)))
    services.feed_snapshot(feed="airing", taken_on=DAY)  # what `etl run --date` used to allow
    with pytest.raises(CommandError, match="No raw pages of airing stored on 2024-05-01"):
        _call("run", "--feed", "airing", "--date", "2024-05-01")


def _misdated_day(on_day) -> EtlRun:
    """airing's DAY written three days later from pages fetched then: today's numbers under a past date."""
    on_day.move_to(_noon(DAY + dt.timedelta(days=3)))
    run = services.feed_snapshot(feed="airing", taken_on=DAY)
    assert RawPage.objects.filter(run=run).exists()
    return run


def test_validate_finds_a_day_stored_under_a_date_its_rows_were_not_fetched_on(etl, on_day):
    run = _misdated_day(on_day)
    services.feed_snapshot(feed="airing", taken_on=DAY + dt.timedelta(days=3))  # a true day
    problem = (
        f"airing: 2024-05-01 was written by run #{run.pk}, started on 2024-05-04, from no page fetched on "
        "2024-05-01; remove it with `manage.py etl delete-day --feed airing --date 2024-05-01`"
    )
    out = StringIO()
    with pytest.raises(CommandError, match="1 problem"):
        call_command("etl", "validate", "--date", "2024-05-01", "--feed", "airing", stdout=out)
    assert out.getvalue().splitlines() == [problem]

    out = StringIO()
    with pytest.raises(CommandError):
        call_command("etl", "validate", "--feed", "airing", stdout=out)  # today's checks, and every day's date
    assert out.getvalue().splitlines() == [problem]


def test_validate_accepts_a_day_resumed_later_from_pages_fetched_that_day(etl, on_day):
    etl.inject("latency", seconds=0, path="/top/anime")
    etl.inject("404", path="/top/anime")
    with pytest.raises(CommandError):
        _call("run", "--feed", "top")
    on_day.move_to(_noon(DAY + dt.timedelta(days=1)))
    _call("run", "--feed", "top", "--date", "2024-05-01")
    out = _call("validate", "--date", "2024-05-01", "--feed", "top")
    assert "no problems found" in out


def test_delete_day_removes_the_feeds_day_its_runs_and_moves_the_data_version(etl, on_day):
    run = _misdated_day(on_day)
    kept = services.feed_snapshot(feed="top", taken_on=DAY + dt.timedelta(days=3))
    forget_data_version()
    before = data_version()

    out = _call("delete-day", "--feed", "airing", "--date", "2024-05-01")

    assert out == "Deleted airing 2024-05-01: 25 snapshot rows and 1 run(s).\n"
    assert not Snapshot.objects.filter(feed="airing").exists()
    assert not SnapshotDay.objects.filter(feed="airing").exists()
    assert not EtlRun.objects.filter(pk=run.pk).exists()
    assert not RawPage.objects.filter(run_id=run.pk).exists()
    assert Snapshot.objects.filter(run=kept).count() == kept.items_loaded, "other feeds keep their days"
    assert DataEdit.objects.get().what == "deleted the day airing 2024-05-01"
    forget_data_version()
    assert data_version() != before
    assert (
        _call("delete-day", "--feed", "airing", "--date", "2024-05-01") == "Nothing stored for airing on 2024-05-01.\n"
    )


def test_status_shows_every_feed_with_its_age():
    EtlRunFactory(feed="top", taken_on=DAY)
    out = _call("status")
    lines = out.splitlines()
    assert lines[0].split() == ["feed", "latest", "day", "age", "last", "run"]
    top = next(line for line in lines if line.startswith("top"))
    assert "2024-05-01" in top
    assert "success" in top
    assert next(line for line in lines if line.startswith("movies")).split()[1:3] == ["-", "never"]


def test_logs_lists_recent_runs_with_errors():
    EtlRunFactory(feed="top", status=EtlRun.Status.FAILED, error="Jikan is down")
    out = _call("logs", "--limit", "5")
    assert "top 2024-01-01: failed" in out
    assert "Jikan is down" in out


def test_logs_says_how_to_start_when_empty():
    assert "manage.py etl run --all" in _call("logs")


def test_validate_finds_no_problem_in_a_clean_day():
    for position in (1, 2, 3):
        SnapshotFactory(feed="top", taken_on=DAY, position=position, rank=position)
    assert "no problems found" in _call("validate", "--date", "2024-05-01", "--feed", "top")


def test_validate_reports_gaps_duplicates_and_drops():
    for position in (1, 2, 3, 4, 5):
        SnapshotFactory(feed="top", taken_on=DAY - dt.timedelta(days=1), position=position, rank=position)
    SnapshotFactory(feed="top", taken_on=DAY, position=1, rank=1)
    SnapshotFactory(feed="top", taken_on=DAY, position=1, rank=5)
    out = StringIO()
    with pytest.raises(CommandError, match="4 problem"):
        call_command("etl", "validate", "--date", "2024-05-01", "--feed", "top", stdout=out)
    text = out.getvalue()
    assert "duplicate positions [1]" in text
    assert "missing positions [2]" in text
    assert "rank gaps [(1, 5)]" in text
    assert "2 rows, down from 5 on 2024-04-30" in text


def test_validate_reports_a_missing_day():
    with pytest.raises(CommandError):
        _call("validate", "--date", "2024-05-01", "--feed", "movies")


def test_prune_prints_what_it_deleted():
    assert _call("prune", "--raw-days", "30", "--log-days", "30") == "Pruned 0 raw pages and 0 runs.\n"


def test_backfill_seasons_loads_each_season(etl):
    etl.serve("/seasons/2018/winter", ["v4_seasons_2018_winter_page1_2022-12-05.json"])
    out = _call("backfill-seasons", "--from", "2018", "--to", "2018")
    assert out.startswith("Backfilled 4 seasons:")


def test_backfill_seasons_rejects_impossible_years():
    with pytest.raises(CommandError, match="--from and --to must be years"):
        _call("backfill-seasons", "--from", "1800")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--feed", "nope"], "invalid choice: 'nope'"),
        (["run", "--feed", "top", "--date", "2024-13-01"], "expected a date as YYYY-MM-DD"),
        (["run", "--feed", "top", "--pages", "0"], "expected a positive whole number"),
        (["run"], "one of the arguments --feed --all is required"),
    ],
)
def test_bad_arguments_give_one_line_and_a_non_zero_exit(args, message):
    result = subprocess.run(
        [sys.executable, "manage.py", "etl", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
