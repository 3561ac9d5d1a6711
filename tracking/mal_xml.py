"""Reading and writing MyAnimeList anime list exports.

MAL's "Export My List" gives an XML file (usually gzipped) that other trackers import too, so it is the way a
visitor brings a list in and takes it out again. Parsing is pure Python with no database: the import service
decides what to do with the entries, the export view only renders them. An upload is untrusted, so the XML is
parsed with defusedxml (no DTD, entities or external references), gzip is decompressed in a streaming way
under a cap, and anything wrong with the file becomes a MalFileError with a message fit to show the visitor.
A single unreadable <anime> entry does not sink the file: it is reported in `rejected` with its reason.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException, DTDForbidden

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_XML_BYTES = 20 * 1024 * 1024

GZIP_MAGIC = b"\x1f\x8b"

# Our status -> the word MAL writes in my_status. Older exports write the number instead.
STATUS_WORDS = {
    "watching": "Watching",
    "completed": "Completed",
    "on_hold": "On-Hold",
    "dropped": "Dropped",
    "plan_to_watch": "Plan to Watch",
}
_STATUS_NUMBERS = {"1": "watching", "2": "completed", "3": "on_hold", "4": "dropped", "6": "plan_to_watch"}
_STATUS_BY_TEXT = {word.lower(): status for status, word in STATUS_WORDS.items()} | _STATUS_NUMBERS

# The myinfo counter for each status, in MAL's order.
_STATUS_TOTALS = {
    "watching": "user_total_watching",
    "completed": "user_total_completed",
    "on_hold": "user_total_onhold",
    "dropped": "user_total_dropped",
    "plan_to_watch": "user_total_plantowatch",
}

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
# Characters XML 1.0 cannot carry at all (most C0 controls, surrogates, U+FFFE/U+FFFF).
_NOT_XML_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class MalFileError(Exception):
    """The uploaded file cannot be read as a MyAnimeList export; the message says why, for the visitor."""


@dataclass(frozen=True)
class MalEntry:
    """One anime of a MAL list, with MAL's "unknown" markers (0, 0000-00-00) turned into None."""

    mal_id: int
    title: str
    series_type: str
    episodes: int | None
    watched_episodes: int
    started_on: date | None
    finished_on: date | None
    score: int | None
    status: str
    notes: str
    times_watched: int
    rewatching: bool
    tags: str


@dataclass(frozen=True)
class MalRejected:
    """An <anime> element that could not be read, and why."""

    mal_id: int | None
    title: str
    reason: str


@dataclass(frozen=True)
class MalExport:
    """A whole export: the readable entries and the rejected ones, in file order."""

    username: str
    entries: list[MalEntry]
    rejected: list[MalRejected]


class _Rejected(Exception):
    """One entry is unreadable; carries the reason shown to the visitor."""


