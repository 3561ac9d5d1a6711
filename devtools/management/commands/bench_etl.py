"""`manage.py bench_etl`: throughput, memory and rate-limit precision of the ETL against the fake Jikan, and
how a whole-catalogue day's merge holds up over a long history."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Max
from django.utils import timezone

from devtools import history
from devtools.benchdb import bench_database, child_env, peak_rss_mb, run_child
from devtools.fakejikan import FakeJikan
from snapshots import jikan, services
from snapshots.feeds import get_feed
from snapshots.models import EtlRun, Snapshot, SnapshotDay

DAY = dt.date(2024, 1, 1)
PROCESSING_TARGET = 0.05  # of the time the default rate limit needs for the same requests
RSS_GROWTH_TARGET = 0.10
RSS_TARGET_MB = 300.0
LIMITER_TARGET = 1.05
MERGE_TARGET = 2.0  # a day's merge into the long history / into an empty database
DEFAULT_HISTORY_ROWS = "30M"
MIN_HISTORY_ROWS = 500


class Command(BaseCommand):
    help = (
        "Benchmark the ETL in a throw-away database: (a) N pages with the limiter off (items/s, peak RSS), "
        "(b) the same at N/10 pages (memory must not grow with pages), (c) R requests at the default rate "
        "limit (wall time / the limiter's bound), (d) the same day as (a) merged into an empty database and "
        "into one holding --history-rows of history. Each scenario runs in a fresh process."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pages", type=int, default=1000, help="Pages of scenario (a) (default 1000).")
        parser.add_argument("--requests", type=int, default=30, help="Requests of scenario (c) (default 30).")
        parser.add_argument(
            "--history-rows",
            default=DEFAULT_HISTORY_ROWS,
            help=f"Rows of history for (d), k/M suffixes allowed; 0 skips (d) (default {DEFAULT_HISTORY_ROWS}).",
        )
        parser.add_argument(
            "--child", choices=["unlimited", "limited", "extract", "fill", "merge"], help=argparse.SUPPRESS
        )
        parser.add_argument("--child-pages", type=int, default=0, help=argparse.SUPPRESS)
        parser.add_argument("--child-rows", type=int, default=0, help=argparse.SUPPRESS)

    def handle(
        self,
        *args: Any,
        pages: int,
        requests: int,
        history_rows: str,
        child: str | None,
        child_pages: int,
        child_rows: int,
        **_: Any,
    ) -> None:
        if child:
            self.stdout.write(json.dumps(_child(child, pages=child_pages, rows=child_rows)))
            return
        if pages < 1 or requests < 2:
            raise CommandError("--pages must be at least 1 and --requests at least 2.")
        rows = parse_rows(history_rows, "--history-rows", minimum=MIN_HISTORY_ROWS, allow_zero=True)
        with FakeJikan(day=DAY, catalogue_size=pages * 25) as fake:
            self.stdout.write(f"fake Jikan at {fake.base_url}, catalogue of {pages * 25} titles; warming its cache")
            _warm(fake.base_url, pages)
            missed = self._report(self._throughput(fake, pages, requests))
            if rows:
                missed += self._report_merge(self._merge(fake, pages, rows))
        checked = "a-c" + (" and d" if rows else "")
        self.stdout.write(
            f"\nverdict: {missed} target(s) missed (scenarios {checked})"
            if missed
            else f"\nverdict: every target met (scenarios {checked})"
        )

    def _throughput(self, fake: FakeJikan, pages: int, requests: int) -> dict[str, dict[str, float]]:
        results = {}
        with bench_database("bench_etl") as url:
            unlimited = child_env(url, JIKAN_BASE_URL=fake.base_url, JIKAN_RATE_PER_SECOND="0")
            for label, count in (("a", pages), ("b", max(1, pages // 10))):
                results[label] = _run_child("unlimited", unlimited, pages=count)
            results["extract"] = _run_child("extract", unlimited, pages=pages)
            limited = child_env(url, JIKAN_BASE_URL=fake.base_url)
            limited.pop("JIKAN_RATE_PER_SECOND", None)
            limited.pop("JIKAN_RATE_PER_MINUTE", None)
            fake.reset()
            results["c"] = _run_child("limited", limited, pages=requests)
            # The limiter's precision: from the first request the fake received to the last one.
            results["c"]["request_span"] = fake.requests[-1].at - fake.requests[0].at
        return results

    def _report(self, results: dict[str, dict[str, float]]) -> int:
        """Print (a)-(c) and their verdicts; return how many targets they miss."""
        a, b, c = results["a"], results["b"], results["c"]
        self.stdout.write(f"{'scenario':<34}{'pages':>7}{'items':>9}{'seconds':>9}{'items/s':>10}{'peak RSS MB':>13}")
        for label, row in (("(a) limiter off", a), ("(b) limiter off", b), ("(c) default limiter", c)):
            self.stdout.write(
                f"{label:<34}{row['pages']:>7}{row['items']:>9}{row['seconds']:>9.2f}"
                f"{row['items'] / row['seconds']:>10.0f}{row['peak_rss_mb']:>13.1f}"
            )
        extract = results["extract"]
        self.stdout.write(
            f"ceiling without the database (fetch, decode and validate the same {extract['pages']} pages): "
            f"{extract['items'] / extract['seconds']:.0f} items/s"
        )
        # Jikan's rate limit, not the ETL, sets how long a real run takes: the processing must be a small
        # share of the time the limiter needs to fetch the same pages.
        fetch_bound = _limiter_seconds(int(a["requests"]))
        share = a["seconds"] / fetch_bound
        growth = (a["peak_rss_mb"] - b["peak_rss_mb"]) / b["peak_rss_mb"]
        bound = _limiter_seconds(int(c["requests"]))
        ratio = c["request_span"] / bound
        verdicts = [
            (
                share < PROCESSING_TARGET,
                f"processing (a): {a['seconds']:.1f} s for {a['requests']} requests = {share:.1%} of the "
                f"{fetch_bound:.0f} s the default rate limit needs for them ({a['items'] / a['seconds']:.0f} "
                f"items/s; target: under {PROCESSING_TARGET:.0%})",
            ),
            (
                abs(growth) <= RSS_GROWTH_TARGET and max(a["peak_rss_mb"], b["peak_rss_mb"]) < RSS_TARGET_MB,
                f"peak RSS (a) vs (b): {a['peak_rss_mb']:.1f} vs {b['peak_rss_mb']:.1f} MB, {growth:+.1%} "
                f"(target within {RSS_GROWTH_TARGET:.0%}, both under {RSS_TARGET_MB:.0f} MB)",
            ),
            (
                ratio <= LIMITER_TARGET,
                f"rate limit (c): {c['requests']} requests spread over {c['request_span']:.2f} s; bound "
                f"{bound:.2f} s; ratio {ratio:.3f} (target <= {LIMITER_TARGET}); whole run {c['seconds']:.2f} s",
            ),
        ]
        return self._verdicts(verdicts)

    def _verdicts(self, verdicts: list[tuple[bool, str]]) -> int:
        for met, line in verdicts:
            self.stdout.write(f"{'PASS' if met else 'MISS'}  {line}")
        return sum(not met for met, _ in verdicts)

    def _merge(self, fake: FakeJikan, pages: int, rows: int) -> dict[str, list[dict[str, Any]]]:
        """(d): the day of (a), then the next day, merged into an empty database and into `rows` of history.

        The fake's titles are not the history's (it clones its titles under ids from 900000, the history
        uses 1 to about 29,400): the first day brings new titles to both databases, as a first run does,
        and the second merges with titles known, as every later day does. Each run is a fresh process, so
        its peak RSS is the run's own, not the fill's.
        """
        results: dict[str, list[dict[str, Any]]] = {}
        for label, count in (("empty", 0), ("history", rows)):
            with bench_database("bench_etl") as url:
                env = child_env(url, JIKAN_BASE_URL=fake.base_url, JIKAN_RATE_PER_SECOND="0")
                if count:
                    self.stdout.write(f"\n(d) filling {count:,} rows of history (COPY, then VACUUM ANALYZE)")
                    filled = _run_child("fill", env, rows=count)
                    self.stdout.write(
                        f"filled {filled['rows']:,} rows ({filled['days']} days) in {filled['fill_seconds']:.0f} s, "
                        f"VACUUM ANALYZE {filled['analyze_seconds']:.0f} s, peak RSS {filled['peak_rss_mb']:.0f} MB"
                    )
                results[label] = [_run_child("merge", env, pages=pages) for _ in range(2)]
        return results

    def _report_merge(self, results: dict[str, list[dict[str, Any]]]) -> int:
        self.stdout.write(
            f"\n(d) merge of a whole-catalogue day ({results['empty'][0]['items']:,} titles of popular), limiter "
            "off; run = extract + validate + merge, merge = the load's one transaction"
        )
        self.stdout.write(
            f"{'database':<26}{'rows before':>13}{'titles known':>14}{'run s':>8}{'merge s':>9}{'peak RSS MB':>13}"
        )
        for label, runs in results.items():
            for n, row in enumerate(runs):
                name = label + (" + 1 day" if n else "")
                self.stdout.write(
                    f"{name:<26}{row['rows_before']:>13,}{row['titles_known']:>14,}{row['seconds']:>8.2f}"
                    f"{row['merge_seconds']:>9.2f}{row['peak_rss_mb']:>13.1f}"
                )
        verdicts = []
        for n, titles in enumerate(("new titles", "titles known")):
            empty, long = results["empty"][n], results["history"][n]
            ratio = long["merge_seconds"] / empty["merge_seconds"]
            verdicts.append(
                (
                    ratio <= MERGE_TARGET and long["peak_rss_mb"] < RSS_TARGET_MB,
                    f"merge (d), {titles}: {long['merge_seconds']:.2f} s over {long['rows_before']:,} rows vs "
                    f"{empty['merge_seconds']:.2f} s without = {ratio:.2f}x (whole run "
                    f"{long['seconds'] / empty['seconds']:.2f}x; target <= {MERGE_TARGET:g}x, peak RSS "
                    f"{long['peak_rss_mb']:.0f} MB < {RSS_TARGET_MB:.0f} MB)",
                )
            )
        return self._verdicts(verdicts)


def parse_rows(text: str, option: str, *, minimum: int, allow_zero: bool = False) -> int:
    """A row count as given on the command line: 30000000, 30000k or 30M."""
    value = text.strip().lower()
    multiplier = {"k": 1_000, "m": 1_000_000}.get(value[-1:], 1)
    try:
        count = int(value[:-1] if multiplier > 1 else value) * multiplier
    except ValueError:
        raise CommandError(f"{option}: {text!r} is not a row count (e.g. 100000, 100k, 1M)") from None
    if count < minimum and not (allow_zero and count == 0):
        raise CommandError(f"{option}: at least {minimum} rows{' (or 0)' if allow_zero else ''}, not {count}")
    return count


def _run_child(kind: str, env: dict[str, str], *, pages: int = 0, rows: int = 0) -> dict[str, Any]:
    out = run_child(["bench_etl", "--child", kind, "--child-pages", str(pages), "--child-rows", str(rows)], env)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _child(kind: str, *, pages: int, rows: int) -> dict[str, Any]:
    if kind == "extract":
        return _extract_only(pages)
    if kind == "fill":
        return _fill(rows)
    if kind == "merge":
        return _merge_day(pages)
    return _measure(pages)


def _limiter_seconds(requests: int) -> float:
    """The least time the default limiter lets `requests` requests take (per second and per minute)."""
    gaps = max(requests - 1, 0)
    per_minute = settings.JIKAN_RATE_PER_MINUTE
    return max(gaps / settings.JIKAN_RATE_PER_SECOND, gaps * 60 / per_minute if per_minute else 0.0)


def _warm(base_url: str, pages: int) -> None:
    """Have the fake encode every page once, so the benchmark measures the ETL, not the fake."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for page in range(1, pages + 1):
            client.get("/top/anime", params={"filter": "bypopularity", "page": page}).raise_for_status()


