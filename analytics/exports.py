"""The open data dump: the whole ranking history as Parquet, SQLite and gzipped CSV, with a manifest.

A dump is written into `<out>/.tmp-<name>` and renamed to `<out>/<name>` only once every file and the
manifest are complete, so a reader never sees half a dump and an interrupted one leaves nothing visible.
Snapshots are streamed from a server-side cursor in batches, one file per feed and month, so memory
stays flat however long the history grows.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from analytics.dumps import Dump, dump_read, dumps_list
from snapshots.feeds import rank_by
from snapshots.models import Anime, DataEdit, EtlRun, Snapshot, SnapshotDay

SCHEMA_VERSION = 1
FORMATS = ("parquet", "sqlite", "csv")
SQLITE_NAME = "animedash.sqlite3"
SUFFIXES = {"parquet": ".parquet", "csv": ".csv.gz"}
BATCH_ROWS = 10_000
# A temporary folder this old was left by a killed process (a crash cleans up after itself).
STALE_TMP_SECONDS = 24 * 3600
LICENCE = (
    "Facts only: rankings, numbers and title facts; no synopses and no images. Data from MyAnimeList "
    "(https://myanimelist.net) via the Jikan API (https://jikan.moe); MyAnimeList's terms apply to it."
)


@dataclass(frozen=True)
class Column:
    name: str
    arrow: pa.DataType
    sql: str
    meaning: str
    unit: str = ""


def _col(name: str, arrow: pa.DataType, meaning: str, unit: str = "") -> Column:
    sql = {
        pa.int32(): "INTEGER",
        pa.int64(): "INTEGER",
        pa.bool_(): "INTEGER",
        pa.date32(): "TEXT",
        pa.string(): "TEXT",
    }.get(arrow, "NUMERIC" if pa.types.is_decimal(arrow) else "TEXT")
    return Column(name, arrow, sql, meaning, unit)


DECIMAL = pa.decimal128(4, 2)
TIMESTAMP = pa.timestamp("us", tz="UTC")
I32, I64, DATE, TEXT = pa.int32(), pa.int64(), pa.date32(), pa.string()

TABLES: dict[str, tuple[str, tuple[Column, ...]]] = {
    "snapshots": (
        "Where one title stood in one feed on one day.",
        (
            _col("mal_id", I32, "MyAnimeList id of the title"),
            _col("feed", TEXT, "the ranking list (top, airing, upcoming, popular, movies, season)"),
            _col("taken_on", DATE, "the day of the snapshot", "UTC date"),
            _col("feed_rank", I32, "the rank the feed ranks by: rank for top, popularity for popular, else position"),
            _col("position", I32, "1-based order among the items loaded that day"),
            _col("rank", I32, "MyAnimeList rank by score that day"),
            _col("popularity", I32, "MyAnimeList rank by members that day"),
            _col("score", DECIMAL, "MyAnimeList mean score that day", "points out of 10, 2 decimals"),
            _col("scored_by", I32, "users who scored the title", "users"),
            _col("members", I32, "users with the title on their list", "users"),
            _col("favorites", I32, "users who made the title a favourite", "users"),
        ),
    ),
    "titles": (
        "Facts about each title (no synopsis, no image).",
        (
            _col("mal_id", I32, "MyAnimeList id"),
            _col("title", TEXT, "main title"),
            _col("title_english", TEXT, "English title, empty when none"),
            _col("title_japanese", TEXT, "Japanese title, empty when none"),
            _col("type", TEXT, "TV, Movie, OVA, ONA, Special, Music..."),
            _col("source", TEXT, "source material (Manga, Original, Light novel...)"),
            _col("episodes", I32, "episode count, null when unknown", "episodes"),
            _col("episode_minutes", I32, "length of one episode, null when unknown", "minutes"),
            _col("status", TEXT, "airing status as MyAnimeList gives it"),
            _col("airing", pa.bool_(), "currently airing"),
            _col("aired_from", DATE, "first air date", "date"),
            _col("aired_to", DATE, "last air date", "date"),
            _col("season", TEXT, "premiere season (winter, spring, summer, fall)"),
            _col("year", I32, "premiere year", "year"),
            _col("rating", TEXT, "age rating"),
            _col("url", TEXT, "the title's MyAnimeList page"),
            _col("first_seen", DATE, "first day AnimeDash saw the title in any feed", "UTC date"),
            _col("last_seen", DATE, "last day AnimeDash saw the title in any feed", "UTC date"),
        ),
    ),
    "title_genres": (
        "The genres, themes and demographics of each title.",
        (
            _col("mal_id", I32, "MyAnimeList id of the title"),
            _col("genre_id", I32, "MyAnimeList id of the genre"),
            _col("name", TEXT, "genre name"),
            _col("kind", TEXT, "genre, explicit, theme or demographic"),
        ),
    ),
    "title_studios": (
        "The studios of each title.",
        (
            _col("mal_id", I32, "MyAnimeList id of the title"),
            _col("studio_id", I32, "MyAnimeList id of the studio"),
            _col("name", TEXT, "studio name"),
        ),
    ),
    "feed_days": (
        "The days each feed has a committed snapshot, and how many rows.",
        (
            _col("feed", TEXT, "the ranking list"),
            _col("taken_on", DATE, "the day", "UTC date"),
            _col("rows", I32, "snapshot rows that day", "rows"),
        ),
    ),
    "etl_runs": (
        "The ETL runs that fetched the feeds from Jikan.",
        (
            _col("id", I64, "run id"),
            _col("feed", TEXT, "the ranking list"),
            _col("taken_on", DATE, "the day the run snapshotted", "UTC date"),
            _col("status", TEXT, "running, success, partial, failed, skipped or queued"),
            _col("started_at", TIMESTAMP, "when the run started", "UTC timestamp"),
            _col("finished_at", TIMESTAMP, "when the run ended, null while running", "UTC timestamp"),
            _col("items_loaded", I32, "items written as snapshot rows", "items"),
            _col("items_rejected", I32, "items that failed validation", "items"),
        ),
    ),
}
# For the usual reads: a feed's days, and one title's history.
SQLITE_INDEXES = (
    "CREATE INDEX snapshots_feed_day ON snapshots (feed, taken_on)",
    "CREATE INDEX snapshots_mal_id ON snapshots (mal_id)",
    "CREATE INDEX title_genres_mal_id ON title_genres (mal_id)",
    "CREATE INDEX title_studios_mal_id ON title_studios (mal_id)",
)

Row = tuple[Any, ...]
# (table, part name or None for a table in one file, rows). A part's batches come together, in order.
Batch = tuple[str, str | None, list[Row]]


@dataclass
class ExportResult:
    path: Path
    rows: dict[str, int]
    files: int
    bytes: int
    seconds: float
    deleted: list[Path] = field(default_factory=list)
    reused: int = 0  # (feed, month) parts linked from the previous dump
    rewritten: int = 0  # (feed, month) parts read from the database


def exports_write(
    *,
    out: Path,
    formats: Sequence[str] = FORMATS,
    since: date | None = None,
    keep: int = 7,
    incremental: bool = False,
    on_file: Callable[[str], None] | None = None,
) -> ExportResult:
    """Write one dump under `out` and keep only the newest `keep` dumps.

    All tables are read in one REPEATABLE READ transaction on PostgreSQL, so they agree with each
    other. With `since`, only the snapshot rows, feed days and runs from that day on are written (an
    incremental dump, marked so in its manifest); titles, genres and studios are always whole.

    `incremental` writes the same whole dump with less work: the Parquet and CSV files of each
    (feed, month) whose days are as the newest dump under `out` recorded them are hard links to that
    dump's files, and only the other months are read from the database (see `_reuse_plan`).
    """
    if keep < 1:
        raise ValueError("keep must be at least 1: the dump just written is always kept")
    unknown = set(formats) - set(FORMATS)
    if unknown or not formats:
        raise ValueError(f"unknown format {', '.join(sorted(unknown)) or '(none)'}; choose from {', '.join(FORMATS)}")
    started = time.monotonic()
    generated_at = timezone.now().replace(microsecond=0)
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(out)
    name = generated_at.strftime("%Y-%m-%dT%H%M%SZ")
    tmp = out / f".tmp-{name}-{time.time_ns()}"
    tmp.mkdir()
    try:
        writer = _DumpWriter(tmp, formats, on_file)
        with _consistent_read():
            parts = _fingerprints(since)
            last_edit = DataEdit.objects.aggregate(last=Max("id"))["last"] or 0
            plan = _reuse_plan(out, writer.formats, since, parts, last_edit) if incremental else _Plan()
            writer.reuse(plan)
            stats = writer.write_all(_batches(since, writer.part_runs, plan.rewrite))
        manifest = _manifest(
            writer, stats, generated_at=generated_at, since=since, parts=parts, last_edit=last_edit, plan=plan
        )
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        path = _publish(tmp, out, name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    deleted = _prune(out, keep=keep)
    total_bytes = sum(f["bytes"] for f in manifest["files"])
    return ExportResult(
        path,
        writer.table_rows,
        len(manifest["files"]),
        total_bytes,
        time.monotonic() - started,
        deleted,
        reused=len(plan.reuse),
        rewritten=stats.parts_written,
    )


# Reading


@contextmanager
def _consistent_read() -> Iterator[None]:
    """One snapshot of the database for the whole dump (PostgreSQL), so snapshots, days and runs agree.

    Inside a caller's transaction (the tests) the isolation level can no longer be set: it reads in that one."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def _batches(since: date | None, part_runs: dict[str, set[int]], only: Sequence[str] | None) -> Iterator[Batch]:
    yield from _snapshot_batches(since, part_runs, only)
    titles = Anime.objects.order_by("mal_id").values_list(*[c.name for c in TABLES["titles"][1]])
    yield from _chunked("titles", titles.iterator(chunk_size=BATCH_ROWS))
    genres = Anime.genres.through.objects.order_by("anime_id", "genre_id")
    yield from _chunked(
        "title_genres", genres.values_list("anime_id", "genre_id", "genre__name", "genre__kind").iterator(BATCH_ROWS)
    )
    studios = Anime.studios.through.objects.order_by("anime_id", "studio_id")
    yield from _chunked(
        "title_studios", studios.values_list("anime_id", "studio_id", "studio__name").iterator(BATCH_ROWS)
    )
    days = SnapshotDay.objects.order_by("feed", "taken_on")
    runs = EtlRun.objects.order_by("id")
    if since is not None:
        days, runs = days.filter(taken_on__gte=since), runs.filter(taken_on__gte=since)
    yield from _chunked("feed_days", days.values_list("feed", "taken_on", "rows").iterator(BATCH_ROWS))
    run_fields = [c.name for c in TABLES["etl_runs"][1]]
    yield from _chunked("etl_runs", runs.values_list(*run_fields).iterator(BATCH_ROWS))


