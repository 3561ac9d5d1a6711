"""`manage.py etl <sub-command>`: run, inspect, validate, prune and mend the Jikan ETL."""

from __future__ import annotations

import argparse
import logging
from datetime import date
from typing import Any, NoReturn

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.utils import timezone
from tqdm import tqdm

from snapshots import selectors, services
from snapshots.feeds import FEEDS
from snapshots.models import EtlRun
from snapshots.validation import FIRST_YEAR

logger = logging.getLogger(__name__)


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
    help = "Run and inspect the Jikan ETL: run, status, logs, validate, prune, backfill-seasons, delete-day."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(
            dest="action",
            required=True,
            metavar="{run,status,logs,validate,prune,backfill-seasons,delete-day}",
            parser_class=OneLineErrorParser,
        )

        run = commands.add_parser("run", help="Snapshot one feed, or all, for a day.")
        which = run.add_mutually_exclusive_group(required=True)
        which.add_argument("--feed", choices=list(FEEDS), help="The feed to snapshot.")
        which.add_argument("--all", action="store_true", help="Snapshot every feed.")
        run.add_argument("--pages", type=_positive, help="Page budget (default: the feed's, from settings).")
        run.add_argument(
            "--date",
            type=day_argument,
            help="The snapshot day, YYYY-MM-DD (default: today, UTC). A past day is only resumed from the raw "
            "pages stored that day; Jikan has no history.",
        )
        run.add_argument("--fresh", action="store_true", help="Ask Jikan again even if today's pages are stored.")

        commands.add_parser("status", help="Latest run and data age per feed.")

        logs = commands.add_parser("logs", help="The most recent runs.")
        logs.add_argument("--limit", type=_positive, default=20, help="How many runs (default 20).")

        validate = commands.add_parser(
            "validate", help="Check a day's snapshots for integrity problems, and find days stored under a wrong date."
        )
        validate.add_argument(
            "--date", type=day_argument, help="The day to check (default: today, UTC, and every day's date)."
        )
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

        delete_day = commands.add_parser(
            "delete-day", help="Delete a feed's day: its snapshots and runs (a day stored under a wrong date)."
        )
        delete_day.add_argument("--feed", choices=list(FEEDS), required=True, help="The feed.")
        delete_day.add_argument("--date", type=day_argument, required=True, help="The day, YYYY-MM-DD.")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"].replace("-", "_")
        try:
            getattr(self, f"handle_{action}")(**options)
        except DatabaseError as exc:
            # The database is down or refused: one line to act on, not a traceback.
            raise CommandError(f"Database error: {_first_line(exc)}") from exc

    def handle_run(
        self, *, feed: str | None, all: bool, pages: int | None, date: date | None, fresh: bool, **_: Any
    ) -> None:
        taken_on = date or timezone.now().date()
        names = list(FEEDS) if all else [feed or ""]
        try:
            replay = services.day_is_replay(feeds=names, taken_on=taken_on, fresh=fresh)
        except services.DayRefused as exc:
            raise CommandError(str(exc)) from exc
        failures = []
        for name in names:
            with tqdm(desc=f"{name} {taken_on}", unit="page", disable=self.stdout.isatty() is False) as bar:
                try:
                    run = services.feed_snapshot(
                        feed=name,
                        taken_on=taken_on,
                        trigger=EtlRun.Trigger.CLI,
                        pages=pages,
                        fresh=fresh,
                        stored_only=replay,
                        on_page=lambda done, total: _advance(bar, done, total),
                    )
                except DatabaseError:
                    raise
                except Exception as exc:
                    # The run is recorded as failed; the traceback goes to the log, one line here.
                    logger.exception("run of %s for %s failed", name, taken_on)
                    failures.append(f"run of {name} {taken_on} failed: {exc.__class__.__name__}: {_first_line(exc)}")
                    continue
            self.stdout.write(_summary(run))
            if run.status in (EtlRun.Status.FAILED, EtlRun.Status.SKIPPED):
                failures.append(f"run #{run.pk} {run.feed} {run.taken_on} {run.status}: {_first_line(run.error)}")
        if failures:
            raise CommandError("; ".join(failures))

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
        # Without --date, every day's date is checked: a misdated day is usually a past one.
        problems += selectors.misdated_days(feed=feed, taken_on=date)
        for problem in problems:
            self.stdout.write(problem)
        if problems:
            raise CommandError(f"{len(problems)} problem(s) found.")
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

    def handle_delete_day(self, *, feed: str, date: date, **_: Any) -> None:
        try:
            rows, runs = services.day_delete(feed=feed, taken_on=date)
        except services.DayRefused as exc:
            raise CommandError(str(exc)) from exc
        if rows or runs:
            self.stdout.write(f"Deleted {feed} {date}: {rows} snapshot rows and {runs} run(s).")
        else:
            self.stdout.write(f"Nothing stored for {feed} on {date}.")


def _first_line(error: object) -> str:
    return str(error).strip().split("\n", 1)[0]


def _advance(bar: tqdm, done: int, total: int | None) -> None:
    bar.total = total
    bar.update(done - bar.n)


def _summary(run: EtlRun) -> str:
    return (
        f"run #{run.pk} {run.feed} {run.taken_on}: {run.status}, {run.pages} pages, {run.requests} requests, "
        f"{run.items_loaded} loaded, {run.items_rejected} rejected, {run.items_duplicate} duplicates"
    )
