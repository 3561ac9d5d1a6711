"""`manage.py bench_api`: server time of every analytics endpoint over N rows of synthetic history.

For each N the parent creates a throw-away database (devtools.benchdb) and a fresh child process fills
it and times the API in-process, so the configured database is never touched and no N inherits
another's memory, connections or caches. The history keeps the ETL's invariants (a SnapshotDay per
feed and day, what `etl validate` checks), and every timed answer is checked: not empty, and equal to
what its selector computes for the same query. A benchmark of an empty or wrong answer fails instead.
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
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, models, transaction
from django.db.models import Count, F
from django.http import HttpResponseBase, QueryDict
from django.test import Client, RequestFactory, override_settings
from django.urls import resolve
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from analytics.api.base import AnalyticsApi
from analytics.selectors.trends import MONTHLY
from devtools.benchdb import bench_database, child_env, computed_answer, empty_parts, percentile, run_child
from devtools.endpoints import ENDPOINTS, Context
from snapshots import services
from snapshots.feeds import FEEDS
from snapshots.models import Anime, EtlRun, Genre, Snapshot, SnapshotDay
from snapshots.selectors import misdated_days, snapshot_problems
from snapshots.staging import rows_insert
from snapshots.validation import GENRE_LISTS, AnimeRecord, item_validate

DEFAULT_ROWS = (100_000, 1_000_000)
MIN_ROWS = 500
TITLES_PER_FEED_DAY = 1000
# A small history's lists still hold enough titles to move past one another every week.
MIN_PER_DAY = 20
SWING_SCORE = 0.3  # score points a title swings either way
SWING_MEMBERS = 2.0  # the factor its members swing by either way
PREMIERE_EVERY = 3  # days between two premieres
PREMIERE_DAYS = 7  # the week a premiere holds the last places of every top 50
NEW_ENTRY_TOP = 50  # the top new entries watch (their endpoint's default)
# Enough days for the monthly window to find its baseline (D - 60 <= B <= D - 30) on every day of the
# last week the requests ask for, even at small N.
MIN_DAYS = MONTHLY + 7
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
                # otherwise answer 429 once a large --requests runs past its per-minute budget. The test
                # client's host is "testserver", which the configured ALLOWED_HOSTS need not include
                # (with DEBUG=1 they are only 127.0.0.1 and localhost).
                env = child_env(
                    url,
                    CACHE_KEY_PREFIX=f"bench-api-{uuid.uuid4().hex[:8]}",
                    CACHE_TTL="900",
                    API_ANON_RATE="1000000/min",
                    ALLOWED_HOSTS="testserver",
                )
                try:
                    out = run_child(
                        ["bench_api", "--child", "--child-rows", str(count), "--requests", str(requests)], env
                    )
                except CommandError as exc:  # its message ends with the child's last lines
                    raise CommandError(f"benchmark at {count:,} rows failed: {exc}") from exc
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
        per_day = min(TITLES_PER_FEED_DAY, max(MIN_PER_DAY, round(rows / (len(FEEDS) * days))))
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
    swing: tuple[float, float]  # (period in days, phase): its swing in and out of favour
    debut: int = 0  # the day it first appears (a premiere tops every list for a week: new entries)


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
SEARCH_WORDS = [word.lower() for word in FIRST_WORDS + SECOND_WORDS] + ["season 2"]
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
        swing=(rng.uniform(10, 40), rng.random()),
    )


def _ranked(titles: list[Title], key: dict[int, float]) -> list[int]:
    return [t.mal_id for t in sorted(titles, key=lambda t: (-key[t.mal_id], t.mal_id))]


def _premiered(ordered: list[int], premieres: list[int], places: int) -> list[int]:
    """`ordered` with the premieres in the last of its first `places` places."""
    at = max(0, min(places, len(ordered) + len(premieres)) - len(premieres))
    return ordered[:at] + premieres + ordered[at:]


def _simulate(titles: list[Title], shape: Shape, start: dt.date, rng: random.Random) -> Iterator[Day]:
    """Each day's numbers and the feeds' lists: `top` by score, `popular` by members, others by biased score.

    A title appears on its debut day; in its first week it holds the last places of every list's top 50
    (or of a shorter list), where it moves no title above it (its numbers stay its own). Titles swing in and
    out of favour over a few weeks, so that even a small history's week has climbers and fallers in every feed.
    """
    places = min(NEW_ENTRY_TOP, shape.per_day)
    for index in range(shape.days):
        present = [t for t in titles if t.debut <= index]
        favour = {t.mal_id: math.sin(2 * math.pi * (index / t.swing[0] + t.swing[1])) for t in present}
        score = {
            t.mal_id: round(
                min(9.99, max(1.0, t.base + t.drift * index + SWING_SCORE * favour[t.mal_id] + rng.gauss(0, 0.01))), 2
            )
            for t in present
        }
        members = {t.mal_id: int(t.members * t.growth**index * SWING_MEMBERS ** favour[t.mal_id]) for t in present}
        premieres = [t.mal_id for t in present if t.debut and index - t.debut < PREMIERE_DAYS]
        others = [t for t in present if t.mal_id not in premieres]
        by_score = _premiered(_ranked(others, score), premieres, places)
        by_members = _premiered(_ranked(others, {k: float(v) for k, v in members.items()}), premieres, places)
        feeds = {}
        for feed in FEEDS:
            if feed == "top":
                ordered = by_score
            elif feed == "popular":
                ordered = by_members
            else:
                biased = {t.mal_id: score[t.mal_id] + t.bias[feed] for t in others}
                ordered = _premiered(_ranked(others, biased), premieres, places)
            feeds[feed] = ordered[: shape.per_day]
        yield Day(
            day=start + dt.timedelta(days=index),
            score=score,
            members=members,
            rank={mal_id: n for n, mal_id in enumerate(by_score, 1)},
            popularity={mal_id: n for n, mal_id in enumerate(by_members, 1)},
            feeds=feeds,
        )


def _seasons(count: int, today: dt.date) -> list[tuple[int, str]]:
    """The `count` seasons ending with today's, newest first."""
    now = today.year * 4 + (today.month - 1) // 3
    return [(quarter // 4, SEASON_NAMES[quarter % 4]) for quarter in range(now, now - count, -1)]


def _catalogue(titles: list[Title], rng: random.Random, start: dt.date) -> None:
    """The titles as Jikan items, validated and merged by the ETL's own code (search text, genres, studios)."""
    # Titles share out the seasons of the last five years (fewer for a small catalogue), so that every
    # season shown by default has enough titles (SEASON_MIN_VOLUME).
    seasons = _seasons(max(1, min(20, len(titles) // 5)), timezone.now().date())
    records = []
    for n, t in enumerate(titles):
        checked = item_validate(_jikan_item(t.mal_id, rng, seasons[n % len(seasons)]))
        if not isinstance(checked, AnimeRecord):
            raise CommandError(f"A synthetic title fails validation: {checked}")
        records.append(checked)
    services.anime_upsert(records=records, seen_on=start)


def _jikan_item(mal_id: int, rng: random.Random, season: tuple[int, str]) -> dict[str, Any]:
    """One synthetic title in the shape of a Jikan v4 anime item.

    Names go round the word lists, so that every search word finds titles in the smallest catalogue too.
    """
    # 11 and 9 words: every pair comes once in 99 titles, and every word within the first 11.
    first, second = FIRST_WORDS[mal_id % len(FIRST_WORDS)], SECOND_WORDS[mal_id % len(SECOND_WORDS)]
    sequel = f" Season {2 + mal_id // 5 % 3}" if mal_id % 5 == 0 else ""
    title, english = f"{first} {second}{sequel}", f"The {second} of the {first}{sequel}"
    airing = rng.random() < 0.2
    plain = [g for g in GENRES if g[2] in (Genre.Kind.GENRE, Genre.Kind.EXPLICIT)]
    extra = [g for g in GENRES if g[2] not in (Genre.Kind.GENRE, Genre.Kind.EXPLICIT)]
    genres = rng.sample(plain, rng.randint(1, 3)) + rng.sample(extra, rng.randint(0, 2))
    studio = rng.randint(1, len(STUDIOS))
    return {
        "mal_id": mal_id,
        "url": f"https://myanimelist.net/anime/{mal_id}",
        "images": {"jpg": {"image_url": f"https://cdn.myanimelist.net/images/anime/{mal_id}.jpg"}},
        "title": title,
        "title_english": english,
        "titles": [{"type": "Default", "title": title}, {"type": "English", "title": english}],
        "type": rng.choices(["TV", "Movie", "OVA", "ONA", "Special"], weights=[60, 15, 10, 10, 5])[0],
        "episodes": rng.choice([1, 12, 13, 24, 25, 50]),
        "status": "Currently Airing" if airing else "Finished Airing",
        "airing": airing,
        "year": season[0],
        "season": season[1],
        "synopsis": "A synthetic title for the API benchmark.",
        **{
            key: [{"mal_id": i, "name": name} for i, name, g_kind in genres if g_kind == kind]
            for key, kind in GENRE_LISTS.items()
        },
        "studios": [{"mal_id": studio, "name": STUDIOS[studio - 1]}],
    }


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
    # A premiere every few days, so that each day of the last week has new entries in every feed.
    debuts = range(PREMIERE_EVERY, shape.days, PREMIERE_EVERY)
    # After its week it sinks to the bottom, so that it pushes no title down in a small history either.
    titles += [
        replace(_title(rng, len(titles) + n), debut=day, base=5.0, members=1_000.0) for n, day in enumerate(debuts, 1)
    ]
    seen: dict[int, tuple[dt.date, dt.date]] = {}
    days = []
    with transaction.atomic():
        _catalogue(titles, rng, start)
        runs = _runs(shape, start)
        with _bulk_load(Snapshot):
            for day in _simulate(titles, shape, start, rng):
                rows_insert(Snapshot._meta.db_table, SNAPSHOT_COLUMNS, _snapshot_rows(day, runs))
                # The read side finds a feed's days here, as the ETL records them with the day's rows.
                SnapshotDay.objects.bulk_create(
                    SnapshotDay(feed=feed, taken_on=day.day, rows=len(listed), run_id=runs[(feed, day.day)])
                    for feed, listed in day.feeds.items()
                )
                for mal_id in {m for listed in day.feeds.values() for m in listed}:
                    seen[mal_id] = (seen.get(mal_id, (day.day, day.day))[0], day.day)
                days.append(day)
                # Only the newest day is needed afterwards; the others would hold ~100 MB at 1M rows.
                del days[:-1]
        last = days[-1]
        _mark_latest(seen, last)
    _check_history()
    # Titles by their latest rank, the best first: the detail endpoints ask for popular and obscure ones.
    ranked = [mal_id for mal_id, _ in sorted(last.rank.items(), key=lambda item: item[1]) if mal_id in seen]
    every_day = [start + dt.timedelta(days=n) for n in range(shape.days)]
    return shape, Context(days=every_day, mal_ids=ranked, words=SEARCH_WORDS)


def _check_history() -> None:
    """The invariants the ETL keeps: a SnapshotDay counting each feed's day's rows, and what `etl validate` checks."""
    counted = Snapshot.objects.values_list("feed", "taken_on").annotate(rows=Count("pk")).order_by()
    recorded = SnapshotDay.objects.values_list("feed", "taken_on", "rows").order_by()
    mismatched = sorted(set(counted) ^ set(recorded))
    problems = [f"{feed} {day}: SnapshotDay rows differ from the day's rows" for feed, day, _ in mismatched]
    problems += [problem for feed, day, _ in recorded for problem in snapshot_problems(feed=feed, taken_on=day)]
    problems += misdated_days()
    if problems:
        raise CommandError(f"The synthetic history breaks the ETL's invariants: {'; '.join(problems[:5])}")


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
        # The body's first line only (a JSON error, or the title of DEBUG's error page): one readable line.
        first_line = _body(response).strip().partition("\n")[0][:300]
        raise CommandError(f"GET {url} answered {response.status_code}, not 200: {first_line}")
    return response


def _timed(client: Client, url: str) -> tuple[float, HttpResponseBase]:
    started = time.perf_counter()
    response = _get(client, url)
    return (time.perf_counter() - started) * 1000, response


def _checked_get(client: Client, url: str) -> HttpResponseBase:
    """GET `url`, refusing an answer that is empty or differs from what its selector computes."""
    response = _get(client, url)
    _check(url, response)
    return response


def _check(url: str, response: HttpResponseBase) -> None:
    answer = json.loads(_body(response))
    if empty := empty_parts(answer):
        raise CommandError(f"GET {url} gave an empty answer ({', '.join(empty)}): there is nothing real to time.")
    expected = _selector_answer(url)
    if isinstance(answer, dict) and set(answer) > set(expected):
        # A page of a paged list: its count and rows (the next/previous links are the paginator's).
        answer = {key: answer[key] for key in expected}
    if answer != expected:
        raise CommandError(f"GET {url} differs from the selector's own answer for the same query.")


def _selector_answer(url: str) -> Any:
    """What the endpoint's selector computes for the query of `url`, through the endpoint's serializer, as JSON."""
    parts = urlsplit(url)
    match = resolve(parts.path)
    view = match.func.view_class  # type: ignore[attr-defined]  # an APIView's as_view() keeps its class
    if issubclass(view, AnalyticsApi):
        return computed_answer(view, QueryDict(parts.query), match.kwargs)
    # A paged list (search, runs): the first page of its queryset through its serializer.
    api = view(request=Request(RequestFactory().get(url)), kwargs=match.kwargs, format_kwarg=None)
    rows = api.get_queryset()
    size = api.paginator.get_page_size(api.request)
    data = {"count": rows.count(), "results": api.get_serializer(rows[:size], many=True).data}
    return json.loads(JSONRenderer().render(data))


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
            cold = []
            for url in urls:
                elapsed, response = _timed(client, url)
                cold.append(elapsed)
                _check(url, response)  # after the clock stopped
        _get(client, urls[0])  # primes the cache
        warm = []
        for _ in range(requests):
            elapsed, response = _timed(client, urls[0])
            warm.append(elapsed)
        _check(urls[0], response)  # the cached answer is the one computed
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
