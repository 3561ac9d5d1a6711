"""Item-level validation of Jikan anime items: pure functions over dicts, no queries and no I/O.

An item is loaded only if it has a positive integer `mal_id` and a title. Counts must be integers and
not negative; a score is a number in 1..10. Jikan uses 0 for "unknown" in score, rank, popularity and
members, so those become None. Enum-like strings are kept as they come (Jikan's enums are not closed).

Text is cut to its column's max_length, and an integer outside its column's range (mal_ids, counts,
year) rejects the item: both limits are read once, at import, from the model fields, so a change to
a column changes the validation with it.

Every name Jikan gives a title (`titles[]`) is kept for search. Links and images are kept only when
they point at MyAnimeList (http or https, myanimelist.net or a subdomain): pages render them as links
and images, so another host, `javascript:` or `data:` is dropped and the item kept without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlsplit

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from snapshots.models import Anime, Genre, Rejection, Studio
from snapshots.search import search_text

SEASONS = ("winter", "spring", "summer", "fall")
# Years a query may name: from the oldest surviving anime (1917) to a bound no schedule reaches.
FIRST_YEAR, LAST_YEAR = 1917, 2100
GENRE_LISTS = {"genres": "genre", "explicit_genres": "explicit", "themes": "theme", "demographics": "demographic"}
# Counts where Jikan's 0 means "not known yet" (brand-new or upcoming entries).
ZERO_MEANS_UNKNOWN = {"rank", "popularity", "members"}
COUNT_FIELDS = ("episodes", "scored_by", "rank", "popularity", "members", "favorites")
_TWO_PLACES = Decimal("0.01")
# A variant's type ("Default", "Synonym", "Japanese", "English", "French"...) is a short word. MAL lists a
# handful of variants per title; the cap keeps one odd item from bloating its row.
TITLE_TYPE_LENGTH, MAX_TITLE_VARIANTS = 32, 50
MAL_HOST = "myanimelist.net"
# The characters RFC 3986 allows in a URL, and letters of any script: no space, quote, `<` or backslash
# (a browser reads `\` as `/`, so "https://evil.example\@myanimelist.net" would lead elsewhere).
_URL_CHARACTERS = re.compile(r"[\w\-.~:/?#\[\]@!$&'()*+,;=%]+")
INT_FIELDS = ("mal_id", "year", *COUNT_FIELDS)


def _max_length(model: type[models.Model], name: str) -> int:
    field = model._meta.get_field(name)
    if not isinstance(field, models.CharField) or field.max_length is None:
        raise TypeError(f"{model.__name__}.{name} is not a text column with a max_length")
    return field.max_length


def _int_range(model: type[models.Model], name: str) -> tuple[int | None, int | None]:
    """The (lowest, highest) value the column takes, from the field's validators (the backend's range)."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.IntegerField):
        raise TypeError(f"{model.__name__}.{name} is not an integer column")
    low: int | None = None
    high: int | None = None
    for validator in field.validators:
        if not isinstance(validator, MinValueValidator | MaxValueValidator):
            continue
        limit = validator.limit_value() if callable(validator.limit_value) else validator.limit_value
        if isinstance(validator, MinValueValidator):
            low = limit if low is None else max(low, limit)
        else:
            high = limit if high is None else min(high, limit)
    return low, high


# Anime's text columns, by field name; a value longer than its column is cut to fit.
ANIME_TEXT_LENGTHS = {
    name: _max_length(Anime, name)
    for name in (
        "title",
        "title_english",
        "title_japanese",
        "type",
        "source",
        "status",
        "aired_string",
        "rating",
        "image_url",
        "url",
    )
}
GENRE_NAME_LENGTH = _max_length(Genre, "name")
STUDIO_NAME_LENGTH = _max_length(Studio, "name")
REJECTION_REASON_LENGTH = _max_length(Rejection, "reason")
ANIME_INT_RANGES = {name: _int_range(Anime, name) for name in INT_FIELDS}
GENRE_ID_RANGE = _int_range(Genre, "mal_id")
STUDIO_ID_RANGE = _int_range(Studio, "mal_id")


