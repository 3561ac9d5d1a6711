from __future__ import annotations

import datetime as dt
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from snapshots.models import EtlRun, Snapshot
from snapshots.tests.factories import EtlRunFactory, SnapshotFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2024, 5, 1)


def _call(*args: str) -> str:
    out = StringIO()
    call_command("etl", *args, stdout=out)
    return out.getvalue()


def test_run_one_feed_prints_a_summary(etl):
    out = _call("run", "--feed", "airing", "--date", "2024-05-01", "--pages", "1")
    run = EtlRun.objects.get()
    assert out.strip() == (
        f"run #{run.pk} airing 2024-05-01: success, 1 pages, 1 requests, 25 loaded, 0 rejected, 0 duplicates"
    )
    assert run.trigger == EtlRun.Trigger.CLI


def test_run_all_feeds(etl):
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


def test_run_that_fails_exits_non_zero(etl):
    etl.inject("404")
    with pytest.raises(CommandError, match="1 run\\(s\\) did not succeed"):
        _call("run", "--feed", "top", "--date", "2024-05-01")


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
