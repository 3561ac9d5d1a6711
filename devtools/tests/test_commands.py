"""devtools' commands: the demo seed and the benchmarks, run at tiny sizes."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from analytics.tests.seed import seed_history
from snapshots.models import EtlRun, Snapshot

pytestmark = pytest.mark.django_db


def test_seed_demo_writes_a_simulated_history():
    out = StringIO()
    call_command("seed_demo", "--days", "2", stdout=out)
    assert "Seeded 2 days of simulated history" in out.getvalue()
    days = set(Snapshot.objects.values_list("taken_on", flat=True))
    assert len(days) == 2
    assert set(EtlRun.objects.values_list("trigger", flat=True)) == {EtlRun.Trigger.DEMO}
    # Simulated drift: the same title does not keep exactly the same numbers from day to day.
    members = Snapshot.objects.filter(feed="popular").values_list("anime", "taken_on", "members")
    by_anime: dict[int, set[int]] = {}
    for anime, _, count in members:
        by_anime.setdefault(anime, set()).add(count)
    assert any(len(counts) == 2 for counts in by_anime.values())
    again = StringIO()
    call_command("seed_demo", "--days", "2", "--if-empty", stdout=again)
    assert "nothing seeded" in again.getvalue()


def test_seed_demo_rejects_a_silly_number_of_days():
    with pytest.raises(CommandError, match="--days must be between 1 and 3650"):
        call_command("seed_demo", "--days", "0")


@pytest.mark.django_db(transaction=True)
def test_bench_etl_runs_its_three_scenarios_in_a_throwaway_database():
    """A smoke run at a tiny size: the figures themselves are the command's business, not a test's."""
    out = StringIO()
    call_command("bench_etl", "--pages", "2", "--requests", "2", stdout=out)
    text = out.getvalue()
    assert "(a) limiter off" in text
    assert "(c) default limiter" in text
    assert "ratio" in text
    assert "of the 1 s the default rate limit needs for them" in text
    assert "ceiling without the database (fetch, decode and validate the same 2 pages)" in text
    assert not EtlRun.objects.exists(), "the benchmark writes to its own database only"


def test_bench_pages_prints_warm_and_cold_percentiles():
    seed_history(days=2, titles=3)
    out = StringIO()
    call_command("bench_pages", "-n", "1", stdout=out)
    text = out.getvalue()
    assert "warm p95" in text
    assert "/trending/" in text
    assert "7 pages x 1 requests" in text