@dataclass(frozen=True)
class AnimeRecord:
    mal_id: int
    title: str
    title_english: str
    title_japanese: str
    titles: tuple[dict[str, str], ...]  # every variant Jikan gives: {"type": "Synonym", "title": "FMA"}
    type: str
    source: str
    episodes: int | None
    status: str
    airing: bool
    aired_from: date | None
    aired_to: date | None
    aired_string: str
    season: str
    year: int | None
    rating: str
    synopsis: str
    image_url: str
    url: str
    score: Decimal | None
    scored_by: int | None
    rank: int | None
    popularity: int | None
    members: int | None
    favorites: int | None
    genres: tuple[tuple[int, str, str], ...]  # (mal_id, name, kind)
    studios: tuple[tuple[int, str], ...]  # (mal_id, name)
    episode_minutes: int | None = None  # from Jikan's `duration`, see episode_minutes()

    @property
    def search_text(self) -> str:
        """What a search matches: every name of the title, normalised (snapshots.search)."""
        names = (self.title, self.title_english, self.title_japanese, *(v["title"] for v in self.titles))
        return search_text(names)


@dataclass(frozen=True)
class ItemRejection:
    mal_id: int | None
    field: str
    reason: str
    value: str


class _Invalid(Exception):
    def __init__(self, field: str, reason: str, value: Any) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason, self.value = field, reason, value


def item_validate(raw: Any) -> AnimeRecord | ItemRejection:
    """Turn one raw Jikan item into a record to load, or a rejection saying why not. Never raises."""
    known_id = _positive_int(raw.get("mal_id")) if isinstance(raw, dict) else None
    if known_id is not None and _out_of_range(known_id, ANIME_INT_RANGES["mal_id"]):
        known_id = None  # it could not be stored with the rejection either
    try:
        return _record(raw)
    except _Invalid as invalid:
        return ItemRejection(known_id, invalid.field, invalid.reason, _shorten(invalid.value))
    except Exception as exc:  # a shape nobody foresaw must cost one item, never the run
        reason = f"unreadable item: {exc.__class__.__name__}: {exc}"
        return ItemRejection(known_id, "item", reason[:REJECTION_REASON_LENGTH], _shorten(raw))


def _record(raw: Any) -> AnimeRecord:
    if not isinstance(raw, dict):
        raise _Invalid("item", "not an object", raw)
    mal_id = _positive_int(raw.get("mal_id"))
    if mal_id is None:
        raise _Invalid("mal_id", "must be a positive integer", raw.get("mal_id"))
    _check_range("mal_id", mal_id, ANIME_INT_RANGES["mal_id"])
    title = _title(raw)
    counts = {name: _count(raw, name) for name in COUNT_FIELDS}
    aired = _dict(raw.get("aired"))
    aired_from, aired_to = _date(aired.get("from")), _date(aired.get("to"))
    season, year = _season(raw, aired)
    if year is not None:
        _check_range("year", year, ANIME_INT_RANGES["year"])
    return AnimeRecord(
        mal_id=mal_id,
        title=title,
        title_english=_cut(raw.get("title_english"), "title_english"),
        title_japanese=_cut(raw.get("title_japanese"), "title_japanese"),
        titles=title_variants(raw),
        type=_cut(raw.get("type"), "type"),
        source=_cut(raw.get("source"), "source"),
        status=_cut(raw.get("status"), "status"),
        airing=raw.get("airing") is True,
        aired_from=aired_from,
        aired_to=aired_to,
        aired_string=_cut(aired.get("string"), "aired_string"),
        season=season,
        year=year,
        rating=_cut(raw.get("rating"), "rating"),
        synopsis=_text(raw.get("synopsis")),
        image_url=_image_url(raw),
        url=_mal_url(raw.get("url"), "url"),
        score=_score(raw.get("score")),
        genres=_genres(raw),
        studios=_studios(raw),
        episode_minutes=episode_minutes(raw.get("duration")),
        **counts,
    )


