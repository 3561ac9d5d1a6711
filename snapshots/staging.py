"""A run's staging area: temporary tables filled page by page, merged into the real ones in one go.

A run validates each page as it arrives, yet the day must change all at once or not at all. Staged
rows live in temporary tables of the run's own database connection (written with COPY on
PostgreSQL), so every page is parsed once, memory stays flat whatever the number of pages, and the
load's transaction is a handful of set-based INSERT ... SELECT statements. The SQL is plain enough
to run on SQLite too (the demo).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import operator
from collections.abc import Iterable, Sequence
from datetime import date
from types import TracebackType
from typing import Any

from django.db import DatabaseError, connection

from snapshots.models import ANIME_FACT_FIELDS, Anime, Genre, Snapshot, Studio
from snapshots.validation import AnimeRecord

TITLES, GENRE_LINKS, STUDIO_LINKS = "etl_stage_title", "etl_stage_genre", "etl_stage_studio"
# A title's facts, the search text derived from them and its minutes per episode (not in ANIME_FACT_FIELDS,
# which the analytics answers show).
TITLE_FIELDS = (*ANIME_FACT_FIELDS, "search_text", "episode_minutes")
TITLE_COLUMNS = ("mal_id", *TITLE_FIELDS)
SNAPSHOT_FIELDS = ("rank", "popularity", "score", "scored_by", "members", "favorites")
# Staged rows are sent in batches of this many titles: few statements, bounded memory.
BATCH = 1000
# Where COPY is missing, rows_insert sends this many rows per executemany: bounded memory for any number.
INSERT_BATCH = 10_000

_title_values = operator.attrgetter(*TITLE_COLUMNS)
_TITLES_AT = TITLE_COLUMNS.index("titles")


def _title_row(record: AnimeRecord) -> list[Any]:
    row = list(_title_values(record))
    # A JSON column is staged as its text, which COPY and SQLite both read into the column's type.
    row[_TITLES_AT] = json.dumps(row[_TITLES_AT], ensure_ascii=False)
    return row


class Staging:
    """Stage validated titles in order (their position is their order), then merge them.

    Use as a context manager: the tables are created on entry and dropped on exit.
    """

    def __init__(self) -> None:
        self._written = 0
        self._pending: list[AnimeRecord] = []
        # Few distinct values (MAL has about 80 genres), so kept in memory: {mal_id: row}.
        self._genres: dict[int, tuple[int, str, str]] = {}
        self._studios: dict[int, tuple[int, str]] = {}

    def __enter__(self) -> Staging:
        self._drop()
        # Typed like the real columns, so COPY and the merge convert nothing.
        columns = ", ".join(
            f"{_q(f.name)} {f.db_type(connection)}" for f in Anime._meta.concrete_fields if f.name in TITLE_COLUMNS
        )
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TEMPORARY TABLE {TITLES} (position integer, {columns})")
            cursor.execute(f"CREATE TEMPORARY TABLE {GENRE_LINKS} (anime_id integer, genre_id integer)")
            cursor.execute(f"CREATE TEMPORARY TABLE {STUDIO_LINKS} (anime_id integer, studio_id integer)")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self._drop()
            return
        # The connection may be what failed; the tables die with it anyway. Keep the first error.
        with contextlib.suppress(DatabaseError):
            self._drop()

    @property
    def staged(self) -> int:
        """Titles staged so far, written or still pending."""
        return self._written + len(self._pending)

    def add(self, record: AnimeRecord) -> None:
        self._pending.append(record)
        if len(self._pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        records, self._pending = self._pending, []
        if not records:
            return
        first = self._written + 1
        rows_insert(TITLES, ("position", *TITLE_COLUMNS), [(p, *_title_row(r)) for p, r in enumerate(records, first)])
        rows_insert(GENRE_LINKS, ("anime_id", "genre_id"), [(r.mal_id, g[0]) for r in records for g in r.genres])
        rows_insert(STUDIO_LINKS, ("anime_id", "studio_id"), [(r.mal_id, s[0]) for r in records for s in r.studios])
        for record in records:
            self._genres.update((g[0], g) for g in record.genres)
            self._studios.update((s[0], s) for s in record.studios)
        self._written += len(records)

    def titles_merge(self, *, seen_on: date) -> None:
        """Insert or update the staged titles and make their genre and studio links exactly the staged ones."""
        self.flush()
        Genre.objects.bulk_create(
            [Genre(mal_id=mal_id, name=name, kind=kind) for mal_id, name, kind in self._genres.values()],
            update_conflicts=True,
            unique_fields=["mal_id"],
            update_fields=["name", "kind"],
        )
        Studio.objects.bulk_create(
            [Studio(mal_id=mal_id, name=name) for mal_id, name in self._studios.values()],
            update_conflicts=True,
            unique_fields=["mal_id"],
            update_fields=["name"],
        )
        facts = ", ".join(_q(name) for name in TITLE_FIELDS)
        updates = ", ".join(f"{_q(name)} = excluded.{_q(name)}" for name in ("last_seen", *TITLE_FIELDS))
        # `WHERE true`: SQLite needs it to tell the upsert's ON CONFLICT from a join's ON.
        _execute(
            f"INSERT INTO {_q(Anime._meta.db_table)} (mal_id, first_seen, last_seen, {facts}) "
            f"SELECT mal_id, %s, %s, {facts} FROM {TITLES} WHERE true "
            f"ON CONFLICT (mal_id) DO UPDATE SET {updates}",
            [seen_on, seen_on],
        )
        _links_replace(Anime.genres.through._meta.db_table, "genre_id", GENRE_LINKS)
        _links_replace(Anime.studios.through._meta.db_table, "studio_id", STUDIO_LINKS)

    def snapshots_replace(self, *, feed: str, taken_on: date, run_id: int) -> None:
        """Make the staged titles, in staged order, the feed's whole day."""
        self.flush()
        table = _q(Snapshot._meta.db_table)
        numbers = ", ".join(_q(name) for name in SNAPSHOT_FIELDS)
        _execute(f"DELETE FROM {table} WHERE feed = %s AND taken_on = %s", [feed, taken_on])
        _execute(
            f"INSERT INTO {table} (anime_id, feed, taken_on, position, run_id, {numbers}) "
            f"SELECT mal_id, %s, %s, position, %s, {numbers} FROM {TITLES}",
            [feed, taken_on, run_id],
        )

    def _drop(self) -> None:
        with connection.cursor() as cursor:
            for table in (TITLES, GENRE_LINKS, STUDIO_LINKS):
                cursor.execute(f"DROP TABLE IF EXISTS {table}")


