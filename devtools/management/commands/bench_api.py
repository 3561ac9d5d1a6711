"""`manage.py bench_api`: server time of every analytics endpoint over N rows of synthetic history.

For each N the parent creates a throw-away database (devtools.benchdb) and a fresh child process fills
it and times the API in-process, so the configured database is never touched and no N inherits
another's memory, connections or caches.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gzip
import json
import math
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, models, transaction
from django.db.models import F
from django.http import HttpResponseBase
from django.test import Client, override_settings
from django.utils import timezone

from devtools.benchdb import bench_database, child_env, percentile, run_child
from devtools.endpoints import ENDPOINTS, Context
from snapshots.feeds import FEEDS
from snapshots.models import Anime, EtlRun, Genre, Snapshot, Studio
from snapshots.staging import rows_insert

DEFAULT_ROWS = (100_000, 1_000_000)
MIN_ROWS = 500
TITLES_PER_FEED_DAY = 1000
# Enough days for the weekly windows to find their baseline (D - 14 <= B <= D - 7) even at small N.
MIN_DAYS = 15
COLD_TARGET_MS = 100.0
COLD_TARGET_ROWS = 1_000_000  # the cold target applies from this many rows
WARM_TARGET_MS = 5.0
GROWTH_TARGET = 2.0


class Command(BaseCommand):
    help = (
        "Benchmark the analytics API in a throw-away database filled with N synthetic snapshot rows: p50/p95 "
        "server time of R requests per endpoint, cold (analytics cache off) and warm (cache on, primed). "
        "Each N runs in a fresh process."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--rows",
            action="append",
            help="Snapshot rows; repeat or comma-separate, k/M suffixes allowed (default: 100000,1000000).",
        )
        parser.add_argument("--requests", type=int, default=30, help="Timed requests per endpoint (default 30).")
        parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
        parser.add_argument("--child-rows", type=int, default=0, help=argparse.SUPPRESS)

    def handle(self, *args: Any, rows: list[str] | None, requests: int, child: bool, child_rows: int, **_: Any) -> None:
        if requests < 1:
            raise CommandError("--requests must be at least 1.")
        if child:
            self.stdout.write(json.dumps(_fill_and_measure(child_rows, requests), default=str))
            return
        results: dict[int, dict[str, Any]] = {}
        for count in _parse_rows(rows):
            self.stdout.write(f"\n{count:,} rows: creating a throw-away database, then filling and measuring it")
            with bench_database("bench_api") as url:
                # A prefix of its own keeps the bench's keys (answers and throttle history) apart from any
                # other user of this Redis; the short TTL lets them expire. The anonymous throttle would
                # otherwise answer 429 once a large --requests runs past its per-minute budget.
                env = child_env(
                    url,
                    CACHE_KEY_PREFIX=f"bench-api-{uuid.uuid4().hex[:8]}",
                    CACHE_TTL="900",
                    API_ANON_RATE="1000000/min",
                )
                try:
                    out = run_child(
                        ["bench_api", "--child", "--child-rows", str(count), "--requests", str(requests)], env
                    )
                except RuntimeError as exc:  # the child's own message (a non-200 answer, say) is its last line
                    raise CommandError(
                        f"benchmark at {count:,} rows failed: {str(exc).strip().splitlines()[-1]}"
                    ) from exc
            results[count] = json.loads(out.strip().splitlines()[-1])
            self._report(count, results[count], requests)
        self._compare(results)

    def _report(self, count: int, result: dict[str, Any], requests: int) -> None:
        shape = result["shape"]
        self.stdout.write(
            f"\n{result['rows']:,} rows ({shape['titles']:,} titles, {shape['per_day']:,} per feed-day, "
            f"{len(FEEDS)} feeds, {shape['days']} days): filled in {result['fill_seconds']:.1f} s, ANALYZE "
            f"{result['analyze_seconds']:.1f} s; {requests} requests per endpoint, times in ms; "
            f"load average {result['load_average']:.1f} (times are only comparable on a quiet machine)"
        )
        self.stdout.write(
            f"{'endpoint':<32}{'queries':>8}{'cold p50':>10}{'cold p95':>10}{'warm p50':>10}{'warm p95':>10}  flags"
        )
        for row in result["endpoints"]:
            flags = _flags(row, cold_target=count >= COLD_TARGET_ROWS)
            self.stdout.write(
                f"{row['name']:<32}{row['queries']:>8}{row['cold_p50']:>10.1f}{row['cold_p95']:>10.1f}"
                f"{row['warm_p50']:>10.1f}{row['warm_p95']:>10.1f}  {' '.join(flags)}".rstrip()
            )

    def _compare(self, results: dict[int, dict[str, Any]]) -> None:
        small, large = min(results), max(results)
        missed = 0
        if small != large:
            self.stdout.write(
                f"\ncold p95 at {large:,} rows / cold p95 at {small:,} rows (target <= {GROWTH_TARGET:g}x)"
            )
            before = {row["name"]: row for row in results[small]["endpoints"]}
            for row in results[large]["endpoints"]:
                ratio = row["cold_p95"] / max(before[row["name"]]["cold_p95"], 0.001)
                flag = f"  growth>{GROWTH_TARGET:g}x" if ratio > GROWTH_TARGET else ""
                self.stdout.write(
                    f"{row['name']:<32}{before[row['name']]['cold_p95']:>9.1f} ->{row['cold_p95']:>8.1f} ms"
                    f"{ratio:>8.2f}x{flag}"
                )
                missed += bool(flag)
        for count, result in results.items():
            missed += sum(bool(_flags(row, cold_target=count >= COLD_TARGET_ROWS)) for row in result["endpoints"])
        targets = (
            f"cold p95 <= {COLD_TARGET_MS:g} ms at {COLD_TARGET_ROWS:,} rows, warm p95 <= {WARM_TARGET_MS:g} ms, "
            f"growth <= {GROWTH_TARGET:g}x"
        )
        verdict = f"{missed} row(s) miss a target" if missed else "every endpoint meets its targets"
        self.stdout.write(f"\n{verdict} ({targets})")


def _flags(row: dict[str, Any], *, cold_target: bool) -> list[str]:
    flags = []
    if cold_target and row["cold_p95"] > COLD_TARGET_MS:
        flags.append(f"cold>{COLD_TARGET_MS:g}ms")
    if row["warm_p95"] > WARM_TARGET_MS:
        flags.append(f"warm>{WARM_TARGET_MS:g}ms")
    return flags


def _parse_rows(values: list[str] | None) -> list[int]:
    if not values:
        return list(DEFAULT_ROWS)
    counts = set()
    for value in values:
        for part in value.split(","):
            text = part.strip().lower()
            multiplier = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
            try:
                count = int(text[:-1] if multiplier > 1 else text) * multiplier
            except ValueError:
                raise CommandError(f"--rows: {part!r} is not a row count (e.g. 100000, 100k, 1M)") from None
            if count < MIN_ROWS:
                raise CommandError(f"--rows: at least {MIN_ROWS} rows, not {count}")
            counts.add(count)
    return sorted(counts)


# The synthetic history ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    days: int
    per_day: int  # titles each feed lists each day
    titles: int

    @classmethod
    def for_rows(cls, rows: int) -> Shape:
        days = max(MIN_DAYS, round(rows / (len(FEEDS) * TITLES_PER_FEED_DAY)))
        per_day = min(TITLES_PER_FEED_DAY, max(10, round(rows / (len(FEEDS) * days))))
        # A catalogue a fifth larger than a feed's day lets titles enter and leave the feeds.
        return cls(days=days, per_day=per_day, titles=per_day * 6 // 5)


@dataclass
class Title:
    mal_id: int
    base: float  # score on day 0
    drift: float  # score points per day: what makes climbers, fallers and momentum
    members: float  # members on day 0
    growth: float  # members' daily growth factor
    bias: dict[str, float]  # per feed: how much the feed favours the title beyond its score


@dataclass
class Day:
    day: dt.date
    score: dict[int, float]
    members: dict[int, int]
    rank: dict[int, int]
    popularity: dict[int, int]
    feeds: dict[str, list[int]]  # per feed: the mal_ids it lists, in position order


FIRST_WORDS = ["Sword", "Star", "Dragon", "Spirit", "Blade", "Moon", "Steel", "Ghost", "Crimson", "Silent", "Magic"]
SECOND_WORDS = ["Academy", "Chronicle", "Hunter", "Knight", "Requiem", "Garden", "Odyssey", "Witch", "Frontier"]
SEARCH_WORDS = [word.lower() for word in FIRST_WORDS + SECOND_WORDS] + ["season 2", "nothing-matches"]
GENRES = [
    (1, "Action", Genre.Kind.GENRE),
    (2, "Adventure", Genre.Kind.GENRE),
    (4, "Comedy", Genre.Kind.GENRE),
    (7, "Mystery", Genre.Kind.GENRE),
    (8, "Drama", Genre.Kind.GENRE),
    (10, "Fantasy", Genre.Kind.GENRE),
    (22, "Romance", Genre.Kind.GENRE),
    (24, "Sci-Fi", Genre.Kind.GENRE),
    (30, "Sports", Genre.Kind.GENRE),
    (36, "Slice of Life", Genre.Kind.GENRE),
    (37, "Supernatural", Genre.Kind.GENRE),
    (9, "Ecchi", Genre.Kind.EXPLICIT),
    (18, "Mecha", Genre.Kind.THEME),
    (23, "School", Genre.Kind.THEME),
    (62, "Isekai", Genre.Kind.THEME),
    (27, "Shounen", Genre.Kind.DEMOGRAPHIC),
    (42, "Seinen", Genre.Kind.DEMOGRAPHIC),
    (25, "Shoujo", Genre.Kind.DEMOGRAPHIC),
]
STUDIOS = ["Sunrise", "Madhouse", "Bones", "MAPPA", "Wit Studio", "Kyoto Animation", "Production I.G", "Toei"]
SEASON_NAMES = ["winter", "spring", "summer", "fall"]


def _title(rng: random.Random, mal_id: int) -> Title:
    # Most titles drift slowly; one in twenty is a breakout (or a flop) that crosses the chart.
    breakout = rng.random() < 0.05
    drift = rng.choice((-1, 1)) * rng.uniform(0.01, 0.03) if breakout else rng.gauss(0, 0.004)
    return Title(
        mal_id=mal_id,
        base=rng.uniform(5.5, 9.1),
        drift=drift,
        members=10 ** rng.uniform(4, 6.5),
        growth=1 + rng.uniform(0, 0.004),
        bias={feed: rng.gauss(0, 0.6) for feed in FEEDS},
    )


def _ranked(titles: list[Title], key: dict[int, float]) -> list[int]:
    return [t.mal_id for t in sorted(titles, key=lambda t: (-key[t.mal_id], t.mal_id))]


def _simulate(titles: list[Title], shape: Shape, start: dt.date, rng: random.Random) -> Iterator[Day]:
    """Each day's numbers and the feeds' lists: `top` by score, `popular` by members, others by biased score."""
    for index in range(shape.days):
        score = {t.mal_id: round(min(9.99, max(1.0, t.base + t.drift * index + rng.gauss(0, 0.01))), 2) for t in titles}
        members = {t.mal_id: int(t.members * t.growth**index) for t in titles}
        by_score = _ranked(titles, score)
        by_members = _ranked(titles, {k: float(v) for k, v in members.items()})
        feeds = {}
        for feed in FEEDS:
            if feed == "top":
                ordered = by_score
            elif feed == "popular":
                ordered = by_members
            else:
                ordered = _ranked(titles, {t.mal_id: score[t.mal_id] + t.bias[feed] for t in titles})
            feeds[feed] = ordered[: shape.per_day]
        yield Day(
            day=start + dt.timedelta(days=index),
            score=score,
            members=members,
            rank={mal_id: n for n, mal_id in enumerate(by_score, 1)},
            popularity={mal_id: n for n, mal_id in enumerate(by_members, 1)},
            feeds=feeds,
        )


def _catalogue(titles: list[Title], rng: random.Random, start: dt.date) -> None:
    this_year = timezone.now().year
    Genre.objects.bulk_create([Genre(mal_id=i, name=name, kind=kind) for i, name, kind in GENRES])
    Studio.objects.bulk_create([Studio(mal_id=i, name=name) for i, name in enumerate(STUDIOS, 1)])
    anime = []
    for t in titles:
        first, second = rng.choice(FIRST_WORDS), rng.choice(SECOND_WORDS)
        sequel = f" Season {rng.randint(2, 4)}" if rng.random() < 0.2 else ""
        airing = rng.random() < 0.2
        anime.append(
            Anime(
                mal_id=t.mal_id,
                title=f"{first} {second}{sequel}",
                title_english=f"The {second} of the {first}{sequel}",
                type=rng.choices(["TV", "Movie", "OVA", "ONA", "Special"], weights=[60, 15, 10, 10, 5])[0],
                episodes=rng.choice([1, 12, 13, 24, 25, 50]),
                status="Currently Airing" if airing else "Finished Airing",
                airing=airing,
                season=rng.choice(SEASON_NAMES),
                year=rng.randint(this_year - 7, this_year),
                synopsis="A synthetic title for the API benchmark.",
                image_url=f"https://cdn.myanimelist.net/images/anime/{t.mal_id}.jpg",
                url=f"https://myanimelist.net/anime/{t.mal_id}",
                first_seen=start,
                last_seen=start,
            )
        )
    Anime.objects.bulk_create(anime)
    genre_ids = [(i, kind) for i, _, kind in GENRES]
    plain = [i for i, kind in genre_ids if kind in (Genre.Kind.GENRE, Genre.Kind.EXPLICIT)]
    extra = [i for i, kind in genre_ids if kind not in (Genre.Kind.GENRE, Genre.Kind.EXPLICIT)]
    links = []
    for t in titles:
        chosen = set(rng.sample(plain, rng.randint(1, 3))) | set(rng.sample(extra, rng.randint(0, 2)))
        links += [Anime.genres.through(anime_id=t.mal_id, genre_id=g) for g in chosen]
    Anime.genres.through.objects.bulk_create(links)
    Anime.studios.through.objects.bulk_create(
        [Anime.studios.through(anime_id=t.mal_id, studio_id=rng.randint(1, len(STUDIOS))) for t in titles]
    )


def _runs(shape: Shape, start: dt.date) -> dict[tuple[str, dt.date], int]:
    """One successful run per (feed, day), as the daily schedule leaves them; returns their ids."""
    runs = []
    for index in range(shape.days):
        day = start + dt.timedelta(days=index)
        for n, feed in enumerate(FEEDS):
            # Feeds are scheduled ten minutes apart after midnight UTC (see the default beat schedule).
            finished = dt.datetime.combine(day, dt.time(0, 12), tzinfo=dt.UTC) + dt.timedelta(minutes=10 * n)
            pages = math.ceil(shape.per_day / 25)
            runs.append(
                EtlRun(
                    feed=feed,
                    taken_on=day,
                    trigger=EtlRun.Trigger.BEAT,
                    status=EtlRun.Status.SUCCESS,
                    finished_at=finished,
                    pages=pages,
                    requests=pages,
                    items_received=shape.per_day,
                    items_loaded=shape.per_day,
                )
            )
    EtlRun.objects.bulk_create(runs)
    # started_at is auto_now_add, so bulk_create stamped "now": give each run its own start instead.
    EtlRun.objects.update(started_at=F("finished_at") - dt.timedelta(minutes=2))
    return {(run.feed, run.taken_on): run.pk for run in runs}


SNAPSHOT_COLUMNS = (
    "anime_id",
    "feed",
    "taken_on",
    "position",
    "rank",
    "popularity",
    "score",
    "scored_by",
    "members",
    "favorites",
    "run_id",
)


def _snapshot_rows(day: Day, runs: dict[tuple[str, dt.date], int]) -> Iterator[tuple[Any, ...]]:
    taken_on = day.day.isoformat()
    for feed, mal_ids in day.feeds.items():
        run_id = runs[(feed, day.day)]
        for position, mal_id in enumerate(mal_ids, 1):
            members = day.members[mal_id]
            score, rank, popularity = day.score[mal_id], day.rank[mal_id], day.popularity[mal_id]
            yield (
                mal_id,
                feed,
                taken_on,
                position,
                rank,
                popularity,
                score,
                members * 3 // 5,
                members,
                members // 80,
                run_id,
            )


@contextlib.contextmanager
def _bulk_load(model: type[models.Model]) -> Iterator[None]:
    """On PostgreSQL, drop the table's secondary indexes, unique and foreign-key constraints; recreate them after.

    PostgreSQL's advice for populating a database: building an index once is far cheaper than updating it
    per row, and re-adding a foreign key checks every row in one join instead of one trigger call per row
    (3-4x faster at 1M rows). The definitions are read back from the catalogue, so the schema ends identical.
    Reference: https://www.postgresql.org/docs/current/populate.html
    """
    if connection.vendor != "postgresql":
        yield
        return
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('u', 'f')",
            [table],
        )
        constraints = cursor.fetchall()
        # Indexes that back no constraint (those go with their constraint) and are not the primary key.
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index i "
            "WHERE indrelid = %s::regclass AND NOT indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
            [table],
        )
        indexes = cursor.fetchall()
        for name, _ in constraints:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {connection.ops.quote_name(name)}")
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")  # already quoted by ::regclass::text
    yield
    with connection.cursor() as cursor:
        for _, definition in indexes:
            cursor.execute(definition)
        for name, definition in constraints:
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {connection.ops.quote_name(name)} {definition}")


def _mark_latest(seen: dict[int, tuple[dt.date, dt.date]], last: Day) -> None:
    """Give each title its first and last day in a feed and its latest numbers, as the ETL keeps them."""
    anime = list(Anime.objects.all())
    for a in anime:
        a.first_seen, a.last_seen = seen.get(a.mal_id, (last.day, last.day))
        members = last.members[a.mal_id]
        a.score = Decimal(str(last.score[a.mal_id]))
        a.rank, a.popularity, a.members = last.rank[a.mal_id], last.popularity[a.mal_id], members
        a.scored_by, a.favorites = members * 3 // 5, members // 80
    fields = ["first_seen", "last_seen", "score", "rank", "popularity", "members", "scored_by", "favorites"]
    Anime.objects.bulk_update(anime, fields, batch_size=500)


def _fill(rows: int) -> tuple[Shape, Context]:
    """Write about `rows` snapshot rows of a deterministic history ending today; returns its shape and what to ask."""
    shape = Shape.for_rows(rows)
    rng = random.Random(20240101)
    end = timezone.now().date()
    start = end - dt.timedelta(days=shape.days - 1)
    titles = [_title(rng, mal_id) for mal_id in range(1, shape.titles + 1)]
    seen: dict[int, tuple[dt.date, dt.date]] = {}
    days = []
    with transaction.atomic():
        _catalogue(titles, rng, start)
        runs = _runs(shape, start)
        with _bulk_load(Snapshot):
            for day in _simulate(titles, shape, start, rng):
                rows_insert(Snapshot._meta.db_table, SNAPSHOT_COLUMNS, _snapshot_rows(day, runs))
                for mal_id in {m for listed in day.feeds.values() for m in listed}:
                    seen[mal_id] = (seen.get(mal_id, (day.day, day.day))[0], day.day)
                days.append(day)
                # Only the newest day is needed afterwards; the others would hold ~100 MB at 1M rows.
                del days[:-1]
        last = days[-1]
        _mark_latest(seen, last)
    # Titles by their latest rank, the best first: the detail endpoints ask for popular and obscure ones.
    ranked = [mal_id for mal_id, _ in sorted(last.rank.items(), key=lambda item: item[1]) if mal_id in seen]
    every_day = [start + dt.timedelta(days=n) for n in range(shape.days)]
    return shape, Context(days=every_day, mal_ids=ranked, words=SEARCH_WORDS)


def _analyze() -> None:
    # Fresh statistics, as autovacuum would have them in production; VACUUM also sets the visibility map,
    # without which PostgreSQL's index-only scans must visit the heap for every row of a bulk-loaded table.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for model in (Snapshot, EtlRun, Anime, Anime.genres.through, Anime.studios.through):
                cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        else:
            cursor.execute("ANALYZE")


# The measurement ---------------------------------------------------------------------------------------------


def _body(response: HttpResponseBase) -> str:
    content = getattr(response, "content", b"")
    if response.get("Content-Encoding") == "gzip":
        content = gzip.decompress(content)
    return content.decode(errors="replace")


def _get(client: Client, url: str) -> HttpResponseBase:
    # secure=True: with DEBUG off, SECURE_SSL_REDIRECT would answer plain HTTP with a redirect.
    response = client.get(url, secure=True)
    if response.status_code != 200:
        raise CommandError(f"GET {url} answered {response.status_code}, not 200: {_body(response)[:500]}")
    return response


def _timed(client: Client, url: str) -> float:
    started = time.perf_counter()
    _get(client, url)
    return (time.perf_counter() - started) * 1000


class _QueryCounter:
    """Counts the statements run (CaptureQueriesContext loses them: each request clears the query log)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


