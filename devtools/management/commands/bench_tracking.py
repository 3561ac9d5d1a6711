"""`manage.py bench_tracking`: a large personal list, imported and shown, in a throw-away database.

A child process fills the database with N titles, imports a gzipped N-entry MyAnimeList export of them end to
end (parse, dry run, apply: what the page and the worker do) and reports its time and the process's peak
memory; then times /my/list/ over that list in every sort (nothing of it is cached: each request is cold)
and counts the queries the quick controls cost on a page of titles. Every answer is checked first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import statistics
import time
from dataclasses import replace
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from devtools.benchdb import bench_database, child_env, peak_rss_mb, percentile, run_child, unhashed_static
from snapshots.models import Anime, Genre
from snapshots.search import search_text
from tracking import mal_xml, services
from tracking.models import ListEntry, ListStatus
from tracking.selectors import SORTS
from tracking.views import PAGE_SIZE

DAY = dt.date(2026, 1, 1)
IMPORT_TARGET_S = 10.0
MEMORY_TARGET_MB = 200.0
LIST_TARGET_MS = 100.0
STATS_TARGET_MS = 150.0


class Command(BaseCommand):
    help = (
        "Benchmark the people side in a throw-away database: import an N-entry MyAnimeList export end to end "
        "(seconds, peak RSS), /my/list/ over N entries (p50/p95 server time per sort), quick-control queries."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--entries", type=int, default=5000, help="Titles on the list (default 5000).")
        parser.add_argument("--requests", type=int, default=20, help="Timed requests per sort (default 20).")
        parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)

    def handle(self, *args: Any, entries: int, requests: int, child: bool, **_: Any) -> None:
        if entries < PAGE_SIZE:
            raise CommandError(f"--entries must be at least {PAGE_SIZE}, a whole page of the list.")
        if child:
            self.stdout.write(json.dumps(_measure(entries, requests)))
            return
        with bench_database("bench_tracking") as url:
            env = child_env(url, ALLOWED_HOSTS="testserver", SECURE_SSL_REDIRECT="0", ANALYTICS_CACHE_ENABLED="0")
            command = ["bench_tracking", "--child", "--entries", str(entries), "--requests", str(requests)]
            result = json.loads(run_child(command, env).strip().splitlines()[-1])
        self._report(result)

    def _report(self, result: dict[str, Any]) -> None:
        imported = result["import"]
        self.stdout.write(
            f"import of {imported['entries']:,} entries ({imported['file_kb']:,.0f} KB gzipped): "
            f"{imported['seconds']:.2f} s end to end (parse {imported['parse_s']:.2f}, "
            f"dry run {imported['plan_s']:.2f}, apply {imported['apply_s']:.2f}); "
            f"peak RSS {imported['peak_rss_mb']:.0f} MB "
            f"(targets {IMPORT_TARGET_S:g} s, {MEMORY_TARGET_MB:g} MB)"
        )
        self.stdout.write(
            f"/my/list/ over {imported['entries']:,} entries, server time in ms (target p95 {LIST_TARGET_MS:g}):"
        )
        for sort, times in result["list"].items():
            self.stdout.write(f"  sort={sort:<10} p50 {times['p50']:6.1f}  p95 {times['p95']:6.1f}")
        self.stdout.write(
            f"quick controls: {result['control_queries']} query for the statuses of a page of search results"
        )
        stats = result["stats"]
        self.stdout.write(
            f"/my/stats/ over the same list: p50 {stats['p50']:.1f} ms, p95 {stats['p95']:.1f} ms, "
            f"{stats['queries']} queries (target p95 {STATS_TARGET_MS:g} ms)"
        )
        missed = [
            name
            for name, failed in (
                ("import time", imported["seconds"] > IMPORT_TARGET_S),
                ("import memory", imported["peak_rss_mb"] > MEMORY_TARGET_MB),
                ("list p95", any(t["p95"] > LIST_TARGET_MS for t in result["list"].values())),
                ("one control query", result["control_queries"] != 1),
                ("stats p95", result["stats"]["p95"] > STATS_TARGET_MS),
            )
            if failed
        ]
        self.stdout.write("targets missed: " + ", ".join(missed) if missed else "every target met")


def _measure(count: int, requests: int) -> dict[str, Any]:
    statuses = ListStatus.values
    Anime.objects.bulk_create(
        Anime(
            mal_id=n,
            title=f"Title {n:05d}",
            search_text=search_text([f"Title {n:05d}"]),
            episodes=24,
            rank=n,
            type="TV",
            first_seen=DAY,
            last_seen=DAY,
        )
        for n in range(1, count + 1)
    )
    # Every title has two of ten genres and most a length, as the stats read them.
    Genre.objects.bulk_create(Genre(mal_id=g, name=f"Genre {g}") for g in range(1, 11))
    Anime.genres.through.objects.bulk_create(
        Anime.genres.through(anime_id=n, genre_id=g)
        for n in range(1, count + 1)
        for g in (n % 10 + 1, (n + 3) % 10 + 1)
    )
    Anime.objects.filter(mal_id__lte=count * 9 // 10).update(episode_minutes=24)
    person = get_user_model().objects.create_user("bench", "bench@example.com", "bench-only-password-0123")
    items = [
        mal_xml.MalEntry(
            mal_id=n,
            title=f"Title {n:05d}",
            series_type="TV",
            episodes=24,
            watched_episodes=n % 24,
            started_on=None,
            finished_on=None,
            score=n % 10 + 1,
            status=statuses[n % len(statuses)],
            notes="",
            times_watched=0,
            rewatching=False,
            tags="",
        )
        for n in range(1, count + 1)
    ]
    # Completed titles have every episode watched, as MAL writes them.
    items = [item if item.status != "completed" else replace(item, watched_episodes=24) for item in items]
    upload = gzip.compress(mal_xml.render_export("bench", items))

    started = time.perf_counter()
    parsed = mal_xml.parse_export(upload)
    parsed_at = time.perf_counter()
    plan = services.import_plan(user=person, items=parsed.entries, overwrite=False)
    planned_at = time.perf_counter()
    job = services.import_job_create(user=person, file_name="bench.xml.gz", items=parsed.entries, overwrite=False)
    job = services.import_apply(job_id=job.pk)
    finished = time.perf_counter()
    if len(plan.added) != count or job.added != count or ListEntry.objects.filter(user=person).count() != count:
        raise SystemExit(f"the import did not add every entry: plan {len(plan.added)}, job {job.added} of {count}")
    imported = {
        "entries": count,
        "file_kb": len(upload) / 1024,
        "seconds": finished - started,
        "parse_s": parsed_at - started,
        "plan_s": planned_at - parsed_at,
        "apply_s": finished - planned_at,
        "peak_rss_mb": peak_rss_mb(),
    }

    with unhashed_static():
        timings, control_queries = _pages(person, count, requests)
        stats = _stats(person, count, requests)
    return {"import": imported, "list": timings, "control_queries": control_queries, "stats": stats}


def _stats(person: Any, count: int, requests: int) -> dict[str, float]:
    """/my/stats/ over the whole list: server time, and its queries (the same whatever the list's size)."""
    client = Client()
    client.force_login(person)
    samples = []
    for _ in range(requests):
        begun = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/my/stats/")
        samples.append((time.perf_counter() - begun) * 1000)
        if (
            response.status_code != 200
            or f"{count:,}".replace(",", "") + " titles on the list" not in response.content.decode()
        ):
            raise SystemExit("/my/stats/ did not show the whole list")
    return {"p50": statistics.median(samples), "p95": percentile(samples, 0.95), "queries": len(queries)}


def _pages(person: Any, count: int, requests: int) -> tuple[dict[str, dict[str, float]], int]:
    client = Client()
    client.force_login(person)
    timings: dict[str, dict[str, float]] = {}
    for sort in SORTS:
        samples = []
        for _ in range(requests):
            begun = time.perf_counter()
            response = client.get("/my/list/", {"sort": sort})
            samples.append((time.perf_counter() - begun) * 1000)
            body = response.content.decode()
            if response.status_code != 200 or body.count('class="list-entry"') != PAGE_SIZE or f">{count}<" not in body:
                raise SystemExit(f"/my/list/?sort={sort} did not show a full page of the {count} entries")
        timings[sort] = {"p50": statistics.median(samples), "p95": percentile(samples, 0.95)}

    with CaptureQueriesContext(connection) as queries:
        results = client.get("/search/", {"q": "title"})
    if results.status_code != 200 or results.content.decode().count('class="track"') < 10:
        raise SystemExit("/search/?q=title did not show its titles with their quick controls")
    return timings, sum("tracking_listentry" in query["sql"] for query in queries.captured_queries)
