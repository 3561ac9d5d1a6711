"""`manage.py bench_etl`: throughput, memory and rate-limit precision of the ETL against the fake Jikan."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import Any

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from devtools.benchdb import bench_database, child_env, peak_rss_mb, run_child
from devtools.fakejikan import FakeJikan
from snapshots import jikan, services
from snapshots.feeds import get_feed
from snapshots.models import EtlRun

DAY = dt.date(2024, 1, 1)


class Command(BaseCommand):
    help = (
        "Benchmark the ETL in a throw-away database: (a) N pages with the limiter off (items/s, peak RSS), "
        "(b) the same at N/10 pages (memory must not grow with pages), (c) R requests at the default rate "
        "limit (wall time / the limiter's bound). Each scenario runs in a fresh process."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pages", type=int, default=1000, help="Pages of scenario (a) (default 1000).")
        parser.add_argument("--requests", type=int, default=30, help="Requests of scenario (c) (default 30).")
        parser.add_argument("--child", choices=["unlimited", "limited", "extract"], help=argparse_hidden())
        parser.add_argument("--child-pages", type=int, default=0, help=argparse_hidden())

    def handle(self, *args: Any, pages: int, requests: int, child: str | None, child_pages: int, **_: Any) -> None:
        if child:
            self.stdout.write(json.dumps(_extract_only(child_pages) if child == "extract" else _measure(child_pages)))
            return
        results = {}
        with bench_database("bench_etl") as url, FakeJikan(day=DAY, catalogue_size=pages * 25) as fake:
            self.stdout.write(f"fake Jikan at {fake.base_url}, catalogue of {pages * 25} titles; warming its cache")
            _warm(fake.base_url, pages)
            unlimited = child_env(url, JIKAN_BASE_URL=fake.base_url, JIKAN_RATE_PER_SECOND="0")
            for label, count in (("a", pages), ("b", max(1, pages // 10))):
                out = run_child(["bench_etl", "--child", "unlimited", "--child-pages", str(count)], unlimited)
                results[label] = json.loads(out)
            results["extract"] = json.loads(
                run_child(["bench_etl", "--child", "extract", "--child-pages", str(pages)], unlimited)
            )
            limited = child_env(url, JIKAN_BASE_URL=fake.base_url)
            limited.pop("JIKAN_RATE_PER_SECOND", None)
            limited.pop("JIKAN_RATE_PER_MINUTE", None)
            fake.reset()
            results["c"] = json.loads(
                run_child(["bench_etl", "--child", "limited", "--child-pages", str(requests)], limited)
            )
            # The limiter's precision: from the first request the fake received to the last one.
            results["c"]["request_span"] = fake.requests[-1].at - fake.requests[0].at
        self._report(results)

    def _report(self, results: dict[str, dict[str, float]]) -> None:
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
        growth = (a["peak_rss_mb"] - b["peak_rss_mb"]) / b["peak_rss_mb"] * 100
        bound = _limiter_seconds(int(c["requests"]))
        # Jikan's rate limit, not the ETL, sets how long a real run takes: the processing must be a small
        # share of the time the limiter needs to fetch the same pages.
        fetch_bound = _limiter_seconds(int(a["requests"]))
        self.stdout.write(
            f"processing (a): {a['seconds']:.1f} s for {a['requests']} requests = "
            f"{a['seconds'] / fetch_bound:.1%} of the {fetch_bound:.0f} s the default rate limit needs for them "
            f"({a['items'] / a['seconds']:.0f} items/s; target: under 10%)"
        )
        self.stdout.write(f"peak RSS (a) vs (b): {growth:+.1f}% (target within 10%, both under 300 MB)")
        self.stdout.write(
            f"rate limit (c): {c['requests']} requests spread over {c['request_span']:.2f} s; bound {bound:.2f} s; "
            f"ratio {c['request_span'] / bound:.3f} (target <= 1.05); whole run {c['seconds']:.2f} s"
        )


def _limiter_seconds(requests: int) -> float:
    """The least time the default limiter lets `requests` requests take (per second and per minute)."""
    gaps = max(requests - 1, 0)
    per_minute = settings.JIKAN_RATE_PER_MINUTE
    return max(gaps / settings.JIKAN_RATE_PER_SECOND, gaps * 60 / per_minute if per_minute else 0.0)


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


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
    return {"pages": pages, "items": items, "seconds": time.perf_counter() - started}


def _measure(pages: int) -> dict[str, float]:
    started = time.perf_counter()
    # `popular` lists every title of the catalogue (the score ranking skips unscored ones).
    run = services.feed_snapshot(feed="popular", taken_on=DAY, pages=pages, fresh=True, trigger=EtlRun.Trigger.CLI)
    seconds = time.perf_counter() - started
    if run.status not in EtlRun.OK_STATUSES or run.items_loaded != pages * 25:
        raise SystemExit(f"benchmark run failed ({run.items_loaded} of {pages * 25} items loaded): {run.error}")
    return {
        "pages": run.pages,
        "requests": run.requests,
        "items": run.items_loaded,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
    }
