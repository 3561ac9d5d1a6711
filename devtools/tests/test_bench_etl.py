"""`manage.py bench_etl`: its report and verdicts at tiny sizes, and nothing timed that is not a whole run."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from devtools.management.commands.bench_etl import _merge_day, _snapshot_run, parse_rows
from snapshots import services
from snapshots.models import EtlRun, Snapshot
from snapshots.staging import Staging


# transaction=True: the bench creates and drops a database of its own beside the test database.
@pytest.mark.django_db(transaction=True)
def test_bench_etl_runs_its_three_scenarios_in_a_throwaway_database():
    """A smoke run at a tiny size: the figures themselves are the command's business, not a test's."""
    out = StringIO()
    call_command("bench_etl", "--pages", "2", "--requests", "2", "--history-rows", "0", stdout=out)
    text = out.getvalue()
    assert "(a) limiter off" in text
    assert "(c) default limiter" in text
    assert "ratio" in text
    assert "of the 1 s the default rate limit needs for them" in text
    assert "target: under 5%" in text
    assert "ceiling without the database (fetch, decode and validate the same 2 pages)" in text
    assert "(d)" not in text, "--history-rows 0 skips the merge scenario"
    assert "verdict:" in text.splitlines()[-1]
    assert not EtlRun.objects.exists(), "the benchmark writes to its own database only"


@pytest.mark.django_db(transaction=True)
def test_bench_etl_merges_a_day_into_an_empty_database_and_into_a_history():
    out = StringIO()
    call_command("bench_etl", "--pages", "4", "--requests", "3", "--history-rows", "2000", stdout=out)
    lines = out.getvalue().splitlines()
    table = lines[lines.index(next(line for line in lines if line.startswith("database "))) :]
    assert [row.split()[0] for row in table[1:5]] == ["empty", "empty", "history", "history"]
    empty, empty_next, long, long_next = ([int(n.replace(",", "")) for n in row.split()[-5:-3]] for row in table[1:5])
    # (rows before, titles known): the second day merges with the first day's 100 titles.
    assert empty == [0, 0]
    assert empty_next == [100, 100]
    assert long[0] > 2000
    assert long_next == [long[0] + 100, 100]
    verdicts = [line for line in lines if line.startswith(("PASS", "MISS"))]
    assert len(verdicts) == 5
    assert "merge (d), titles known" in verdicts[-1]
    assert "target <= 2x" in verdicts[-1]
    assert lines[-1].startswith("verdict: ")
    assert not Snapshot.objects.exists()


@pytest.mark.parametrize(("text", "rows"), [("0", 0), ("2000", 2000), ("10k", 10_000), ("30M", 30_000_000)])
def test_bench_etl_reads_a_row_count_with_a_suffix(text, rows):
    assert parse_rows(text, "--history-rows", minimum=500, allow_zero=True) == rows


@pytest.mark.parametrize(("rows", "error"), [("many", "is not a row count"), ("100", "at least 500 rows")])
def test_bench_etl_rejects_a_bad_history_size(rows, error):
    with pytest.raises(CommandError, match=f"--history-rows: .*{error}"):
        call_command("bench_etl", "--history-rows", rows)


@pytest.mark.django_db
def test_bench_etl_times_a_day_merged_after_the_last_one(etl):
    result = _merge_day(1)
    assert result["items"] == 25
    assert result["rows_before"] == 0
    assert result["merge_seconds"] < result["seconds"]
    assert Snapshot.objects.get(position=1).taken_on == timezone.now().date() + dt.timedelta(days=1)
    assert _merge_day(1)["titles_known"] == 25


@pytest.mark.django_db
def test_bench_etl_refuses_to_time_a_run_that_loaded_less_than_every_item(etl, monkeypatch):
    monkeypatch.setattr(services, "_load", lambda *args, **kwargs: None)
    with pytest.raises(CommandError, match="benchmark run failed \\(0 of 25 items loaded\\)"):
        _snapshot_run(1, timezone.now().date())


@pytest.mark.django_db
def test_bench_etl_refuses_a_merge_that_wrote_no_rows(etl, monkeypatch):
    monkeypatch.setattr(Staging, "snapshots_replace", lambda self, **kwargs: None)
    with pytest.raises(CommandError, match="the day's snapshot rows is 0, not 25"):
        _merge_day(1)
