"""The open data dump: a hand-built history, exported and read back with pyarrow, sqlite3 and csv+gzip."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

from analytics import exports
from snapshots.feeds import rank_by
from snapshots.models import EtlRun, Snapshot, SnapshotDay
from snapshots.tests.factories import AnimeFactory, EtlRunFactory, GenreFactory, SnapshotFactory, StudioFactory

pytestmark = pytest.mark.django_db

DAYS = [dt.date(2024, 1, 30), dt.date(2024, 1, 31), dt.date(2024, 2, 1), dt.date(2024, 2, 2)]
SECRET = "a synopsis that must never leave the database"


@pytest.fixture
def history():
    """Two feeds over two months; nulls in the numbers, a title with no genre, a row without a run."""
    action, drama = GenreFactory(mal_id=1, name="Action"), GenreFactory(mal_id=8, name="Drama", kind="theme")
    studio = StudioFactory(mal_id=4, name="Bones")
    titles = [
        AnimeFactory(mal_id=5114, title="FMA: Brotherhood", synopsis=SECRET, image_url="https://cdn/x.jpg"),
        AnimeFactory(mal_id=9253, title="Steins;Gate", title_japanese="シュタインズ・ゲート", episodes=24),
        AnimeFactory(mal_id=1, title="Cowboy Bebop", aired_from=dt.date(1998, 4, 3), airing=True),
    ]
    titles[0].genres.set([action, drama])
    titles[1].genres.set([drama])
    titles[0].studios.set([studio])
    for day in DAYS:
        for feed in ("top", "popular"):
            run = EtlRunFactory(feed=feed, taken_on=day)
            for position, anime in enumerate(titles, start=1):
                SnapshotFactory(
                    anime=anime,
                    feed=feed,
                    taken_on=day,
                    position=position,
                    rank=position + 10,
                    popularity=None if position == 3 else position + 20,
                    score=None if position == 2 else Decimal("9.10") - position,
                    scored_by=1000 * position,
                    run=None if (day, feed, position) == (DAYS[0], "top", 3) else run,
                )
    EtlRunFactory(feed="top", taken_on=DAYS[-1], status=EtlRun.Status.FAILED, finished_at=None)
    return titles


def export(tmp_path: Path, *args: str) -> Path:
    call_command("export", "--out", str(tmp_path), *args)
    return exports.dumps_list(out=tmp_path)[-1]


def db_snapshots(since: dt.date | None = None) -> list[tuple]:
    rows = Snapshot.objects.filter(taken_on__gte=since or dt.date.min)
    fields = ("anime_id", "feed", "taken_on", "position", "rank", "popularity", "score", "scored_by")
    out = []
    for row in rows.values(*fields, "members", "favorites"):
        feed_rank = row[rank_by(row["feed"])]
        out.append((row["anime_id"], row["feed"], row["taken_on"], feed_rank, *list(row.values())[3:]))
    return sorted(out, key=repr)


def db_tables() -> dict[str, list[tuple]]:
    from snapshots.models import Anime

    return {
        "snapshots": db_snapshots(),
        "titles": list(Anime.objects.values_list(*[c.name for c in exports.TABLES["titles"][1]])),
        "title_genres": list(
            Anime.genres.through.objects.values_list("anime_id", "genre_id", "genre__name", "genre__kind")
        ),
        "title_studios": list(Anime.studios.through.objects.values_list("anime_id", "studio_id", "studio__name")),
        "feed_days": list(SnapshotDay.objects.values_list("feed", "taken_on", "rows")),
        "etl_runs": list(EtlRun.objects.values_list(*[c.name for c in exports.TABLES["etl_runs"][1]])),
    }


def parquet_rows(dump: Path, table: str) -> list[tuple]:
    files = sorted((dump / "parquet").glob(f"{table}/**/*.parquet")) or [dump / "parquet" / f"{table}.parquet"]
    return [tuple(row.values()) for f in files for row in pq.read_table(f).to_pylist()]


def as_sqlite(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return float(value) if isinstance(value, Decimal) else value


def as_csv(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def csv_rows(dump: Path, table: str) -> tuple[list[str], list[tuple]]:
    files = sorted((dump / "csv").glob(f"{table}/**/*.csv.gz")) or [dump / "csv" / f"{table}.csv.gz"]
    headers, rows = set(), []
    for f in files:
        with gzip.open(f, "rt", newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            headers.add(tuple(next(reader)))
            rows += [tuple(r) for r in reader]
    assert len(headers) == 1
    return list(headers.pop()), rows


def test_export_reads_back_equal_to_the_database_in_every_format(history, tmp_path):
    dump = export(tmp_path)
    expected = db_tables()
    assert len(expected["snapshots"]) == 24
    con = sqlite3.connect(dump / "animedash.sqlite3")
    for table, rows in expected.items():
        names = [c.name for c in exports.TABLES[table][1]]
        assert sorted(parquet_rows(dump, table), key=repr) == sorted(rows, key=repr), table
        sqlite_rows = con.execute(f"SELECT * FROM {table}").fetchall()
        assert sorted(sqlite_rows, key=repr) == sorted((tuple(map(as_sqlite, r)) for r in rows), key=repr), table
        header, text_rows = csv_rows(dump, table)
        assert header == names
        assert sorted(text_rows) == sorted(tuple(map(as_csv, r)) for r in rows), table


def test_export_writes_typed_parquet_one_file_per_feed_and_month(history, tmp_path):
    dump = export(tmp_path, "--format", "parquet")
    parts = sorted(p.relative_to(dump / "parquet/snapshots").as_posix() for p in dump.glob("parquet/snapshots/**/*"))
    files = [p for p in parts if p.endswith(".parquet")]
    assert files == [
        "feed=popular/2024-01.parquet",
        "feed=popular/2024-02.parquet",
        "feed=top/2024-01.parquet",
        "feed=top/2024-02.parquet",
    ]
    schema = pq.read_schema(dump / "parquet/snapshots/feed=top/2024-01.parquet")
    types = {f.name: str(f.type) for f in schema}
    assert types["taken_on"] == "date32[day]"
    assert types["score"] == "decimal128(4, 2)"
    assert types["mal_id"] == "int32"
    assert str(pq.read_schema(dump / "parquet/etl_runs.parquet").field("id").type) == "int64"
    assert not (dump / "csv").exists()
    assert not (dump / "animedash.sqlite3").exists()


def test_export_sqlite_has_the_indexes_datasette_needs(history, tmp_path):
    dump = export(tmp_path, "--format", "sqlite")
    con = sqlite3.connect(dump / "animedash.sqlite3")
    indexes = {row[0]: row[1] for row in con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")}
    assert "(feed, taken_on)" in indexes["snapshots_feed_day"]
    assert "(mal_id)" in indexes["snapshots_mal_id"]


def test_manifest_checksums_and_counts_match_the_files(history, tmp_path):
    dump = export(tmp_path)
    manifest = json.loads((dump / "manifest.json").read_text())
    listed = {f["path"] for f in manifest["files"]}
    on_disk = {p.relative_to(dump).as_posix() for p in dump.rglob("*") if p.is_file()}
    assert on_disk == listed | {"manifest.json"}
    for entry in manifest["files"]:
        path = dump / entry["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        assert path.stat().st_size == entry["bytes"]
        if entry["format"] == "parquet":
            assert list(entry["rows"].values()) == [pq.read_metadata(path).num_rows]
        elif entry["format"] == "csv":
            with gzip.open(path, "rt") as handle:
                assert list(entry["rows"].values()) == [sum(1 for _ in csv.reader(handle)) - 1]
        else:
            con = sqlite3.connect(path)
            for table, count in entry["rows"].items():
                assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == count
    assert manifest["schema_version"] == exports.SCHEMA_VERSION
    assert manifest["incremental"] is False
    assert manifest["span"] == {"first_day": "2024-01-30", "last_day": "2024-02-02"}
    snapshot_runs = Snapshot.objects.exclude(run=None).values_list("run_id", flat=True).distinct()
    assert manifest["etl_run_ids"] == sorted(set(snapshot_runs))
    assert manifest["tables"]["snapshots"]["rows"] == 24
    assert "no synopses" in manifest["licence"]
    assert "Jikan" in manifest["licence"]
    for table in manifest["tables"].values():
        assert all(c["meaning"] for c in table["columns"])


def test_export_has_no_synopsis_or_image_anywhere(history, tmp_path):
    dump = export(tmp_path)
    columns = [
        c["name"] for t in json.loads((dump / "manifest.json").read_text())["tables"].values() for c in t["columns"]
    ]
    con = sqlite3.connect(dump / "animedash.sqlite3")
    for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
        columns += [row[1] for row in con.execute(f"PRAGMA table_info({table})")]
    for path in dump.glob("parquet/**/*.parquet"):
        columns += pq.read_schema(path).names
    for path in dump.glob("csv/**/*.csv.gz"):
        with gzip.open(path, "rt") as handle:
            columns += next(csv.reader(handle))
            assert SECRET not in handle.read()
    assert not [c for c in columns if "synopsis" in c or "image" in c]
    assert SECRET.encode() not in (dump / "animedash.sqlite3").read_bytes()


def test_an_interrupted_export_leaves_nothing_visible(history, tmp_path, monkeypatch):
    calls = []
    real_write = exports._DumpWriter._write

    def failing_write(self, table, rows):
        calls.append(table)
        if len(calls) == 3:
            raise OSError("disk full")
        real_write(self, table, rows)

    monkeypatch.setattr(exports._DumpWriter, "_write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        call_command("export", "--out", str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_export_since_writes_exactly_the_days_from_that_date(history, tmp_path):
    dump = export(tmp_path, "--since", "2024-02-01")
    manifest = json.loads((dump / "manifest.json").read_text())
    assert manifest["incremental"] is True
    assert manifest["since"] == "2024-02-01"
    assert manifest["span"] == {"first_day": "2024-02-01", "last_day": "2024-02-02"}
    since = dt.date(2024, 2, 1)
    assert sorted(parquet_rows(dump, "snapshots"), key=repr) == db_snapshots(since)
    assert {row[1] for row in parquet_rows(dump, "feed_days")} == {dt.date(2024, 2, 1), dt.date(2024, 2, 2)}
    assert not list(dump.glob("parquet/snapshots/*/2024-01.parquet"))


def test_export_keeps_only_the_newest_dumps(history, tmp_path):
    written = [exports.exports_write(out=tmp_path, formats=["csv"], keep=2).path for _ in range(3)]
    assert exports.dumps_list(out=tmp_path) == written[1:]
    assert not written[0].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written[1:])


def test_export_of_an_empty_database_writes_empty_tables(tmp_path):
    dump = export(tmp_path)
    manifest = json.loads((dump / "manifest.json").read_text())
    assert manifest["span"] == {"first_day": None, "last_day": None}
    assert parquet_rows(dump, "titles") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "parquet,xml"], "expected some of parquet,sqlite,csv"),
        (["--format", ","], "expected some of"),
        (["--since", "2024-13-01"], "expected a date as YYYY-MM-DD"),
        (["--keep", "0"], "expected a positive whole number"),
    ],
)
def test_export_rejects_bad_arguments_clearly(tmp_path, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("export", "--out", str(tmp_path), *args)
    assert list(tmp_path.iterdir()) == []


def test_exports_write_task_runs_the_service(history, tmp_path, settings):
    from analytics.tasks import exports_write

    settings.EXPORT_DIR = tmp_path
    path = Path(exports_write.apply().get())
    assert path.parent == tmp_path
    assert (path / "manifest.json").exists()


def test_migration_schedules_the_nightly_dump():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.select_related("crontab").get(name="write the open data dump")
    assert task.task == "analytics.tasks.exports_write"
    assert task.enabled
    assert (task.crontab.hour, task.crontab.minute, str(task.crontab.timezone)) == ("4", "0", "UTC")


# Incremental dumps: the unchanged (feed, month) files are linked from the previous dump


def assert_reads_back_as_the_database(dump: Path) -> None:
    """Every format reads back equal to the database, and the manifest tells the truth about every file."""
    expected = db_tables()
    con = sqlite3.connect(dump / "animedash.sqlite3")
    for table, rows in expected.items():
        assert sorted(parquet_rows(dump, table), key=repr) == sorted(rows, key=repr), table
        sqlite_rows = con.execute(f"SELECT * FROM {table}").fetchall()
        assert sorted(sqlite_rows, key=repr) == sorted((tuple(map(as_sqlite, r)) for r in rows), key=repr), table
        assert sorted(csv_rows(dump, table)[1]) == sorted(tuple(map(as_csv, r)) for r in rows), table
    manifest = json.loads((dump / "manifest.json").read_text())
    on_disk = {p.relative_to(dump).as_posix() for p in dump.rglob("*") if p.is_file()}
    assert on_disk == {f["path"] for f in manifest["files"]} | {"manifest.json"}
    for entry in manifest["files"]:
        content = (dump / entry["path"]).read_bytes()
        assert (hashlib.sha256(content).hexdigest(), len(content)) == (entry["sha256"], entry["bytes"]), entry["path"]
        if entry["format"] == "parquet":
            assert list(entry["rows"].values()) == [pq.read_metadata(dump / entry["path"]).num_rows]
    for table, facts in manifest["tables"].items():
        assert facts["rows"] == len(expected[table]), table
    assert sum(p["rows"] for p in manifest["parts"].values()) == len(expected["snapshots"])
    snapshot_runs = Snapshot.objects.exclude(run=None).values_list("run_id", flat=True).distinct()
    assert manifest["etl_run_ids"] == sorted(set(snapshot_runs))
    days = Snapshot.objects.values_list("taken_on", flat=True)
    assert manifest["span"] == {"first_day": str(min(days)), "last_day": str(max(days))}


def inodes(dump: Path) -> dict[str, int]:
    """The inode of each (feed, month) Parquet and CSV file, by its path in the dump."""
    files = [*dump.glob("parquet/snapshots/*/*"), *dump.glob("csv/snapshots/*/*")]
    return {p.relative_to(dump).as_posix(): p.stat().st_ino for p in files}


def linked(first: Path, second: Path) -> set[str]:
    """The (feed, month) parts whose Parquet and CSV files the second dump shares with the first."""
    before, after = inodes(first), inodes(second)
    shared = {path for path, inode in after.items() if before.get(path) == inode}
    parts = {path.split("/", 2)[2].rsplit(".", 2)[0].removesuffix(".csv") for path in shared}
    # A part is linked in both formats or in neither.
    assert {path for path in after if path.split("/", 2)[2].split(".")[0] in parts} == shared
    return parts


def add_day(history, day: dt.date) -> None:
    for feed in ("top", "popular"):
        run = EtlRunFactory(feed=feed, taken_on=day)
        for position, anime in enumerate(history, start=1):
            SnapshotFactory(anime=anime, feed=feed, taken_on=day, position=position, members=7 * position, run=run)
        SnapshotDay.objects.filter(feed=feed, taken_on=day).update(run=run)


def test_an_incremental_dump_links_the_unchanged_months_and_writes_the_new_day(history, tmp_path):
    first = export(tmp_path, "--incremental")  # no dump before it: written whole
    assert json.loads((first / "manifest.json").read_text())["reused_from"] is None
    add_day(history, dt.date(2024, 2, 3))
    out = io.StringIO()
    call_command("export", "--out", str(tmp_path), "--incremental", stdout=out)
    second = exports.dumps_list(out=tmp_path)[-1]
    assert linked(first, second) == {"feed=popular/2024-01", "feed=top/2024-01"}
    assert "2 months linked, 2 written" in out.getvalue()
    manifest = json.loads((second / "manifest.json").read_text())
    assert manifest["reused_from"] == first.name
    assert manifest["parts"]["feed=top/2024-02"]["last_day"] == "2024-02-03"
    assert manifest["tables"]["snapshots"]["rows"] == 30
    assert_reads_back_as_the_database(second)
    # The first dump is untouched by the second.
    assert json.loads((first / "manifest.json").read_text())["tables"]["snapshots"]["rows"] == 24


def test_a_rerun_of_a_past_day_rewrites_its_month_only(history, tmp_path):
    first = export(tmp_path, "--incremental")
    # Jan 31 of `top` again: a new run replaces the day's rows, as the ETL does.
    day = dt.date(2024, 1, 31)
    run = EtlRunFactory(feed="top", taken_on=day)
    Snapshot.objects.filter(feed="top", taken_on=day).update(members=123456, run=run)
    SnapshotDay.objects.update_or_create(feed="top", taken_on=day, defaults={"run": run})  # loaded_at moves
    second = export(tmp_path, "--incremental")
    assert linked(first, second) == {"feed=popular/2024-01", "feed=popular/2024-02", "feed=top/2024-02"}
    assert_reads_back_as_the_database(second)


def test_a_day_gone_from_the_database_rewrites_its_month(history, tmp_path):
    first = export(tmp_path, "--incremental")
    Snapshot.objects.filter(feed="popular", taken_on=DAYS[-1]).delete()
    SnapshotDay.objects.filter(feed="popular", taken_on=DAYS[-1]).delete()
    second = export(tmp_path, "--incremental")
    assert linked(first, second) == {"feed=popular/2024-01", "feed=top/2024-01", "feed=top/2024-02"}
    assert_reads_back_as_the_database(second)


def test_a_hand_edit_after_the_last_dump_makes_the_next_one_whole(history, tmp_path):
    from snapshots.services import data_edit_create

    first = export(tmp_path, "--incremental")
    # An admin edit leaves SnapshotDay as it was: only the DataEdit row tells.
    Snapshot.objects.filter(feed="top", taken_on=DAYS[0]).update(favorites=999)
    data_edit_create(what="changed snapshot 1")
    second = export(tmp_path, "--incremental")
    assert linked(first, second) == set()
    assert json.loads((second / "manifest.json").read_text())["reused_from"] is None
    assert_reads_back_as_the_database(second)


def test_an_incremental_dump_copies_when_files_cannot_be_linked(history, tmp_path, monkeypatch):
    first = export(tmp_path, "--incremental")

    def no_links(source, target):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(exports.os, "link", no_links)
    second = export(tmp_path, "--incremental")
    assert linked(first, second) == set()
    assert json.loads((second / "manifest.json").read_text())["reused_from"] == first.name
    assert_reads_back_as_the_database(second)


def test_an_incremental_dump_after_a_full_one_of_other_formats_is_written_whole(history, tmp_path):
    first = export(tmp_path, "--format", "parquet")
    second = export(tmp_path, "--incremental")
    assert linked(first, second) == set()
    assert_reads_back_as_the_database(second)


def test_the_nightly_task_links_what_the_previous_night_wrote(history, tmp_path, settings):
    from analytics.tasks import exports_write

    settings.EXPORT_DIR = tmp_path
    first = Path(exports_write.apply().get())
    add_day(history, dt.date(2024, 2, 3))
    second = Path(exports_write.apply().get())
    assert linked(first, second) == {"feed=popular/2024-01", "feed=top/2024-01"}
    assert_reads_back_as_the_database(second)
