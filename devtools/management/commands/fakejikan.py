"""`manage.py fakejikan`: serve the fake Jikan v4 in the foreground, for the demo and benchmarks."""

from __future__ import annotations

import argparse
from time import sleep
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from devtools.fakejikan import FakeJikan
from snapshots.management.commands.etl import day_argument


def _count(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}")
    return int(value)


class Command(BaseCommand):
    help = "Serve a fake Jikan v4 on 127.0.0.1 until Ctrl-C (point JIKAN_BASE_URL at the URL it prints)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=_count, default=8001, help="Port on 127.0.0.1 (default 8001; 0: any).")
        parser.add_argument("--day", type=day_argument, help="Simulated day, YYYY-MM-DD (default: today, UTC).")
        parser.add_argument("--catalogue-size", type=_count, help="Grow the catalogue to N titles (benchmarks).")
        parser.add_argument("--seed", type=int, default=7, help="Seed of the daily drift (default 7).")
        parser.add_argument(
            "--demo", action="store_true", help="Serve seed_demo's catalogue (dates in the day's calendar, surges)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        fake = FakeJikan(
            day=options["day"],
            catalogue_size=options["catalogue_size"],
            seed=options["seed"],
            port=options["port"],
            demo=options["demo"],
        )
        with fake:
            self.stdout.write(f"Fake Jikan serving {fake.base_url} (day {fake.day}); Ctrl-C to stop.")
            try:
                while True:
                    sleep(3600)
            except KeyboardInterrupt:
                self.stdout.write("Stopped.")
