"""A synthetic ranking history of any size, in the shape a whole-catalogue self-hoster has, for the benchmarks.

The `popular` feed lists the whole catalogue (28,000 titles a day, the 1,100 pages Jikan has); the other
feeds list their default pages. A history of N rows is as many such days as N needs (at least a monthly
window's worth); below that, every feed shrinks in proportion. The numbers are simulated with numpy, one
day at a time, and written with COPY, so 30,000,000 rows take minutes and memory stays flat. The history
keeps the ETL's invariants (a run and a SnapshotDay per feed and day, what `etl validate` checks) and
realistic magnitudes: members from a few hundred to about four million, as on MyAnimeList.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
from django.core.management.base import CommandError
from django.db import connection, models, transaction
from django.db.models import Count, F
from django.utils import timezone

from analytics.models import FeedMoves
from analytics.selectors.trends import MONTHLY
from analytics.services import feed_moves_write
from devtools.endpoints import Context
from snapshots import services
from snapshots.feeds import FEEDS
from snapshots.models import Anime, EtlRun, Genre, Snapshot, SnapshotDay
from snapshots.selectors import misdated_days, snapshot_problems
from snapshots.validation import GENRE_LISTS, AnimeRecord, item_validate

CATALOGUE_TITLES = 28_000  # what `popular` lists a day when a self-hoster snapshots every page
SEASON_TITLES = 125  # the season feed follows every page: about five
# A small history's lists still hold enough titles to move past one another every week.
MIN_PER_DAY = 20
NEW_ENTRY_TOP = 50  # the top new entries watch (their endpoint's default)
PREMIERE_EVERY = 3  # days between two premieres
PREMIERE_DAYS = 7  # the week a premiere holds the last places of every top 50
SWING_SCORE = 0.3  # score points a title swings either way over a few weeks
SWING_MEMBERS = 2.0  # the factor its members swing by either way
TREND_DAYS = 240  # the period of a title's slow rise and fall (a breakout crosses the chart and comes back)
# Enough days for the monthly window to find its baseline (D - 60 <= B <= D - 30) on every day of the
# last week the requests ask for, even at small N.
MIN_DAYS = MONTHLY + 7
# The last days every feed's integrity is checked on (a long history's every day would take longer than its fill).
CHECKED_DAYS = 8


def full_sizes() -> dict[str, int]:
    """Titles each feed lists a day on a whole-catalogue install: `popular` every page, the others their default."""
    return {
        name: CATALOGUE_TITLES if name == "popular" else (feed.default_pages or SEASON_TITLES // 25) * 25
        for name, feed in FEEDS.items()
    }


@dataclass(frozen=True)
class Shape:
    days: int
    sizes: dict[str, int]  # per feed: the titles it lists each day
    titles: int  # the catalogue, premieres aside

    @classmethod
    def for_rows(cls, rows: int) -> Shape:
        full = full_sizes()
        per_day = sum(full.values())
        days = max(MIN_DAYS, round(rows / per_day))
        scale = min(1.0, rows / (days * per_day))
        sizes = {feed: max(MIN_PER_DAY, round(size * scale)) for feed, size in full.items()}
        # A catalogue a twentieth larger than the longest list lets titles enter and leave every feed.
        return cls(days=days, sizes=sizes, titles=max(sizes.values()) * 21 // 20)

    @property
    def per_day(self) -> int:
        return sum(self.sizes.values())


class Titles:
    """Each title's traits as arrays, index i for mal_id i + 1, and its numbers on any day."""

    def __init__(self, count: int, debuts: list[int], rng: np.random.Generator) -> None:
        total = count + len(debuts)
        self.mal_ids = np.arange(1, total + 1)
        # Most titles drift slowly; one in twenty is a breakout (or a flop) that crosses the chart.
        breakout = rng.random(total) < 0.05
        self.drift = np.where(
            breakout, rng.choice([-1, 1], total) * rng.uniform(0.01, 0.03, total), rng.normal(0, 0.004, total)
        )
        self.base = rng.uniform(5.5, 9.1, total)
        # Members: log-uniform, from about 300 to a million on day 0; growth at most doubles them in three years.
        self.members = 10 ** rng.uniform(2.5, 6.0, total)
        self.growth = 1 + rng.uniform(0, 0.0007, total)
        self.bias = {feed: rng.normal(0, 0.6, total) for feed in FEEDS}
        self.period = rng.uniform(10, 40, total)
        self.phase = rng.random(total)
        self.trend_phase = rng.random(total)
        self.debut = np.zeros(total, dtype=np.int64)
        # Premieres come last: they start low and sink to the bottom after their week, pushing no title down.
        self.debut[count:] = debuts
        self.base[count:] = 5.0
        self.members[count:] = 1_000.0
        self.noise = rng

    def day(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(score in cents, members) of every title on day `index`; absent titles too, unused."""
        favour = np.sin(2 * np.pi * (index / self.period + self.phase))
        # Drift as a slow wave rather than a line: a long history's breakouts rise and fall, never pin at 10.
        trend = self.drift * (TREND_DAYS / (2 * np.pi)) * np.sin(2 * np.pi * (index / TREND_DAYS + self.trend_phase))
        score = self.base + trend + SWING_SCORE * favour + self.noise.normal(0, 0.01, len(self.base))
        cents = np.rint(np.clip(score, 1.0, 9.99) * 100).astype(np.int64)
        members = (self.members * self.growth**index * SWING_MEMBERS**favour).astype(np.int64)
        return cents, members


@dataclass
class Day:
    day: dt.date
    cents: np.ndarray  # per title index
    members: np.ndarray
    rank: np.ndarray  # MAL's rank by score, 0 for a title not out yet
    popularity: np.ndarray
    feeds: dict[str, np.ndarray]  # per feed: the title indexes it lists, in position order


def _premiered(ordered: np.ndarray, premieres: np.ndarray, places: int) -> np.ndarray:
    """`ordered` with the premieres in the last of its first `places` places."""
    at = max(0, min(places, len(ordered) + len(premieres)) - len(premieres))
    return np.concatenate([ordered[:at], premieres, ordered[at:]])


def _by(key: np.ndarray, among: np.ndarray) -> np.ndarray:
    """The title indexes `among`, by `key` descending, then by mal_id (the index) ascending."""
    return among[np.lexsort((among, -key[among]))]


def _ranks(ordered: np.ndarray, total: int) -> np.ndarray:
    ranks = np.zeros(total, dtype=np.int64)
    ranks[ordered] = np.arange(1, len(ordered) + 1)
    return ranks


def simulate(titles: Titles, shape: Shape, start: dt.date) -> Iterator[Day]:
    """Each day's numbers and the feeds' lists: `top` by score, `popular` by members, the others by biased score.

    A title appears on its debut day; in its first week it holds the last places of every list's top 50
    (or of a shorter list), where it moves no title above it (its numbers stay its own). Titles swing in and
    out of favour over a few weeks, so that even a small history's week has climbers and fallers in every feed.
    """
    total = len(titles.mal_ids)
    for index in range(shape.days):
        cents, members = titles.day(index)
        present = np.flatnonzero(titles.debut <= index)
        premiering = (titles.debut > 0) & (index - titles.debut < PREMIERE_DAYS) & (titles.debut <= index)
        premieres = np.flatnonzero(premiering)
        others = present[~premiering[present]]
        by_score = _by(cents, others)
        by_members = _by(members, others)
        feeds = {}
        for feed, size in shape.sizes.items():
            if feed == "top":
                ordered = by_score
            elif feed == "popular":
                ordered = by_members
            else:
                ordered = _by(cents + np.rint(titles.bias[feed] * 100).astype(np.int64), others)[: size + NEW_ENTRY_TOP]
            feeds[feed] = _premiered(ordered, premieres, min(NEW_ENTRY_TOP, size))[:size]
        yield Day(
            day=start + dt.timedelta(days=index),
            cents=cents,
            members=members,
            rank=_ranks(_premiered(by_score, premieres, min(NEW_ENTRY_TOP, shape.sizes["top"])), total),
            popularity=_ranks(_premiered(by_members, premieres, min(NEW_ENTRY_TOP, shape.sizes["popular"])), total),
            feeds=feeds,
        )


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


def _seasons(count: int, today: dt.date) -> list[tuple[int, str]]:
    """The `count` seasons ending with today's, newest first."""
    now = today.year * 4 + (today.month - 1) // 3
    return [(quarter // 4, SEASON_NAMES[quarter % 4]) for quarter in range(now, now - count, -1)]


def _catalogue(total: int, rng: random.Random, start: dt.date) -> None:
    """The titles as Jikan items, validated and merged by the ETL's own code (search text, genres, studios)."""
    # Titles share out the seasons of the last five years (fewer for a small catalogue), so that every
    # season shown by default has enough titles (SEASON_MIN_VOLUME).
    seasons = _seasons(max(1, min(20, total // 5)), timezone.now().date())
    records = []
    for mal_id in range(1, total + 1):
        checked = item_validate(jikan_item(mal_id, rng, seasons[(mal_id - 1) % len(seasons)]))
        if not isinstance(checked, AnimeRecord):
            raise CommandError(f"A synthetic title fails validation: {checked}")
        records.append(checked)
    services.anime_upsert(records=records, seen_on=start)


def jikan_item(mal_id: int, rng: random.Random, season: tuple[int, str]) -> dict[str, Any]:
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
        "synopsis": "A synthetic title for the benchmarks.",
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
        for n, (feed, size) in enumerate(shape.sizes.items()):
            # Feeds are scheduled ten minutes apart after midnight UTC (see the default beat schedule).
            finished = dt.datetime.combine(day, dt.time(0, 12), tzinfo=dt.UTC) + dt.timedelta(minutes=10 * n)
            pages = math.ceil(size / 25)
            runs.append(
                EtlRun(
                    feed=feed,
                    taken_on=day,
                    trigger=EtlRun.Trigger.BEAT,
                    status=EtlRun.Status.SUCCESS,
                    finished_at=finished,
                    pages=pages,
                    requests=pages,
                    items_received=size,
                    items_loaded=size,
                )
            )
    EtlRun.objects.bulk_create(runs, batch_size=2000)
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


def _copy_text(day: Day, runs: dict[tuple[str, dt.date], int]) -> str:
    """The day's rows of every feed as COPY text (tab-separated lines), built a column at a time."""
    taken_on = day.day.isoformat()
    blocks = []
    for feed, listed in day.feeds.items():
        members = day.members[listed]
        cents = day.cents[listed]
        columns = [
            (listed + 1).astype(str),
            np.full(len(listed), f"{feed}\t{taken_on}"),
            np.arange(1, len(listed) + 1).astype(str),
            day.rank[listed].astype(str),
            day.popularity[listed].astype(str),
            np.char.add(np.char.add((cents // 100).astype(str), "."), np.char.zfill((cents % 100).astype(str), 2)),
            (members * 3 // 5).astype(str),
            members.astype(str),
            (members // 80).astype(str),
            np.full(len(listed), str(runs[(feed, day.day)])),
        ]
        blocks.append("\n".join(map("\t".join, zip(*columns, strict=True))))
    return "\n".join(blocks) + "\n"


@contextlib.contextmanager
def bulk_load(model: type[models.Model]) -> Iterator[None]:
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
        # Index builds sort in memory: a larger budget than the default 64 MB makes them several times faster.
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            cursor.execute(definition)
        for name, definition in constraints:
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {connection.ops.quote_name(name)} {definition}")


def _write(shape: Shape, titles: Titles, start: dt.date, runs: dict[tuple[str, dt.date], int]) -> tuple[Day, dict]:
    """Every day's rows and SnapshotDays; returns the last day and each listed title's (first, last) day index."""
    first_seen = np.full(len(titles.mal_ids), -1, dtype=np.int64)
    last_seen = np.full(len(titles.mal_ids), -1, dtype=np.int64)
    table = connection.ops.quote_name(Snapshot._meta.db_table)
    names = ", ".join(SNAPSHOT_COLUMNS)
    last = None
    for index, day in enumerate(simulate(titles, shape, start)):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                copy.write(_copy_text(day, runs))
        else:
            lines = _copy_text(day, runs).splitlines()
            rows = [[None if v == "" else v for v in line.split("\t")] for line in lines]
            marks = ", ".join(["%s"] * len(SNAPSHOT_COLUMNS))
            with connection.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
        # The read side finds a feed's days here, as the ETL records them with the day's rows.
        SnapshotDay.objects.bulk_create(
            SnapshotDay(feed=feed, taken_on=day.day, rows=len(listed), run_id=runs[(feed, day.day)])
            for feed, listed in day.feeds.items()
        )
        listed = np.unique(np.concatenate(list(day.feeds.values())))
        first_seen[listed[first_seen[listed] < 0]] = index
        last_seen[listed] = index
        last = day
    assert last is not None
    return last, {"first": first_seen, "last": last_seen}


LATEST_FIELDS = ("first_seen", "last_seen", "score", "rank", "popularity", "members", "scored_by", "favorites")


def _mark_latest(seen: dict, last: Day, start: dt.date) -> None:
    """Give each title its first and last day in a feed and its latest numbers, as the ETL keeps them."""
    rows = []
    for mal_id in Anime.objects.values_list("mal_id", flat=True):
        i = mal_id - 1
        first, latest = int(seen["first"][i]), int(seen["last"][i])
        members = int(last.members[i])
        rows.append(
            (
                mal_id,
                start + dt.timedelta(days=first if first >= 0 else (last.day - start).days),
                start + dt.timedelta(days=latest if latest >= 0 else (last.day - start).days),
                Decimal(int(last.cents[i])) / 100,
                int(last.rank[i]) or None,
                int(last.popularity[i]) or None,
                members,
                members * 3 // 5,
                members // 80,
            )
        )
    if connection.vendor != "postgresql":
        anime = [Anime(mal_id=row[0], **dict(zip(LATEST_FIELDS, row[1:], strict=True))) for row in rows]
        Anime.objects.bulk_update(anime, LATEST_FIELDS, batch_size=100)
        return
    # bulk_update's CASE has a branch per title for every row it updates: 86 s for the whole catalogue.
    # A temporary table and one UPDATE ... FROM take about a second.
    with connection.cursor() as cursor:
        columns = ", ".join(("mal_id", *LATEST_FIELDS))
        cursor.execute(
            f"CREATE TEMPORARY TABLE latest ON COMMIT DROP AS SELECT {columns} FROM snapshots_anime WITH NO DATA"
        )
        with cursor.copy(f"COPY latest ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        assignments = ", ".join(f"{field} = latest.{field}" for field in LATEST_FIELDS)
        cursor.execute(
            f"UPDATE snapshots_anime SET {assignments} FROM latest WHERE snapshots_anime.mal_id = latest.mal_id"
        )


def fill(rows: int) -> tuple[Shape, Context]:
    """Write about `rows` snapshot rows of a deterministic history ending today; returns its shape and what to ask."""
    shape = Shape.for_rows(rows)
    end = timezone.now().date()
    start = end - dt.timedelta(days=shape.days - 1)
    # A premiere every few days, so that each day of the last week has new entries in every feed.
    debuts = list(range(PREMIERE_EVERY, shape.days, PREMIERE_EVERY))
    titles = Titles(shape.titles, debuts, np.random.default_rng(20240101))
    with transaction.atomic():
        _catalogue(len(titles.mal_ids), random.Random(20240101), start)
        runs = _runs(shape, start)
        with bulk_load(Snapshot):
            last, seen = _write(shape, titles, start, runs)
        _mark_latest(seen, last, start)
        # As each day's commit has them written (analytics.apps), once the indexes are back.
        for index in range(shape.days):
            for feed in shape.sizes:
                feed_moves_write(feed=feed, day=start + dt.timedelta(days=index))
    check(shape)
    # Titles by their latest rank, the best first: the detail endpoints ask for popular and obscure ones.
    listed = np.flatnonzero((seen["last"] >= 0) & (last.rank > 0))
    ranked = [int(i) + 1 for i in listed[np.argsort(last.rank[listed], kind="stable")]]
    every_day = [start + dt.timedelta(days=n) for n in range(shape.days)]
    return shape, Context(days=every_day, mal_ids=ranked, words=SEARCH_WORDS)


def check(shape: Shape) -> None:
    """The invariants the ETL keeps: a SnapshotDay counting each feed's day's rows, and what `etl validate` checks.

    Row counts are checked on every day; the positions and ranks of each feed's last CHECKED_DAYS days.
    """
    counted = Snapshot.objects.values_list("feed", "taken_on").annotate(rows=Count("pk")).order_by()
    recorded = list(SnapshotDay.objects.values_list("feed", "taken_on", "rows").order_by("feed", "-taken_on"))
    mismatched = sorted(set(counted) ^ set(recorded))
    problems = [f"{feed} {day}: SnapshotDay rows differ from the day's rows" for feed, day, _ in mismatched]
    checked: dict[str, int] = {}
    for feed, day, _ in recorded:
        checked[feed] = checked.get(feed, 0) + 1
        if checked[feed] <= CHECKED_DAYS:
            problems += snapshot_problems(feed=feed, taken_on=day)
    problems += misdated_days()
    if problems:
        raise CommandError(f"The synthetic history breaks the ETL's invariants: {'; '.join(problems[:5])}")


def analyze() -> None:
    # Fresh statistics, as autovacuum would have them in production; VACUUM also sets the visibility map,
    # without which PostgreSQL's index-only scans must visit the heap for every row of a bulk-loaded table.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            tables = (
                Snapshot,
                SnapshotDay,
                FeedMoves,
                EtlRun,
                Anime,
                Genre,
                Anime.genres.through,
                Anime.studios.through,
            )
            for model in tables:
                cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        else:
            cursor.execute("ANALYZE")
