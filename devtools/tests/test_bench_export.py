"""`manage.py bench_export`: its report at a tiny size, and a dump that differs from the database fails it."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

from analytics import exports
from devtools.history import fill
from devtools.management.commands.bench_export import verify
from snapshots.models import Snapshot


# transaction=True: the bench creates and drops a database of its own beside the test database.
@pytest.mark.django_db(transaction=True)
def test_bench_export_reports_each_format_and_verifies_the_dumps():
    out = StringIO()
    call_command("bench_export", "--rows", "2000", "--format", "parquet,sqlite,csv", stdout=out)
    lines = out.getvalue().splitlines()
    # A command, not a timed test: check the report's shape, never its timings.
    header = lines.index(next(line for line in lines if line.startswith("format ")))
    assert [line.split()[0] for line in lines[header + 1 : header + 4]] == ["parquet", "sqlite", "csv"]
    text = out.getvalue()
    assert "rows read back with pyarrow, checksums equal" in text
    assert "rows queried in SQLite, checksums equal" in text
    assert "match the manifest" in text
    assert "(target under 300 MB)" in lines[-1]
    assert not Snapshot.objects.exists(), "the benchmark writes to its own database only"


@pytest.mark.parametrize(("option", "value", "error"), [("--format", "xml", "--format"), ("--rows", "10", "--rows")])
def test_bench_export_rejects_bad_options(option, value, error):
    with pytest.raises(CommandError, match=error):
        call_command("bench_export", option, value)


@pytest.fixture
def dumps(db, tmp_path: Path) -> Path:
    fill(2000)
    for fmt in ("parquet", "sqlite"):
        exports.exports_write(out=tmp_path / fmt, formats=[fmt])
    return tmp_path


def _dump(root: Path, fmt: str) -> Path:
    return exports.dumps_list(out=root / fmt)[0]


def _manifest_rewrite(dump: Path, path: Path) -> None:
    """Record a changed file's new size and sha256 in the manifest, so that only the checksum can tell."""
    manifest = json.loads((dump / "manifest.json").read_text())
    for entry in manifest["files"]:
        if dump / entry["path"] == path:
            entry["bytes"], entry["sha256"] = path.stat().st_size, exports.sha256(path)
    (dump / "manifest.json").write_text(json.dumps(manifest))


def test_bench_export_verifies_a_dump_that_holds_the_database(dumps):
    checked = verify(dumps, ["parquet", "sqlite"])
    assert checked["rows"] == Snapshot.objects.count()
    assert set(checked["formats"]) == {"parquet", "sqlite"}


def test_bench_export_fails_when_a_parquet_value_moved_to_another_title(dumps):
    dump = _dump(dumps, "parquet")
    path = next((dump / "parquet" / "snapshots").glob("feed=top/*.parquet"))
    table = pq.read_table(path)
    # Two titles' members swapped on one day: every plain sum stays the same.
    members = table["members"].to_pylist()
    members[0], members[1] = members[1], members[0]
    table = table.set_column(table.schema.get_field_index("members"), "members", pa.array(members, pa.int32()))
    pq.write_table(table, path, compression="zstd")
    _manifest_rewrite(dump, path)
    with pytest.raises(CommandError, match=r"parquet dump .* top \S+: the checksum differs \(members mal_id sum\)"):
        verify(dumps, ["parquet"])


def test_bench_export_fails_when_the_parquet_files_miss_a_row(dumps):
    dump = _dump(dumps, "parquet")
    path = next((dump / "parquet" / "snapshots").glob("feed=popular/*.parquet"))
    table = pq.read_table(path)
    pq.write_table(table.filter(pc.not_equal(table["position"], 1)), path)
    _manifest_rewrite(dump, path)
    with pytest.raises(CommandError, match="the checksum differs \\(rows, "):
        verify(dumps, ["parquet"])


def test_bench_export_fails_when_a_file_differs_from_its_manifest(dumps):
    dump = _dump(dumps, "sqlite")
    with (dump / exports.SQLITE_NAME).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(CommandError, match=r"animedash\.sqlite3 does not match its size and sha256 in the manifest"):
        verify(dumps, ["sqlite"])


def test_bench_export_fails_when_the_database_has_rows_the_dump_lacks(dumps):
    Snapshot.objects.filter(pk=Snapshot.objects.order_by("pk").values("pk")[:1]).delete()
    with pytest.raises(CommandError, match="the manifest counts"):
        verify(dumps, ["sqlite"])


@pytest.mark.django_db
def test_bench_export_refuses_to_verify_a_dump_of_nothing(tmp_path):
    exports.exports_write(out=tmp_path / "parquet", formats=["parquet"])
    with pytest.raises(CommandError, match="no snapshot rows"):
        verify(tmp_path, ["parquet"])