SNAPSHOT_FIELDS = (
    *("anime_id", "feed", "taken_on", "position", "rank", "popularity", "score"),
    *("scored_by", "members", "favorites", "run_id"),
)


def _snapshot_batches(
    since: date | None, part_runs: dict[str, set[int]], only: Sequence[str] | None = None
) -> Iterator[Batch]:
    """Snapshot rows in (feed, day, position) order, cut into batches that never span a feed-month.

    `only`: just these parts (`feed=top/2024-01`), when the others are reused. Adds the ids of the ETL
    runs that wrote each part's rows to `part_runs[part]`."""
    rows = Snapshot.objects.order_by("feed", "taken_on", "position")
    if since is not None:
        rows = rows.filter(taken_on__gte=since)
    if only is not None:
        rows = rows.filter(_parts_filter(only))
    part: str | None = None
    batch: list[Row] = []
    # Where each feed's rank field sits in a row: rank for top, popularity for popular, else position.
    rank_at: dict[str, int] = {}
    for row in rows.values_list(*SNAPSHOT_FIELDS).iterator(chunk_size=BATCH_ROWS):
        mal_id, feed, day, *numbers, run_id = row
        row_part = _part_of(feed, day)
        if row_part != part or len(batch) >= BATCH_ROWS:
            if batch:
                yield ("snapshots", part, batch)
            part, batch = row_part, []
        if feed not in rank_at:
            rank_at[feed] = SNAPSHOT_FIELDS.index(rank_by(feed))
        batch.append((mal_id, feed, day, row[rank_at[feed]], *numbers))
        if run_id is not None:
            part_runs.setdefault(row_part, set()).add(run_id)
    if batch:
        yield ("snapshots", part, batch)


