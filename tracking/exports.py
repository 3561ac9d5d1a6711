"""A person's list as a file: MyAnimeList XML (so MAL and other trackers can import it), CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass

from django.contrib.auth.models import User
from django.utils import timezone

from tracking.mal_xml import MalEntry, render_export
from tracking.models import ListEntry

FORMATS = ("xml", "csv", "json")
CSV_COLUMNS = (
    "mal_id", "title", "series_type", "episodes", "status", "score", "watched_episodes", "started_on",
    "finished_on", "times_watched", "rewatching", "notes",
)  # fmt: skip


@dataclass(frozen=True)
class ExportFile:
    body: bytes
    content_type: str
    filename: str


def list_export(*, user: User, fmt: str) -> ExportFile:
    """The person's whole list in `fmt` (one of FORMATS), named after them and today."""
    entries = [
        _mal_entry(entry)
        for entry in ListEntry.objects.filter(user=user).select_related("anime").order_by("anime__title", "anime_id")
    ]
    stem = f"animedash-{user.get_username()}-{timezone.localdate().isoformat()}"
    if fmt == "xml":
        return ExportFile(render_export(user.get_username(), entries), "application/xml", f"{stem}.xml")
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(_row(entry) for entry in entries)
        return ExportFile(out.getvalue().encode(), "text/csv; charset=utf-8", f"{stem}.csv")
    body = {
        "username": user.get_username(),
        "exported_at": timezone.now().isoformat(),
        "entries": [_row(e) for e in entries],
    }
    return ExportFile(json.dumps(body, ensure_ascii=False, indent=1).encode(), "application/json", f"{stem}.json")


def _mal_entry(entry: ListEntry) -> MalEntry:
    return MalEntry(
        mal_id=entry.anime_id,
        title=entry.anime.title,
        series_type=entry.anime.type or "",
        episodes=entry.anime.episodes,
        watched_episodes=entry.progress,
        started_on=entry.started_on,
        finished_on=entry.finished_on,
        score=entry.score,
        status=entry.status,
        notes=entry.notes,
        times_watched=entry.times_rewatched,
        rewatching=entry.rewatching,
        tags="",
    )


def _row(entry: MalEntry) -> dict[str, object]:
    row = asdict(entry)
    for name in ("started_on", "finished_on"):
        row[name] = row[name] and row[name].isoformat()
    return row