def _links_replace(through: str, target: str, staged: str) -> None:
    """Writes only what changed: genres and studios rarely do, so a daily load usually writes no link.

    Anti-joins rather than ON CONFLICT: most staged links already exist, and skipping them in a join
    costs a fraction of an index probe and a speculative insert per row.
    """
    through = _q(through)
    _execute(
        f"DELETE FROM {through} WHERE anime_id IN (SELECT mal_id FROM {TITLES}) AND NOT EXISTS "
        f"(SELECT 1 FROM {staged} s WHERE s.anime_id = {through}.anime_id AND s.{target} = {through}.{target})"
    )
    _execute(
        f"INSERT INTO {through} (anime_id, {target}) SELECT DISTINCT anime_id, {target} FROM {staged} s "
        f"WHERE NOT EXISTS (SELECT 1 FROM {through} t WHERE t.anime_id = s.anime_id AND t.{target} = s.{target})"
    )


def rows_insert(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Append rows: COPY on PostgreSQL (nothing to build or escape as SQL text), executemany elsewhere.

    `rows` may be a generator: COPY streams it, and executemany takes it INSERT_BATCH rows at a time, so
    memory stays flat however many rows it yields. No rows, no statement.
    """
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return
    stream = itertools.chain([first], iterator)
    names = ", ".join(_q(column) for column in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Reference: https://www.psycopg.org/psycopg3/docs/basic/copy.html
            with cursor.copy(f"COPY {_q(table)} ({names}) FROM STDIN") as copy:
                for row in stream:
                    copy.write_row(row)
            return
        insert = f"INSERT INTO {_q(table)} ({names}) VALUES ({', '.join(['%s'] * len(columns))})"
        while batch := list(itertools.islice(stream, INSERT_BATCH)):
            cursor.executemany(insert, batch)


def _execute(sql: str, params: Sequence[Any] = ()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _q(name: str) -> str:
    return connection.ops.quote_name(name)