def _part_of(feed: str, day: date) -> str:
    return f"feed={feed}/{day:%Y-%m}"


def _parts_filter(parts: Sequence[str]) -> Q:
    """The snapshot rows of `parts`, as one date range per run of consecutive months of a feed."""
    months: dict[str, list[date]] = {}
    for part in parts:
        feed, _, month = part.removeprefix("feed=").partition("/")
        months.setdefault(feed, []).append(date.fromisoformat(f"{month}-01"))
    condition = Q(pk__in=[])  # no part: no row
    for feed, starts in months.items():
        starts.sort()
        first = last = starts[0]
        for start in [*starts[1:], None]:
            if start is not None and start == _next_month(last):
                last = start
                continue
            condition |= Q(feed=feed, taken_on__gte=first, taken_on__lt=_next_month(last))
            if start is not None:
                first = last = start
    return condition


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _fingerprints(since: date | None) -> dict[str, str]:
    """Each (feed, month)'s fingerprint: the sha256 of its SnapshotDay rows (day, rows, when loaded).

    SnapshotDay is written in the same transaction as the day's snapshot rows, so a new day, a re-run (even
    one that resumes under the same run) or a deleted day changes its month's fingerprint; pruning old runs
    does not. Hand edits are DataEdit rows."""
    days = SnapshotDay.objects.order_by("feed", "taken_on").values_list("feed", "taken_on", "rows", "loaded_at")
    if since is not None:
        days = days.filter(taken_on__gte=since)
    digests: dict[str, Any] = {}
    for feed, day, rows, loaded_at in days.iterator(chunk_size=BATCH_ROWS):
        part = _part_of(feed, day)
        digests.setdefault(part, hashlib.sha256()).update(
            f"{day.isoformat()},{rows},{loaded_at.isoformat()}\n".encode()
        )
    return {part: digest.hexdigest() for part, digest in digests.items()}


