"""`manage.py export`: write the open data dump (Parquet, SQLite, gzipped CSV and a manifest)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from analytics.exports import FORMATS, exports_write
from snapshots.management.commands.etl import day_argument


def formats_argument(value: str) -> list[str]:
    chosen = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [part for part in chosen if part not in FORMATS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"expected some of {','.join(FORMATS)}, got {value!r}")
    return chosen


def positive_argument(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}")
    return int(value)


class Command(BaseCommand):
    help = "Write the whole ranking history for analysts as Parquet, SQLite and gzipped CSV, with a manifest."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", type=Path, help="The folder the dumps go in (default: settings.EXPORT_DIR).")
        parser.add_argument(
            "--format",
            type=formats_argument,
            default=list(FORMATS),
            help=f"Comma-separated formats to write (default: {','.join(FORMATS)}).",
        )
        parser.add_argument(
            "--since", type=day_argument, help="Incremental: only snapshot days from this date on (YYYY-MM-DD)."
        )
        parser.add_argument(
            "--incremental",
            action="store_true",
            help="Still a whole dump, but link the newest dump's files of every (feed, month) unchanged since, and "
            "read only the other months from the database (the nightly task's way).",
        )
        parser.add_argument(
            "--keep", type=positive_argument, help="How many dumps to keep, the newest (default: settings.EXPORT_KEEP)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        on_file = (lambda path: self.stdout.write(f"  wrote {path}")) if options["verbosity"] >= 2 else None
        result = exports_write(
            out=options["out"] or Path(settings.EXPORT_DIR),
            formats=options["format"],
            since=options["since"],
            keep=options["keep"] or settings.EXPORT_KEEP,
            incremental=options["incremental"],
            on_file=on_file,
        )
        reused = f" ({result.reused} months linked, {result.rewritten} written)" if options["incremental"] else ""
        self.stdout.write(
            f"Wrote {result.path}: {result.rows['snapshots']} snapshot rows, {result.files} files{reused}, "
            f"{result.bytes / 1e6:.1f} MB in {result.seconds:.1f}s; removed {len(result.deleted)} old dumps."
        )