def _extract_only(pages: int) -> dict[str, float]:
    """What the run does per page minus every database write: the ceiling of (a) on this machine."""
    spec, client, stats, stop = get_feed("popular"), jikan.get_client(), jikan.RequestStats(), threading.Event()
    started = time.perf_counter()
    items = sum(len(services._page_fetch(client, spec, page, stats, stop)[1]) for page in range(1, pages + 1))
    if items != pages * 25:
        raise CommandError(f"the extract-only run validated {items} of {pages * 25} items")
    return {"pages": pages, "items": items, "seconds": time.perf_counter() - started}


def _snapshot_run(pages: int, taken_on: dt.date) -> tuple[EtlRun, float]:
    """`popular` for `taken_on` through the ETL's own service; the run checked whole (every item loaded)."""
    started = time.perf_counter()
    # `popular` lists every title of the catalogue (the score ranking skips unscored ones).
    run = services.feed_snapshot(feed="popular", taken_on=taken_on, pages=pages, fresh=True, trigger=EtlRun.Trigger.CLI)
    seconds = time.perf_counter() - started
    if run.status not in EtlRun.OK_STATUSES or run.items_loaded != pages * 25:
        raise CommandError(f"benchmark run failed ({run.items_loaded} of {pages * 25} items loaded): {run.error}")
    return run, seconds


