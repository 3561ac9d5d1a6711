"""`manage.py bench_export`: the open data dump over N rows of synthetic history, and proof it holds them all.

The parent creates a throw-away database (devtools.benchdb); a child fills it (devtools.history), then one
fresh child per format writes a dump with `analytics.exports.exports_write`, so each peak RSS is that
export's own. A last child checks every dump against the database: the manifest's sizes and sha256, the
snapshot rows of every Parquet file read back with pyarrow and of the SQLite file, by count and checksum.
A dump that is empty or differs from the database fails the benchmark.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from analytics import exports
from devtools import history
from devtools.benchdb import bench_database, child_env, peak_rss_mb, run_child
from devtools.management.commands.bench_etl import parse_rows
from snapshots.feeds import rank_by
from snapshots.models import Snapshot

DEFAULT_ROWS = "30M"
MIN_ROWS = 500
DEFAULT_FORMATS = "parquet,sqlite"
RSS_TARGET_MB = 300.0
# The snapshot columns the checksum covers; `score` in cents.
SUMMED = ("position", "rank", "popularity", "score", "scored_by", "members", "favorites")
# Per (feed, day): (count, sum, sum of mal_id x value) of each summed column, and the rows.
Sums = dict[tuple[str, str], tuple[int, ...]]


class Command(BaseCommand):
    help = (
        "Benchmark the open data dump in a throw-away database filled with N synthetic snapshot rows: per "
        "format rows/s, peak RSS and file sizes, each export in a fresh process; then read every dump back "
        "(Parquet with pyarrow, SQLite) and check it against the database."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--rows", default=DEFAULT_ROWS, help=f"Snapshot rows, k/M suffixes allowed (default {DEFAULT_ROWS})."
        )
        parser.add_argument(
            "--format",
            default=DEFAULT_FORMATS,
            help=f"Comma-separated formats among {', '.join(exports.FORMATS)} (default {DEFAULT_FORMATS}).",
        )
        parser.add_argument("--child", choices=["fill", "export", "verify"], help=argparse.SUPPRESS)
        parser.add_argument("--child-rows", type=int, default=0, help=argparse.SUPPRESS)
        parser.add_argument("--out", help=argparse.SUPPRESS)

    def handle(self, *args: Any, rows: str, format: str, child: str | None, **options: Any) -> None:
        formats = [f.strip() for f in format.split(",") if f.strip()]
        if not formats or set(formats) - set(exports.FORMATS):
            raise CommandError(f"--format: choose among {', '.join(exports.FORMATS)}, not {format!r}")
        if child:
            self.stdout.write(json.dumps(_child(child, options["child_rows"], formats, Path(options["out"] or "."))))
            return
        count = parse_rows(rows, "--rows", minimum=MIN_ROWS)
        with bench_database("bench_export") as url, tempfile.TemporaryDirectory(prefix="bench-export-") as folder:
            env = child_env(url)
            self.stdout.write(f"{count:,} rows: filling a throw-away database (COPY, then VACUUM ANALYZE)")
            filled = _run_child(["fill", "--child-rows", str(count)], env)
            self.stdout.write(
                f"filled {filled['rows']:,} snapshot rows in {filled['fill_seconds']:.0f} s, VACUUM ANALYZE "
                f"{filled['analyze_seconds']:.0f} s"
            )
            written = {}
            for fmt in formats:
                self.stdout.write(f"exporting {fmt} ...")
                written[fmt] = _run_child(["export", "--format", fmt, "--out", f"{folder}/{fmt}"], env)
            started = time.perf_counter()
            checked = _run_child(["verify", "--format", ",".join(formats), "--out", folder], env)
            checked["seconds"] = time.perf_counter() - started
        self._report(written, checked)

    def _report(self, written: dict[str, dict[str, Any]], checked: dict[str, Any]) -> None:
        self.stdout.write(
            f"\n{'format':<10}{'snapshot rows':>15}{'all rows':>12}{'seconds':>9}{'rows/s':>10}{'peak RSS MB':>13}"
            f"{'files':>7}{'MB':>10}"
        )
        missed = 0
        for fmt, row in written.items():
            missed += row["peak_rss_mb"] >= RSS_TARGET_MB
            self.stdout.write(
                f"{fmt:<10}{row['snapshot_rows']:>15,}{row['rows']:>12,}{row['seconds']:>9.1f}"
                f"{row['snapshot_rows'] / row['seconds']:>10,.0f}{row['peak_rss_mb']:>13.1f}{row['files']:>7}"
                f"{row['bytes'] / 1e6:>10.1f}"
            )
        self.stdout.write(
            f"rows/s: snapshot rows a second, the whole dump's time (every table, manifest and checksums); "
            f"MB: every file of the dump, snapshots {_sizes(written)}"
        )
        self.stdout.write(
            f"verified against the database's {checked['rows']:,} snapshot rows and their checksums "
            f"({checked['days']:,} feed-days), in {checked['seconds']:.0f} s:"
        )
        for fmt, line in checked["formats"].items():
            self.stdout.write(f"  {fmt}: {line}")
        rss = ", ".join(f"{fmt} {row['peak_rss_mb']:.0f} MB" for fmt, row in written.items())
        verdict = "PASS" if not missed else "MISS"
        self.stdout.write(f"{verdict}  peak RSS {rss} (target under {RSS_TARGET_MB:.0f} MB)")


def _sizes(written: dict[str, dict[str, Any]]) -> str:
    return ", ".join(f"{fmt} {row['snapshot_bytes'] / 1e6:.1f} MB" for fmt, row in written.items())


def _run_child(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(run_child(["bench_export", "--child", *args], env).strip().splitlines()[-1])
    return result


def _child(kind: str, rows: int, formats: Sequence[str], out: Path) -> dict[str, Any]:
    if kind == "fill":
        return _fill(rows)
    if kind == "export":
        return _export(out, formats)
    return verify(out, formats)


def _fill(rows: int) -> dict[str, Any]:
    started = time.perf_counter()
    history.fill(rows)
    filled = time.perf_counter()
    history.analyze()
    return {
        "rows": Snapshot.objects.count(),
        "fill_seconds": filled - started,
        "analyze_seconds": time.perf_counter() - filled,
    }


def _export(out: Path, formats: Sequence[str]) -> dict[str, Any]:
    started = time.perf_counter()
    result = exports.exports_write(out=out, formats=formats, keep=1)
    seconds = time.perf_counter() - started
    rss = peak_rss_mb()
    if not result.rows["snapshots"]:
        raise CommandError(f"the {', '.join(formats)} dump holds no snapshot rows: there is nothing real to time")
    manifest = json.loads((result.path / "manifest.json").read_text())
    snapshot_files = [f for f in manifest["files"] if "snapshots" in f["rows"]]
    return {
        "snapshot_rows": result.rows["snapshots"],
        "rows": sum(result.rows.values()),
        "seconds": seconds,
        "peak_rss_mb": rss,
        "files": result.files,
        "bytes": result.bytes,
        # The SQLite file holds every table: all of it counts as the snapshots' size.
        "snapshot_bytes": sum(f["bytes"] for f in snapshot_files),
    }


# Verification ------------------------------------------------------------------------------------------------


def verify(root: Path, formats: Sequence[str]) -> dict[str, Any]:
    """Check the one dump under `root/<format>` of each format against the database; raise CommandError if any differs.

    The checksum, per feed and day: the rows, and for each numeric column the count of values, their sum and
    the sum of mal_id x value. Sums catch a lost, doubled or changed row or value; the products catch values
    moved from one title to another, which plain sums would not. Both sides are one pass: a GROUP BY on the
    database, vectorised sums over each Parquet file's columns (pyarrow.compute), a GROUP BY on SQLite.
    """
    expected = database_sums()
    total = sum(value[0] for value in expected.values())
    if not total:
        raise CommandError("the database has no snapshot rows: a dump of nothing proves nothing")
    lines = {}
    for fmt in formats:
        dumps = exports.dumps_list(out=root / fmt)
        if len(dumps) != 1:
            raise CommandError(f"{root / fmt} holds {len(dumps)} dumps, not 1")
        lines[fmt] = _verify_dump(dumps[0], fmt, expected, total)
    return {"rows": total, "days": len(expected), "formats": lines}


def _verify_dump(dump: Path, fmt: str, expected: Sums, total: int) -> str:
    manifest = json.loads((dump / "manifest.json").read_text())
    problems = _manifest_problems(dump, manifest)
    if manifest["tables"]["snapshots"]["rows"] != total:
        problems.append(f"the manifest counts {manifest['tables']['snapshots']['rows']:,} snapshot rows, not {total:,}")
    files = [f for f in manifest["files"] if f["format"] == fmt and "snapshots" in f["rows"]]
    if fmt == "parquet":
        got = parquet_sums(dump / f["path"] for f in files)
    elif fmt == "sqlite":
        got = sqlite_sums(dump / exports.SQLITE_NAME)
    else:
        rows = sum(_csv_rows(dump / f["path"]) for f in files)
        got = {} if rows == total else {("all", "days"): (rows,)}
        expected = {}
        if rows != total:
            problems.append(f"the CSV files hold {rows:,} snapshot rows, not {total:,}")
    problems += _sums_problems(got, expected)
    if problems:
        raise CommandError(f"the {fmt} dump {dump.name} differs from the database: {'; '.join(problems[:5])}")
    read = {
        "parquet": "rows read back with pyarrow, checksums equal",
        "sqlite": "rows queried in SQLite, checksums equal",
        "csv": "data lines in the gzipped CSV (counted only)",
    }[fmt]
    return (
        f"{total:,} {read}, {len(files)} snapshot file(s); size and sha256 of all {len(manifest['files'])} "
        "file(s) match the manifest"
    )


def _manifest_problems(dump: Path, manifest: dict[str, Any]) -> list[str]:
    problems = []
    if not manifest["files"]:
        problems.append("the manifest lists no file")
    for entry in manifest["files"]:
        path = dump / entry["path"]
        if not path.is_file():
            problems.append(f"{entry['path']} is missing")
        elif path.stat().st_size != entry["bytes"] or exports.sha256(path) != entry["sha256"]:
            problems.append(f"{entry['path']} does not match its size and sha256 in the manifest")
    return problems


def _sums_problems(got: Sums, expected: Sums) -> list[str]:
    problems = [f"{feed} {day}: no rows in the dump" for feed, day in sorted(expected.keys() - got.keys())]
    problems += [f"{feed} {day}: not in the database" for feed, day in sorted(got.keys() - expected.keys())]
    for key in sorted(expected.keys() & got.keys()):
        if got[key] != expected[key]:
            names = ["rows"] + [
                f"{c} {part}" for c in (*SUMMED, "feed_rank") for part in ("count", "sum", "mal_id sum")
            ]
            wrong = [name for name, a, b in zip(names, got[key], expected[key], strict=True) if a != b]
            problems.append(f"{key[0]} {key[1]}: the checksum differs ({', '.join(wrong[:4])})")
    return problems


def _sums_sql(table: str, mal_id: str, score: str) -> str:
    parts = ["count(*)"]
    for column in SUMMED:
        value = score if column == "score" else column
        parts += [f"count({value})", f"sum({value})", f"sum(CAST({mal_id} AS BIGINT) * {value})"]
    return f"SELECT feed, taken_on, {', '.join(parts)} FROM {table} GROUP BY feed, taken_on"


def _with_feed_rank(feed: str, values: Sequence[Any]) -> tuple[int, ...]:
    """The row's sums, None as 0, then those of the column the feed's rank comes from (the dump's feed_rank)."""
    numbers = tuple(int(v or 0) for v in values)
    at = 1 + 3 * SUMMED.index(rank_by(feed))
    return numbers + numbers[at : at + 3]


def database_sums() -> Sums:
    table = connection.ops.quote_name(Snapshot._meta.db_table)
    score = "CAST(ROUND(score * 100) AS BIGINT)"
    with connection.cursor() as cursor:
        cursor.execute(_sums_sql(table, "anime_id", score))
        return {(feed, str(day)): _with_feed_rank(feed, values) for feed, day, *values in cursor.fetchall()}


def sqlite_sums(path: Path) -> Sums:
    # SQLite keeps the score as NUMERIC (REAL once it has decimals): rounded to cents as the database does.
    database = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = database.execute(_sums_sql("snapshots", "mal_id", "CAST(ROUND(score * 100) AS INTEGER)")).fetchall()
        feed_ranks = database.execute(
            "SELECT feed, taken_on, count(feed_rank), sum(feed_rank), sum(mal_id * feed_rank) FROM snapshots "
            "GROUP BY feed, taken_on"
        ).fetchall()
    finally:
        database.close()
    ranks = {(feed, day): tuple(int(v or 0) for v in values) for feed, day, *values in feed_ranks}
    return {(feed, day): (*_with_feed_rank(feed, values)[:-3], *ranks[feed, day]) for feed, day, *values in rows}


def parquet_sums(paths: Iterable[Path]) -> Sums:
    """The checksum of the snapshot rows in `paths`, read back with pyarrow one file (a feed's month) at a time."""
    sums: Sums = {}
    for path in paths:
        table = pq.read_table(path)
        mal_id = table["mal_id"].cast(pa.int64())
        columns = {"mal_id": mal_id, "feed": table["feed"], "taken_on": table["taken_on"]}
        aggregates: list[tuple[str, str]] = [("mal_id", "count")]
        for column in (*SUMMED, "feed_rank"):
            if column == "score":
                cents = pc.round(pc.multiply(table["score"].cast(pa.float64()), 100))
                values = cents.cast(pa.int64())
            else:
                values = table[column].cast(pa.int64())
            columns[column], columns[f"{column}_x"] = values, pc.multiply(mal_id, values)
            aggregates += [(column, "count"), (column, "sum"), (f"{column}_x", "sum")]
        grouped = pa.table(columns).group_by(["feed", "taken_on"]).aggregate(aggregates)
        names = [f"{column}_{how}" for column, how in aggregates]
        for row in grouped.to_pylist():
            key = (row["feed"], str(row["taken_on"]))
            if key in sums:
                raise CommandError(f"{key[0]} {key[1]} is in more than one Parquet file")
            sums[key] = tuple(int(row[name] or 0) for name in names)
    return sums


def _csv_rows(path: Path) -> int:
    """Data lines of a gzipped CSV file (its header aside): the snapshot rows hold no line break."""
    with gzip.open(path, "rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")) - 1