@dataclass
class _Plan:
    """What an incremental dump takes from the previous one; with no base, everything is written."""

    base: Dump | None = None
    reuse: dict[str, dict[str, Any]] = field(default_factory=dict)  # part -> its facts in the base manifest
    rewrite: list[str] | None = None  # the parts read from the database; None: all of them


def _reuse_plan(out: Path, formats: Sequence[str], since: date | None, parts: dict[str, str], last_edit: int) -> _Plan:
    """Which (feed, month) parts of the newest dump under `out` can be linked instead of written.

    The newest readable dump is the base when it has the same schema, `since` and formats (or more),
    and no hand edit (DataEdit) came after it. A part is reused when its fingerprint is the one the base
    recorded and the base's files of it are on disk as its manifest says; every other part, present in
    the database or in the base, is read again (a part gone from the database is then simply left out)."""
    base = next((d for d in map(dump_read, reversed(dumps_list(out=out))) if d is not None), None)
    if base is None:
        return _Plan()
    manifest = base.manifest
    if (
        manifest.get("schema_version") != SCHEMA_VERSION
        or manifest.get("since") != (since.isoformat() if since else None)
        or not set(formats) <= set(manifest.get("formats", []))
        or manifest.get("last_data_edit") != last_edit
        or not isinstance(manifest.get("parts"), dict)
    ):
        return _Plan()
    reuse = {
        part: facts
        for part, facts in manifest["parts"].items()
        if parts.get(part) is not None
        and facts.get("fingerprint") == parts[part]
        and all(_on_disk(base, _part_path(fmt, part)) for fmt in formats if fmt != "sqlite")
    }
    if "sqlite" in formats and not _on_disk(base, SQLITE_NAME):
        return _Plan()
    rewrite = sorted((set(parts) | set(manifest["parts"])) - set(reuse))
    return _Plan(base, reuse, rewrite)