def parse_export(data: bytes) -> MalExport:
    """Read a MAL export, plain or gzipped; raise MalFileError when the file as a whole is unusable."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise MalFileError(f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
    xml = _gunzip(data) if data.startswith(GZIP_MAGIC) else data
    if not xml.strip():
        raise MalFileError("The file is empty.")
    root = _parse_xml(xml)
    if root.tag != "myanimelist":
        raise MalFileError(
            f"The file is not a MyAnimeList export: its root element is <{root.tag}>, not <myanimelist>."
        )

    entries: list[MalEntry] = []
    rejected: list[MalRejected] = []
    seen: set[int] = set()
    for anime in root.findall("anime"):
        mal_id: int | None = None
        try:
            mal_id = _mal_id(anime)
            if mal_id in seen:
                raise _Rejected(f"MyAnimeList id {mal_id} appears more than once in the file.")
            entries.append(_entry(anime, mal_id))
            seen.add(mal_id)
        except _Rejected as rejection:
            rejected.append(
                MalRejected(mal_id=mal_id, title=anime.findtext("series_title") or "", reason=str(rejection))
            )
    username = (root.findtext("myinfo/user_name") or "").strip()
    return MalExport(username=username, entries=entries, rejected=rejected)


def _gunzip(data: bytes) -> bytes:
    """Decompress gzip member by member, stopping as soon as the output would pass MAX_XML_BYTES."""
    output = bytearray()
    pending = data
    try:
        while pending:
            decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
            while pending and not decompressor.eof:
                # max_length bounds what one call may produce, so a bomb never gets past the cap in memory.
                output += decompressor.decompress(pending, MAX_XML_BYTES + 1 - len(output))
                if len(output) > MAX_XML_BYTES:
                    raise MalFileError(f"The file is larger than {MAX_XML_BYTES // (1024 * 1024)} MB uncompressed.")
                pending = decompressor.unconsumed_tail
            if not decompressor.eof:
                raise MalFileError("The gzip file is truncated.")
            pending = decompressor.unused_data
    except zlib.error as error:
        raise MalFileError(f"The gzip file is damaged ({error}).") from None
    return bytes(output)


def _parse_xml(xml: bytes) -> Element:
    try:
        return SafeElementTree.fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        # Saving MAL's list page instead of exporting is the likely mistake, and HTML pages start with a DTD.
        if isinstance(error, DTDForbidden) and (error.name or "").lower() == "html":
            raise MalFileError("The file is a web page (HTML), not a MyAnimeList export.") from None
        raise MalFileError("The file declares a DTD or entities, which a MyAnimeList export never does.") from None
    except ParseError as error:
        raise MalFileError(f"The file is not a MyAnimeList export: it is not valid XML ({error}).") from None
    except (LookupError, ValueError) as error:
        # An encoding declaration expat cannot decode (unknown, multi-byte like Shift_JIS, or not a text codec).
        raise MalFileError(f"The file is not a MyAnimeList export: its encoding is not supported ({error}).") from None


def _mal_id(anime: Element) -> int:
    text = (anime.findtext("series_animedb_id") or "").strip()
    if not text:
        raise _Rejected("The MyAnimeList id (series_animedb_id) is missing.")
    if not text.isascii() or not text.isdigit() or int(text) == 0:
        raise _Rejected(f"The MyAnimeList id (series_animedb_id) {text!r} is not a positive number.")
    return int(text)


def _entry(anime: Element, mal_id: int) -> MalEntry:
    status_text = (anime.findtext("my_status") or "").strip()
    status = _STATUS_BY_TEXT.get(status_text.lower())
    if status is None:
        raise _Rejected(f"The status (my_status) {status_text!r} is not a MyAnimeList status.")
    score = _count(anime, "my_score", "score")
    if score > 10:
        raise _Rejected(f"The score (my_score) {score} is not between 0 and 10.")
    rewatching = (anime.findtext("my_rewatching") or "0").strip() or "0"
    if rewatching not in ("0", "1"):
        raise _Rejected(f"The rewatching flag (my_rewatching) {rewatching!r} is neither 0 nor 1.")
    return MalEntry(
        mal_id=mal_id,
        title=anime.findtext("series_title") or "",
        series_type=(anime.findtext("series_type") or "").strip(),
        episodes=_count(anime, "series_episodes", "number of episodes") or None,
        watched_episodes=_count(anime, "my_watched_episodes", "number of watched episodes"),
        started_on=_date(anime.findtext("my_start_date")),
        finished_on=_date(anime.findtext("my_finish_date")),
        score=score or None,
        status=status,
        notes=anime.findtext("my_comments") or "",
        times_watched=_count(anime, "my_times_watched", "number of times watched"),
        rewatching=rewatching == "1",
        tags=anime.findtext("my_tags") or "",
    )


def _count(anime: Element, tag: str, label: str) -> int:
    """A whole number >= 0; a missing or empty element counts as 0, which MAL uses for "unknown"."""
    text = (anime.findtext(tag) or "").strip() or "0"
    if not text.isascii() or not text.isdigit():
        raise _Rejected(f"The {label} ({tag}) {text!r} is not a whole number of 0 or more.")
    return int(text)


def _date(text: str | None) -> date | None:
    """A full YYYY-MM-DD date; anything partial (2020-05-00) or impossible is unknown rather than guessed."""
    match = _DATE.fullmatch((text or "").strip())
    if match is None:
        return None
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def render_export(username: str, entries: Iterable[MalEntry]) -> bytes:
    """An XML document in MAL's own export shape (every element, MAL's order), which MAL can import back."""
    entries = list(entries)
    totals = Counter(entry.status for entry in entries)
    lines = [
        '<?xml version="1.0" encoding="UTF-8" ?>',
        "<myanimelist>",
        "\t<myinfo>",
        "\t\t<user_id>0</user_id>",
        f"\t\t<user_name>{_text(username)}</user_name>",
        "\t\t<user_export_type>1</user_export_type>",
        f"\t\t<user_total_anime>{len(entries)}</user_total_anime>",
        *(f"\t\t<{tag}>{totals[status]}</{tag}>" for status, tag in _STATUS_TOTALS.items()),
        "\t</myinfo>",
    ]
    for entry in entries:
        fields = [
            ("series_animedb_id", str(entry.mal_id)),
            ("series_title", _cdata(entry.title)),
            ("series_type", _text(entry.series_type)),
            ("series_episodes", str(entry.episodes or 0)),
            ("my_id", "0"),
            ("my_watched_episodes", str(entry.watched_episodes)),
            ("my_start_date", _mal_date(entry.started_on)),
            ("my_finish_date", _mal_date(entry.finished_on)),
            ("my_rated", ""),
            ("my_score", str(entry.score or 0)),
            ("my_storage", ""),
            ("my_storage_value", "0.00"),
            ("my_status", STATUS_WORDS[entry.status]),
            ("my_comments", _cdata(entry.notes)),
            ("my_times_watched", str(entry.times_watched)),
            ("my_rewatch_value", ""),
            ("my_priority", "LOW"),
            ("my_tags", _cdata(entry.tags)),
            ("my_rewatching", "1" if entry.rewatching else "0"),
            ("my_rewatching_ep", "0"),
            ("my_discuss", "1"),
            ("my_sns", "default"),
            ("update_on_import", "1"),
        ]
        lines += ["\t<anime>", *(f"\t\t<{tag}>{value}</{tag}>" for tag, value in fields), "\t</anime>"]
    lines.append("</myanimelist>\n")
    return "\n".join(lines).encode()


def _text(value: str) -> str:
    # A raw \r would come back as \n (XML normalises line ends), so it goes as a character reference.
    return escape(_NOT_XML_CHARS.sub("", value)).replace("\r", "&#13;")


def _cdata(value: str) -> str:
    """CDATA as MAL writes it, split around "]]>" and around \r, which a CDATA section cannot carry."""
    value = _NOT_XML_CHARS.sub("", value).replace("]]>", "]]]]><![CDATA[>").replace("\r", "]]>&#13;<![CDATA[")
    return f"<![CDATA[{value}]]>"


def _mal_date(value: date | None) -> str:
    return value.isoformat() if value else "0000-00-00"