def _measure(pages: int) -> dict[str, float]:
    run, seconds = _snapshot_run(pages, DAY)
    return {
        "pages": run.pages,
        "requests": run.requests,
        "items": run.items_loaded,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
    }


def _fill(rows: int) -> dict[str, Any]:
    started = time.perf_counter()
    shape, _ = history.fill(rows)
    filled = time.perf_counter()
    history.analyze()
    count = Snapshot.objects.count()
    if not count:
        raise CommandError("the history fill wrote no snapshot rows")
    return {
        "rows": count,
        "days": shape.days,
        "fill_seconds": filled - started,
        "analyze_seconds": time.perf_counter() - filled,
        "peak_rss_mb": peak_rss_mb(),
    }


@contextlib.contextmanager
def _load_timer() -> Iterator[list[float]]:
    """Time the run's load (its one transaction: titles, links, the day's rows) apart from the fetching."""
    spent: list[float] = []
    load = services._load

    @functools.wraps(load)
    def timed(*args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        try:
            load(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    with mock.patch.object(services, "_load", timed):
        yield spent


def _merge_day(pages: int) -> dict[str, Any]:
    """One whole-catalogue day merged after the database's last day (a new day, never a replaced one)."""
    latest = SnapshotDay.objects.aggregate(day=Max("taken_on"))["day"]
    taken_on = max(latest or DAY, timezone.now().date()) + dt.timedelta(days=1)
    before = Snapshot.objects.count()
    with _load_timer() as loads:
        run, seconds = _snapshot_run(pages, taken_on)
    rss = peak_rss_mb()
    expected = pages * 25
    day = Snapshot.objects.filter(feed="popular", taken_on=taken_on)
    problems = [
        f"{what} is {got:,}, not {want:,}"
        for what, got, want in (
            ("the day's snapshot rows", day.count(), expected),
            ("the day's SnapshotDay rows", _day_rows(taken_on), expected),
            ("the table's rows", Snapshot.objects.count(), before + expected),
            ("the timed loads", len(loads), 1),
        )
        if got != want
    ]
    if problems:
        raise CommandError(f"the merge of {taken_on} is not whole: {'; '.join(problems)}")
    return {
        "items": run.items_loaded,
        "rows_before": before,
        # Titles that were in the catalogue before this day (a title's first_seen is set when it is first merged).
        "titles_known": day.filter(anime__first_seen__lt=taken_on).count(),
        "seconds": seconds,
        "merge_seconds": loads[0],
        "peak_rss_mb": rss,
    }


def _day_rows(taken_on: dt.date) -> int:
    rows = SnapshotDay.objects.filter(feed="popular", taken_on=taken_on).values_list("rows", flat=True).first()
    return rows or 0
