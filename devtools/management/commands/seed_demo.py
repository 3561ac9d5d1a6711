"""`manage.py seed_demo --days 90`: write a simulated history by running the real ETL day by day."""

from __future__ import annotations

import datetime as dt
from typing import Any

import time_machine
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Max
from django.test import override_settings
from django.utils import timezone
from tqdm import tqdm

from devtools.fakejikan import FakeJikan
from snapshots import services
from snapshots.feeds import FEEDS
from snapshots.models import EtlRun, Snapshot


class Command(BaseCommand):
    help = (
        "Fill the database with a simulated history: the real ETL runs once per feed and day against the "
        "built-in fake Jikan (real titles in today's calendar, simulated daily drift and weekly surges), with "
        "the clock set to each day."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=90, help="Days of history ending today (default 90).")
        parser.add_argument(
            "--top-up",
            action="store_true",
            help="If the database already has the demo history, add only the days since its last day (at most "
            "--days); if it has real snapshots, do nothing.",
        )

    def handle(self, *args: Any, days: int, top_up: bool, **options: Any) -> None:
        if not 1 <= days <= 3650:
            raise CommandError("--days must be between 1 and 3650.")
        today = timezone.now().date()
        first = today - dt.timedelta(days=days - 1)
        topping_up = top_up and Snapshot.objects.exists()
        if topping_up:
            if Snapshot.objects.exclude(run__trigger=EtlRun.Trigger.DEMO).exists():
                self.stdout.write("The database has real snapshots; no simulated day is added to them.")
                return
            last = Snapshot.objects.aggregate(day=Max("taken_on"))["day"]
            if last >= today:
                self.stdout.write(f"The demo history is already up to date ({last}); nothing seeded.")
                return
            first = max(first, last + dt.timedelta(days=1))
        seeded = (today - first).days + 1
        failed = self._seed(first=first, days=seeded)
        rows = Snapshot.objects.count()
        done = "Topped up" if topping_up else "Seeded"
        self.stdout.write(f"{done} {seeded} days of simulated history ({first} to {today}): {rows} snapshot rows.")
        if failed:
            raise CommandError(f"{failed} simulated run(s) failed; see `manage.py etl logs`.")

    def _seed(self, *, first: dt.date, days: int) -> int:
        """Run every feed on each day from `first`; the number of failed runs."""
        failed = 0
        # The fake answers instantly, so Jikan's rate limit is lifted for the seed only.
        with (
            FakeJikan(day=first, demo=True) as fake,
            override_settings(JIKAN_BASE_URL=fake.base_url, JIKAN_RATE_PER_SECOND=0, JIKAN_RATE_PER_MINUTE=0),
        ):
            for offset in tqdm(range(days), desc="seeding days", unit="day", disable=not self.stdout.isatty()):
                day = first + dt.timedelta(days=offset)
                fake.day = day
                # Runs happen at 00:10 UTC of their day, as beat would start them.
                with time_machine.travel(dt.datetime.combine(day, dt.time(0, 10), tzinfo=dt.UTC), tick=True):
                    for feed in FEEDS:
                        run = services.feed_snapshot(feed=feed, taken_on=day, trigger=EtlRun.Trigger.DEMO)
                        failed += run.status == EtlRun.Status.FAILED
        return failed
