"""The published open data dumps, as the data page, the downloads and the exports API read them.

A dump is a folder under settings.EXPORT_DIR named after its start time, holding the files its
`manifest.json` lists (`analytics/exports.py` writes them). Only what a readable manifest lists belongs
to a dump: temporary folders, stray files and dumps whose manifest cannot be read are never shown or
served. This module imports no pyarrow, so the web processes stay light.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
# A dump folder's name: its UTC start time, with a suffix when two start within the same second.
DUMP_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{6}Z)(?:-(\d+))?$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# By the end of the name: the media types the downloads are sent with.
CONTENT_TYPES = {
    ".parquet": "application/vnd.apache.parquet",
    ".csv.gz": "application/gzip",
    ".sqlite3": "application/vnd.sqlite3",
    ".json": "application/json",
}


@dataclass(frozen=True)
class DumpFile:
    path: str  # relative to the dump's folder, with forward slashes
    format: str
    bytes: int
    sha256: str
    rows: dict[str, int]

    @property
    def content_type(self) -> str:
        return next((t for end, t in CONTENT_TYPES.items() if self.path.endswith(end)), "application/octet-stream")


@dataclass(frozen=True)
class Dump:
    name: str
    folder: Path
    manifest: dict[str, Any]
    files: tuple[DumpFile, ...]  # as the manifest lists them, then the manifest itself

    @property
    def generated_at(self) -> datetime:
        return datetime.fromisoformat(self.manifest["generated_at"])

    @property
    def table_rows(self) -> dict[str, int]:
        return {table: facts["rows"] for table, facts in self.manifest["tables"].items()}

    @property
    def data_files(self) -> tuple[DumpFile, ...]:
        return self.files[:-1]

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def file(self, path: str) -> DumpFile | None:
        """The file the manifest lists under exactly `path` (or the manifest itself), else None."""
        return next((f for f in self.files if f.path == path), None)


def dumps_list(*, out: Path) -> list[Path]:
    """The complete dumps' folders under `out`, oldest first (whatever their manifests say)."""
    if not out.is_dir():
        return []
    found = [(m, p) for p in out.iterdir() if p.is_dir() and (m := DUMP_NAME.match(p.name))]
    found.sort(key=lambda mp: (mp[0].group(1), int(mp[0].group(2) or 0)))
    return [p for _, p in found]


def dumps_published(*, out: Path) -> list[Dump]:
    """The dumps under `out` whose manifest reads, newest first."""
    dumps = (dump_read(folder) for folder in reversed(dumps_list(out=out)))
    return [dump for dump in dumps if dump is not None]


def dump_get(*, out: Path, name: str) -> Dump | None:
    """The dump called `name` under `out`, or None when there is none (or its manifest does not read)."""
    if not DUMP_NAME.match(name):
        return None
    return dump_read(out / name)


def dump_read(folder: Path) -> Dump | None:
    """The dump in `folder`, or None when its manifest is missing or unreadable (logged, never raised)."""
    path = folder / MANIFEST
    try:
        stat = path.stat()
        return _dump_read(str(folder), stat.st_mtime_ns, stat.st_size)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("skipping the dump %s: its manifest does not read (%s)", folder.name, exc)
        return None


# A dump never changes once published: its manifest is parsed once per (mtime, size), not per request.
@functools.lru_cache(maxsize=32)
def _dump_read(folder: str, mtime_ns: int, size: int) -> Dump:
    raw = (Path(folder) / MANIFEST).read_bytes()
    manifest = json.loads(raw)
    files = tuple(_file(entry) for entry in manifest["files"])
    if len({f.path for f in files}) != len(files) or not isinstance(manifest["tables"], dict):
        raise ValueError("the manifest lists a file twice or has no tables")
    datetime.fromisoformat(manifest["generated_at"])
    itself = DumpFile(MANIFEST, "manifest", len(raw), hashlib.sha256(raw).hexdigest(), {})
    return Dump(Path(folder).name, Path(folder), manifest, (*files, itself))


def _file(entry: dict[str, Any]) -> DumpFile:
    path, size, digest, rows = entry["path"], entry["bytes"], entry["sha256"], entry["rows"]
    # Paths are the writer's own, but a manifest is only a file: nothing it lists may leave the dump.
    if not isinstance(path, str) or path.startswith("/") or ".." in path.split("/") or path == MANIFEST:
        raise ValueError(f"bad file path {path!r}")
    if not isinstance(size, int) or size < 0 or not isinstance(digest, str) or not SHA256.match(digest):
        raise ValueError(f"bad size or checksum for {path}")
    if not isinstance(rows, dict) or not all(isinstance(n, int) for n in rows.values()):
        raise ValueError(f"bad row counts for {path}")
    return DumpFile(path, str(entry["format"]), size, digest, rows)
