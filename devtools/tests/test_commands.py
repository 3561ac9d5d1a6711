"""devtools' commands: the demo seed and the benchmarks, run at tiny sizes."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from analytics import selectors
from analytics.tests.seed import seed_history
from snapshots.feeds import FEEDS
from snapshots.models import Anime, EtlRun, Snapshot
from snapshots.validation import SEASONS

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
    call_command("seed_demo", "--days", "2", "--top-up", stdout=again)
    assert "already up to date" in again.getvalue()
    assert Snapshot.objects.values("taken_on").distinct().count() == 2


def test_seed_demo_history_shows_every_trend_in_several_feeds():
    # Ten days: enough for the weekly comparison and for new entries (a day before the last week).
    call_command("seed_demo", "--days", "10", stdout=StringIO())
    trends = {
        "climbers": lambda feed: selectors.rank_climbers(feed=feed, window=7, as_of=None),
        "fallers": lambda feed: selectors.rank_fallers(feed=feed, window=7, as_of=None),
        "new entries": lambda feed: selectors.new_entries(feed=feed, as_of=None),
        "streaks": lambda feed: selectors.top_streaks(feed=feed, as_of=None),
    }
    lively = {name: [feed for feed in FEEDS if trend(feed)["results"]] for name, trend in trends.items()}
    assert all(len(feeds) >= 2 for feeds in lively.values()), lively
    # Climbers and fallers move in the feed's own rank: positions move too, not only MAL's score rank.
    assert set(lively["climbers"]) - {"top"}, lively


def test_seed_demo_seasons_follow_the_demo_calendar():
    call_command("seed_demo", "--days", "1", stdout=StringIO())
    today = timezone.now().date()
    this_season = (today.year, SEASONS[(today.month - 1) // 3])
    airing_now = Anime.objects.filter(snapshots__feed="season", snapshots__taken_on=today).distinct()
    assert set(airing_now.values_list("year", "season")) == {this_season}
    # The seasonal chart's default range (the last 5 years) shows several seasons with enough titles each.
    seasons = selectors.seasonal_trends()
    assert seasons["to_year"] == today.year
    assert len([s for s in seasons["results"] if s["volume"] >= 3]) >= 2, seasons["results"]


def test_seed_demo_top_up_adds_the_days_missing_up_to_today():
    today = timezone.now().date()
    with time_machine.travel(today - dt.timedelta(days=3)):
        call_command("seed_demo", "--days", "2", stdout=StringIO())
    out = StringIO()
    call_command("seed_demo", "--days", "2", "--top-up", stdout=out)
    days = sorted(set(Snapshot.objects.values_list("taken_on", flat=True)))
    # At most --days days are added: the day in between stays a gap rather than a long wait.
    assert days == [today - dt.timedelta(days=n) for n in (4, 3, 1, 0)]
    assert f"Topped up 2 days of simulated history ({today - dt.timedelta(days=1)} to {today})" in out.getvalue()


def test_seed_demo_never_mixes_simulated_days_into_real_history():
    seed_history(days=2, titles=3)
    out = StringIO()
    call_command("seed_demo", "--days", "2", "--top-up", stdout=out)
    assert "real snapshots" in out.getvalue()
    assert not EtlRun.objects.filter(trigger=EtlRun.Trigger.DEMO).exists()


def test_seed_demo_rejects_a_silly_number_of_days():
    with pytest.raises(CommandError, match="--days must be between 1 and 3650"):
        call_command("seed_demo", "--days", "0")


def test_bench_pages_prints_warm_and_cold_percentiles():
    # Long enough for the monthly lists, and titles enough to enter and leave the top 50.
    seed_history(days=40, titles=60)
    out = StringIO()
    call_command("bench_pages", "-n", "1", stdout=out)
    text = out.getvalue()
    assert "warm p95" in text
    assert "/trending/" in text
    assert "/search/?q=Series" in text  # a word that finds several titles: a page, not a redirect
    assert "/data-version/" in text
    assert "9 pages x 1 requests" in text


def test_bench_pages_refuses_to_time_a_page_drawn_from_empty_answers():
    seed_history(days=2, titles=3)  # too short for any comparison
    with pytest.raises(CommandError, match="GET / draws an empty answer from"):
        call_command("bench_pages", "-n", "1", stdout=StringIO())