_DURATION = re.compile(
    r"^\s*(?:(\d{1,3})\s*hr\.?)?\s*(?:(\d{1,4})\s*min\.?)?\s*(?:(\d{1,4})\s*sec\.?)?\s*(?:per ep\.?)?\s*$"
)
# A whole season in one "episode" is still under a day; more is no duration but a typo.
MAX_EPISODE_MINUTES = 24 * 60


def episode_minutes(duration: Any) -> int | None:
    """Minutes per episode from Jikan's `duration`: "24 min per ep" 24, "1 hr 52 min" 112, "2 hr" 120,
    "45 sec per ep" 1; None for "Unknown", anything unreadable and anything over a day. A film's duration
    is its one episode's."""
    if not isinstance(duration, str) or len(duration) > 40:
        return None
    match = _DURATION.match(duration)
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    total = hours * 60 + minutes + (1 if seconds and not (hours or minutes) else 0)
    return total if 0 < total <= MAX_EPISODE_MINUTES else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: Any) -> str:
    # JSON may carry "\u0000"; PostgreSQL text cannot hold it, and it never means anything.
    return value.replace("\x00", "").strip() if isinstance(value, str) else ""


def _cut(value: Any, field: str) -> str:
    """The text of an Anime field, cut to its column's max_length."""
    return _text(value)[: ANIME_TEXT_LENGTHS[field]]


def _out_of_range(value: int, limits: tuple[int | None, int | None]) -> bool:
    low, high = limits
    return (low is not None and value < low) or (high is not None and value > high)


def _check_range(field: str, value: int, limits: tuple[int | None, int | None]) -> None:
    low, high = limits
    if low is not None and value < low:
        raise _Invalid(field, f"must be at least {low}", value)
    if high is not None and value > high:
        raise _Invalid(field, f"must be at most {high}", value)