def _part_path(fmt: str, part: str) -> str:
    return f"{fmt}/snapshots/{part}{SUFFIXES[fmt]}"


def _on_disk(dump: Dump, path: str) -> bool:
    listed = dump.file(path)
    file = dump.folder / path
    return listed is not None and file.is_file() and file.stat().st_size == listed.bytes


def _chunked(table: str, rows: Iterable[Row]) -> Iterator[Batch]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH_ROWS:
            yield (table, None, batch)
            batch = []
    # A table with no rows still gets its (empty) file, so every dump has the same file set.
    yield (table, None, batch)


# Writing


@dataclass
class _Stats:
    first_day: date | None = None
    last_day: date | None = None
    run_ids: list[int] = field(default_factory=list)
    parts_written: int = 0


class _DumpWriter:
    def __init__(self, root: Path, formats: Sequence[str], on_file: Callable[[str], None] | None) -> None:
        self.root = root
        self.formats = [f for f in FORMATS if f in formats]
        self.on_file = on_file or (lambda path: None)
        self.files: list[dict[str, Any]] = []
        self.table_rows: dict[str, int] = dict.fromkeys(TABLES, 0)
        # Each (feed, month) part's rows, first and last day; and the runs that wrote its rows.
        self.parts: dict[str, dict[str, Any]] = {}
        self.part_runs: dict[str, set[int]] = {}
        self._plan = _Plan()
        self._part: tuple[str, str | None] | None = None
        self._parquet: pq.ParquetWriter | None = None
        self._csv: tuple[Any, Any] | None = None
        self._part_rows = 0
        self._sqlite: sqlite3.Connection | None = None

    def reuse(self, plan: _Plan) -> None:
        """Link the plan's reused parts into this dump, with their manifest entries and facts."""
        self._plan = plan
        if plan.base is None:
            return
        for part, facts in plan.reuse.items():
            for fmt in self.formats:
                if fmt != "sqlite":
                    self._link(plan.base, _part_path(fmt, part))
            self.parts[part] = {key: facts[key] for key in ("rows", "first_day", "last_day")}
            self.part_runs[part] = set(facts.get("run_ids", []))
            self.table_rows["snapshots"] += facts["rows"]

    def _link(self, base: Dump, relative: str) -> None:
        source, target = base.folder / relative, self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)  # a dump never changes a file: both dumps can share it
        except OSError:
            shutil.copy2(source, target)  # another filesystem, or no hard links there
        listed = base.file(relative)
        assert listed is not None
        entry = {"path": relative, "format": listed.format, "rows": dict(listed.rows), "bytes": listed.bytes}
        self.files.append(entry | {"sha256": listed.sha256})
        self.on_file(relative)

    def write_all(self, batches: Iterable[Batch]) -> _Stats:
        stats = _Stats()
        if "sqlite" in self.formats:
            self._sqlite_open()
        try:
            for table, part, rows in batches:
                if (table, part) != self._part:
                    self._close_part()
                    self._open_part(table, part)
                    stats.parts_written += table == "snapshots"
                self._write(table, rows)
                if table == "snapshots" and rows and part is not None:
                    facts = self.parts.setdefault(part, {"rows": 0, "first_day": None, "last_day": None})
                    facts["rows"] += len(rows)
                    first, last = rows[0][2].isoformat(), rows[-1][2].isoformat()  # rows come by day
                    facts["first_day"] = min(first, facts["first_day"] or first)
                    facts["last_day"] = max(last, facts["last_day"] or last)
            self._close_part()
            if self._sqlite is not None:
                self._sqlite_close()
        finally:
            self._abort()
        # Rows come by feed first, so any feed may hold the first or the last day.
        if self.parts:
            stats.first_day = date.fromisoformat(min(f["first_day"] for f in self.parts.values()))
            stats.last_day = date.fromisoformat(max(f["last_day"] for f in self.parts.values()))
        stats.run_ids = sorted(set().union(*self.part_runs.values()))
        return stats

    def _columns(self, table: str) -> tuple[Column, ...]:
        return TABLES[table][1]

    def _path(self, fmt: str, table: str, part: str | None, suffix: str) -> Path:
        relative = f"{fmt}/{table}/{part}{suffix}" if part else f"{fmt}/{table}{suffix}"
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _open_part(self, table: str, part: str | None) -> None:
        self._part, self._part_rows = (table, part), 0
        if "parquet" in self.formats:
            schema = pa.schema([pa.field(c.name, c.arrow, nullable=True) for c in self._columns(table)])
            self._parquet = pq.ParquetWriter(self._path("parquet", table, part, ".parquet"), schema, compression="zstd")
        if "csv" in self.formats:
            # mtime=0: the same rows give the same bytes, and so the same checksum.
            raw = gzip.GzipFile(self._path("csv", table, part, ".csv.gz"), "wb", mtime=0)
            handle = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            writer = csv.writer(handle)
            writer.writerow([c.name for c in self._columns(table)])
            self._csv = (handle, writer)

    def _write(self, table: str, rows: list[Row]) -> None:
        columns = self._columns(table)
        self._part_rows += len(rows)
        self.table_rows[table] += len(rows)
        if not rows:
            return
        if self._parquet is not None:
            arrays = [
                pa.array(values, type=c.arrow) for c, values in zip(columns, zip(*rows, strict=True), strict=True)
            ]
            self._parquet.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self._parquet.schema))
        if self._csv is not None:
            self._csv[1].writerows([[_text(v) for v in row] for row in rows])
        if self._sqlite is not None:
            marks = ", ".join("?" * len(columns))
            self._sqlite.executemany(f"INSERT INTO {table} VALUES ({marks})", [tuple(map(_sql, r)) for r in rows])

    def _close_part(self) -> None:
        if self._part is None:
            return
        table, part = self._part
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
            self._add_file(self._path("parquet", table, part, ".parquet"), "parquet", {table: self._part_rows})
        if self._csv is not None:
            self._csv[0].close()
            self._csv = None
            self._add_file(self._path("csv", table, part, ".csv.gz"), "csv", {table: self._part_rows})
        self._part = None

    def _sqlite_open(self) -> None:
        base = self._plan.base
        if base is not None:
            self._sqlite_patch(base)
            return
        self._sqlite = sqlite3.connect(self.root / SQLITE_NAME)
        # A fresh file that is renamed into place only when complete: no journal needed.
        self._sqlite.execute("PRAGMA journal_mode = OFF")
        self._sqlite.execute("PRAGMA synchronous = OFF")
        for table, (_, columns) in TABLES.items():
            body = ", ".join(f'"{c.name}" {c.sql}' for c in columns)
            self._sqlite.execute(f"CREATE TABLE {table} ({body})")

    def _sqlite_patch(self, base: Dump) -> None:
        """Start from a copy of the base's database, without the parts and the tables written again.

        The small whole tables are rewritten every time; of the snapshots, only the parts the plan
        rewrites. A copy, not a link: this file changes."""
        shutil.copyfile(base.folder / SQLITE_NAME, self.root / SQLITE_NAME)
        self._sqlite = sqlite3.connect(self.root / SQLITE_NAME)
        self._sqlite.execute("PRAGMA journal_mode = OFF")
        self._sqlite.execute("PRAGMA synchronous = OFF")
        for part in self._plan.rewrite or []:
            feed, _, month = part.removeprefix("feed=").partition("/")
            start = date.fromisoformat(f"{month}-01")
            self._sqlite.execute(
                "DELETE FROM snapshots WHERE feed = ? AND taken_on >= ? AND taken_on < ?",
                (feed, start.isoformat(), _next_month(start).isoformat()),
            )
        for table in TABLES:
            if table != "snapshots":
                self._sqlite.execute(f"DELETE FROM {table}")

    def _sqlite_close(self) -> None:
        assert self._sqlite is not None
        if self._plan.base is None:
            for statement in SQLITE_INDEXES:
                self._sqlite.execute(statement)
        self._sqlite.commit()
        if self._plan.base is None:
            # A patched copy is not vacuumed: that would rewrite the whole file, what it avoids.
            self._sqlite.execute("VACUUM")
        self._sqlite.close()
        self._sqlite = None
        self._add_file(self.root / SQLITE_NAME, "sqlite", dict(self.table_rows))

    def _abort(self) -> None:
        # On error: release the open files so the temporary folder can be removed.
        if self._parquet is not None:
            self._parquet.close()
        if self._csv is not None:
            self._csv[0].close()
        if self._sqlite is not None:
            self._sqlite.close()
        self._parquet = self._csv = self._sqlite = None

    def _add_file(self, path: Path, fmt: str, rows: dict[str, int]) -> None:
        relative = path.relative_to(self.root).as_posix()
        entry = {"path": relative, "format": fmt, "rows": rows, "bytes": path.stat().st_size, "sha256": sha256(path)}
        self.files.append(entry)
        self.on_file(relative)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _sql(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


# Manifest, publishing and retention


def _manifest(
    writer: _DumpWriter,
    stats: _Stats,
    *,
    generated_at: datetime,
    since: date | None,
    parts: dict[str, str],
    last_edit: int,
    plan: _Plan,
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": generated_at.isoformat().replace("+00:00", "Z"),
        "incremental": since is not None,
        "since": since.isoformat() if since else None,
        "formats": writer.formats,
        "span": {
            "first_day": stats.first_day.isoformat() if stats.first_day else None,
            "last_day": stats.last_day.isoformat() if stats.last_day else None,
        },
        "etl_run_ids": stats.run_ids,
        "licence": LICENCE,
        "tables": {
            table: {
                "description": description,
                "rows": writer.table_rows[table],
                "columns": [
                    {"name": c.name, "type": str(c.arrow), "meaning": c.meaning, "unit": c.unit or None}
                    for c in columns
                ],
            }
            for table, (description, columns) in TABLES.items()
        },
        "files": sorted(writer.files, key=_file_order),
        # For the next incremental dump: the dump these parts were linked from (if any), the newest hand
        # edit when this one was read, and each (feed, month) with its fingerprint and facts.
        "reused_from": plan.base.name if plan.base else None,
        "last_data_edit": last_edit,
        "parts": {
            part: {"fingerprint": parts.get(part), **facts, "run_ids": sorted(writer.part_runs.get(part, ()))}
            for part, facts in sorted(writer.parts.items())
        },
    }


def _file_order(entry: dict[str, Any]) -> tuple[int, str, int]:
    """Snapshot parts first, by part, then the whole tables in TABLES' order, then the SQLite file."""
    fmt, _, rest = entry["path"].partition("/")
    if entry["format"] == "sqlite":
        return (len(TABLES) + 1, "", 0)
    table, _, part = rest.partition("/")
    table = table.removesuffix(SUFFIXES[fmt])
    return (list(TABLES).index(table), part, FORMATS.index(fmt))


def _publish(tmp: Path, out: Path, name: str) -> Path:
    """Rename the finished folder into place, under a free name (two dumps may start in one second)."""
    for attempt in range(100):
        target = out / (name if attempt == 0 else f"{name}-{attempt}")
        if target.exists():
            continue
        try:
            tmp.rename(target)
        except OSError:
            continue  # another dump took the name between our check and the rename
        return target
    raise RuntimeError(f"no free dump name for {name} in {out}")


def _prune(out: Path, *, keep: int) -> list[Path]:
    dumps = dumps_list(out=out)
    old = dumps[: max(len(dumps) - keep, 0)]
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
    return old


def _remove_stale_tmp(out: Path) -> None:
    now = time.time()
    for path in out.glob(".tmp-*"):
        if path.is_dir() and now - path.stat().st_mtime > STALE_TMP_SECONDS:
            shutil.rmtree(path, ignore_errors=True)
