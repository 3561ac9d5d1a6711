"""`manage.py etl <sub-command>`: run, inspect, validate and prune the Jikan ETL."""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any, NoReturn

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from snapshots import selectors, services
from snapshots.feeds import FEEDS
from snapshots.models import EtlRun
from snapshots.validation import FIRST_YEAR


def day_argument(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {value!r}") from None


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}")
    return int(value)


class OneLineErrorParser(CommandParser):
    """Bad arguments end in one line and exit code 2, without the usage block."""

    def error(self, message: str) -> NoReturn:
        if self.called_from_command_line:
            self.exit(2, f"{self.prog}: error: {message}\n")
        raise CommandError(f"Error: {message}")


class Command(BaseCommand):
    help = "Run and inspect the Jikan ETL: run, status, logs, validate, prune, backfill-seasons."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(
            dest="action",
            required=True,
            metavar="{run,status,logs,validate,prune,backfill-seasons}",
            parser_class=OneLineErrorParser,
        )

        run = commands.add_parser("run", help="Snapshot one feed, or all, for a day.")
        which = run.add_mutually_exclusive_group(required=True)
        which.add_argument("--feed", choices=list(FEEDS), help="The feed to snapshot.")
        which.add_argument("--all", action="store_true", help="Snapshot every feed.")
        run.add_argument("--pages", type=_positive, help="Page budget (default: the feed's, from settings).")
        run.add_argument("--date", type=day_argument, help="The snapshot day, YYYY-MM-DD (default: today, UTC).")
        run.add_argument("--fresh", action="store_true", help="Ask Jikan again even if today's pages are stored.")

        commands.add_parser("status", help="Latest run and data age per feed.")

        logs = commands.add_parser("logs", help="The most recent runs.")
        logs.add_argument("--limit", type=_positive, default=20, help="How many runs (default 20).")

        validate = commands.add_parser("validate", help="Check a day's snapshots for integrity problems.")
        validate.add_argument("--date", type=day_argument, help="The day to check (default: today, UTC).")
        validate.add_argument("--feed", choices=list(FEEDS), help="Only this feed (default: all).")

        prune = commands.add_parser("prune", help="Delete old raw pages and run logs.")
        prune.add_argument(
            "--raw-days",
            type=_positive,
            help=f"Keep raw pages this many days (default: RAW_RETENTION_DAYS, now {settings.RAW_RETENTION_DAYS}).",
        )
        prune.add_argument(
            "--log-days",
            type=_positive,
            help=f"Keep runs this many days (default: LOG_RETENTION_DAYS, now {settings.LOG_RETENTION_DAYS}).",
        )

        backfill = commands.add_parser("backfill-seasons", help="Load every season's titles since a year.")
        backfill.add_argument("--from", dest="from_year", type=int, required=True, help="First year, e.g. 2015.")
        backfill.add_argument("--to", dest="to_year", type=int, help="Last year (default: this year).")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"].replace("-", "_")
        getattr(self, f"handle_{action}")(**options)

    def handle_run(
        self, *, feed: str | None, all: bool, pages: int | None, date: date | None, fresh: bool, **_: Any
    ) -> None:
        taken_on = date or timezone.now().date()
        failed = 0
        for name in list(FEEDS) if all else [feed]:
            assert name is not None
            with tqdm(desc=f"{name} {taken_on}", unit="page", disable=self.stdout.isatty() is False) as bar:
                run = services.feed_snapshot(
                    feed=name,
                    taken_on=taken_on,
                    trigger=EtlRun.Trigger.CLI,
                    pages=pages,
                    fresh=fresh,
                    on_page=lambda done, total: _advance(bar, done, total),
                )
            self.stdout.write(_summary(run))
            failed += run.status in (EtlRun.Status.FAILED, EtlRun.Status.SKIPPED)
        if failed:
            raise CommandError(f"{failed} run(s) did not succeed; see `manage.py etl logs`.")

    def handle_status(self, **_: Any) -> None:
        self.stdout.write(f"{'feed':<10} {'latest day':<12} {'age':>8}  last run")
        for row in selectors.feed_statuses():
            age = "never" if row["age_hours"] is None else f"{row['age_hours']:.1f} h"
            last = row["last_run"]
            last_text = f"#{last.pk} {last.status} {last.taken_on}" if last else "none"
            stale = "  STALE" if row["stale"] else ""
            self.stdout.write(f"{row['feed']:<10} {row['latest_day'] or '-'!s:<12} {age:>8}  {last_text}{stale}")

    def handle_logs(self, *, limit: int, **_: Any) -> None:
        runs = selectors.recent_runs(limit=limit)
        if not runs:
            self.stdout.write("No runs yet. Start one with: manage.py etl run --all")
        for run in runs:
            self.stdout.write(_summary(run) + (f" — {run.error}" if run.error else ""))

    def handle_validate(self, *, date: date | None, feed: str | None, **_: Any) -> None:
        taken_on = date or timezone.now().date()
        problems = [
            p for name in ([feed] if feed else FEEDS) for p in selectors.snapshot_problems(feed=name, taken_on=taken_on)
        ]
        for problem in problems:
            self.stdout.write(problem)
        if problems:
            raise CommandError(f"{len(problems)} problem(s) in the snapshots of {taken_on}.")
        self.stdout.write(f"{taken_on}: no problems found.")

    def handle_prune(self, *, raw_days: int | None, log_days: int | None, **_: Any) -> None:
        raw_pages, runs = services.etl_prune(raw_days=raw_days, log_days=log_days)
        self.stdout.write(f"Pruned {raw_pages} raw pages and {runs} runs.")

    def handle_backfill_seasons(self, *, from_year: int, to_year: int | None, **_: Any) -> None:
        this_year = timezone.now().year
        to_year = to_year or this_year
        if not FIRST_YEAR <= from_year <= to_year <= this_year + 1:
            raise CommandError(f"--from and --to must be years with {FIRST_YEAR} <= from <= to <= {this_year + 1}.")
        runs = services.seasons_backfill(from_year=from_year, to_year=to_year)
        loaded = sum(run.items_loaded for run in runs)
        failed = [run.feed for run in runs if run.status == EtlRun.Status.FAILED]
        self.stdout.write(f"Backfilled {len(runs)} seasons: {loaded} titles loaded, {len(failed)} failed.")
        if failed:
            raise CommandError(f"Failed seasons: {', '.join(failed)}")


def _advance(bar: tqdm, done: int, total: int | None) -> None:
    bar.total = total
    bar.update(done - bar.n)


def _summary(run: EtlRun) -> str:
    return (
        f"run #{run.pk} {run.feed} {run.taken_on}: {run.status}, {run.pages} pages, {run.requests} requests, "
        f"{run.items_loaded} loaded, {run.items_rejected} rejected, {run.items_duplicate} duplicates"
    )