def _shorten(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 500 else text[:497] + "..."


def _title(raw: dict[str, Any]) -> str:
    title = _text(raw.get("title"))
    if not title:
        # Newer payloads also carry titles[]; the "Default" entry is the same main title.
        titles = raw.get("titles")
        defaults = [
            t.get("title")
            for t in (titles if isinstance(titles, list) else [])
            if isinstance(t, dict) and t.get("type") == "Default"
        ]
        title = _text(defaults[0]) if defaults else ""
    if not title:
        raise _Invalid("title", "missing", raw.get("title"))
    return title[: ANIME_TEXT_LENGTHS["title"]]


def title_variants(raw: dict[str, Any]) -> tuple[dict[str, str], ...]:
    """Every name of the title with its type, each once, in Jikan's order; malformed entries are skipped.

    Early v4 payloads have no titles[]: their title, title_synonyms, title_japanese and title_english
    stand in for it.
    """
    entries = raw.get("titles")
    if not isinstance(entries, list):
        synonyms = raw.get("title_synonyms")
        entries = [
            {"type": "Default", "title": raw.get("title")},
            *({"type": "Synonym", "title": s} for s in (synonyms if isinstance(synonyms, list) else [])),
            {"type": "Japanese", "title": raw.get("title_japanese")},
            {"type": "English", "title": raw.get("title_english")},
        ]
    variants: dict[tuple[str, str], None] = {}
    for entry in entries:
        name = _text(entry.get("title"))[: ANIME_TEXT_LENGTHS["title"]] if isinstance(entry, dict) else ""
        if name and len(variants) < MAX_TITLE_VARIANTS:
            variants.setdefault((_text(entry.get("type"))[:TITLE_TYPE_LENGTH], name))
    return tuple({"type": kind, "title": name} for kind, name in variants)


def _count(raw: dict[str, Any], name: str) -> int | None:
    value = raw.get(name)
    if value is None:
        return None
    if not _is_int(value):
        raise _Invalid(name, "must be an integer", value)
    if value < 0:
        raise _Invalid(name, "must not be negative", value)
    _check_range(name, value, ANIME_INT_RANGES[name])
    if value == 0 and name in ZERO_MEANS_UNKNOWN:
        return None
    return int(value)


def _score(value: Any) -> Decimal | None:
    if value is None or (value == 0 and not isinstance(value, bool)):
        return None  # the docs say a missing score is 0: unknown, not zero
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid("score", "must be a number", value)
    if not 1 <= value <= 10:
        raise _Invalid("score", "must be between 1 and 10", value)
    return Decimal(str(value)).quantize(_TWO_PLACES, rounding=ROUND_HALF_UP)


def _date(value: Any) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        return None


def _season(raw: dict[str, Any], aired: dict[str, Any]) -> tuple[str, int | None]:
    """MAL's premiered season, or the season `aired.from` falls in when Jikan gives null.

    Jikan pads partial dates ("2023 to ?" becomes 2023-01-01), so the month is only trusted when
    `aired.prop.from.month` says it is known.
    """
    season, year = raw.get("season"), _positive_int(raw.get("year"))
    if season in SEASONS and year is not None:
        return str(season), year
    prop = _dict(aired.get("prop"))
    start = _dict(prop.get("from"))
    prop_year, prop_month = _positive_int(start.get("year")), _positive_int(start.get("month"))
    if prop_year is not None:
        if prop_month is not None and prop_month <= 12:
            return SEASONS[(prop_month - 1) // 3], prop_year
        return "", prop_year
    aired_from = _date(aired.get("from"))
    if aired_from is not None and not prop:
        return SEASONS[(aired_from.month - 1) // 3], aired_from.year
    return "", year


def _positive_int(value: Any) -> int | None:
    return int(value) if _is_int(value) and value > 0 else None


def _entries(value: Any) -> list[dict[str, Any]]:
    """The well-formed {mal_id, name} entries of a Jikan list; malformed ones are skipped."""
    if not isinstance(value, list):
        return []
    return [e for e in value if isinstance(e, dict) and _is_int(e.get("mal_id")) and e["mal_id"] > 0]


def _genres(raw: dict[str, Any]) -> tuple[tuple[int, str, str], ...]:
    found: dict[int, tuple[int, str, str]] = {}
    for key, kind in GENRE_LISTS.items():
        for entry in _entries(raw.get(key)):
            _check_range(f"{key}.mal_id", entry["mal_id"], GENRE_ID_RANGE)
            found.setdefault(entry["mal_id"], (entry["mal_id"], _text(entry.get("name"))[:GENRE_NAME_LENGTH], kind))
    return tuple(found.values())


def _studios(raw: dict[str, Any]) -> tuple[tuple[int, str], ...]:
    studios = []
    for entry in _entries(raw.get("studios")):
        _check_range("studios.mal_id", entry["mal_id"], STUDIO_ID_RANGE)
        studios.append((entry["mal_id"], _text(entry.get("name"))[:STUDIO_NAME_LENGTH]))
    return tuple(studios)


def _image_url(raw: dict[str, Any]) -> str:
    """The largest image on MyAnimeList's hosts, JPEG first."""
    images = _dict(raw.get("images"))
    for fmt in ("jpg", "webp"):
        variants = _dict(images.get(fmt))
        for size in ("large_image_url", "image_url"):
            if url := _mal_url(variants.get(size), "image_url"):
                return url
    return ""


def _mal_url(value: Any, field: str) -> str:
    """The URL when it is http(s) to MyAnimeList's hosts and fits its column whole, else ""."""
    url = _text(value)
    # A URL cut to fit would lead somewhere else: too long is dropped, not cut.
    if len(url) > ANIME_TEXT_LENGTHS[field] or not _URL_CHARACTERS.fullmatch(url):
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or parts.username is not None or parts.password is not None:
        return ""
    return url if host == MAL_HOST or host.endswith(f".{MAL_HOST}") else ""