def _measure(ctx: Context, requests: int) -> list[dict[str, Any]]:
    # Headers a browser sends: JSON (not the browsable API) and gzip, which the GZip middleware then applies.
    client = Client(headers={"accept": "application/json", "accept-encoding": "gzip"})
    results = []
    for endpoint in ENDPOINTS:
        urls = [endpoint.url(ctx=ctx, i=i) for i in range(requests)]
        with override_settings(ANALYTICS_CACHE_ENABLED=False):
            # An untimed first request loads the code paths and counts the queries an answer costs.
            queries = _QueryCounter()
            with connection.execute_wrapper(queries):
                _get(client, urls[0])
            cold = [_timed(client, url) for url in urls]
        _get(client, urls[0])  # primes the cache
        warm = [_timed(client, urls[0]) for _ in range(requests)]
        results.append(
            {
                "name": endpoint.label,
                "queries": queries.count,
                "cold_p50": percentile(cold, 0.5),
                "cold_p95": percentile(cold, 0.95),
                "warm_p50": percentile(warm, 0.5),
                "warm_p95": percentile(warm, 0.95),
            }
        )
    return results


def _fill_and_measure(rows: int, requests: int) -> dict[str, Any]:
    started = time.perf_counter()
    shape, context = _fill(rows)
    filled = time.perf_counter()
    _analyze()
    analyzed = time.perf_counter()
    endpoints = _measure(context, requests)
    return {
        "shape": asdict(shape),
        "rows": Snapshot.objects.count(),
        "fill_seconds": filled - started,
        "analyze_seconds": analyzed - filled,
        "endpoints": endpoints,
        "load_average": os.getloadavg()[0],
    }
