"""A fake Jikan v4 server on loopback, for tests, benchmarks and the offline demo.

It speaks Jikan v4 under ``/v4`` from a simulated catalogue built from the real recorded payloads in
``recorded/`` beside it: every real anime item found there, optionally cloned up to ``catalogue_size``, with
numbers that drift a little each simulated day (deterministic per seed, title and day). Tests can
override an endpoint with recorded pages (``serve``) and queue faults (``inject``). The demo's catalogue
(``demo=True``) also lives in the simulated day's calendar and has titles surging each week (see DEMO_*).

Reference: the Jikan v4 OpenAPI spec (https://docs.api.jikan.moe/) and the payloads in ``recorded/``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import re
import socket
import sys
import threading
import time
from calendar import monthrange
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

DATA_DIR = Path(__file__).resolve().parent
PER_PAGE = 25
CLONE_FIRST_ID = 900000
# Day 0 of the drift: the days the recorded payloads were taken, so the base numbers are "real" there.
DRIFT_EPOCH = date(2022, 12, 6)
CATALOGUE_CACHE_CONTROL = "private, must-revalidate"

NOT_FOUND_FILE = "v4_error_404_anime_-1_HttpException.json"
SEASON_NOT_FOUND_FILE = "v4_error_404_seasons_-1_winter_HttpException.json"
BAD_REQUEST_FILE = "SYNTHETIC_400_ValidationException_limit_over_25.json"
GENRES_FILE = "v4_genres_anime_2022-12-06.json"
FAULT_FILES = {
    "429": "QUOTED_429_jikan_rate_limit_from_code_comments.json",
    "429_upstream": "SYNTHETIC_429_upstream_mal_rate_limit.json",
    "500": "SYNTHETIC_500_UpstreamException.json",
    "504": "QUOTED_504_BadResponseException_from_issues_595_610_612.json",
    # The false 404 Jikan sends for a title that exists (issue 378).
    "404": "QUOTED_404_BadResponseException_from_issue_378.json",
}
FAULT_OPTIONS: dict[str, set[str]] = {
    "latency": {"seconds"},
    "429": {"retry_after", "upstream"},
    "500": set(),
    "504": set(),
    "404": set(),
    "malformed": set(),
    "truncated": set(),
    "no_data": set(),
    "drift": set(),
    "duplicates": set(),
    "bad_items": set(),
}
TOP_FILTERS = {"airing", "upcoming", "bypopularity", "favorite"}
TOP_TYPES = {"tv", "movie", "ova", "special", "ona", "music", "cm", "pv", "tv_special"}
SEASONS = ("winter", "spring", "summer", "fall")
NOT_YET_AIRED = "Not yet aired"

# The demo's surges, so that its lists keep moving: each week some titles below the 30th place of
# the score order, and some of the members order, surge to that place, at full strength for a week,
# then fading over two. A title's week comes once a cycle of 16 weeks (longer than the 90 days new
# entries look back), set round robin by its place at the cycle's start: any 16 places in a row hold
# one title of each week, so every week one of the places 51-66 surges into the top 50, a new entry.
DEMO_SURGE_PLACE = 30
DEMO_SURGE_REACH = 100  # places below the deepest feed's budget (4 pages) never show, so never surge
DEMO_SURGE_WEEKS = 16
DEMO_SURGE_CYCLE = 7 * DEMO_SURGE_WEEKS
DEMO_SURGE_DAYS = 21
DEMO_SURGE_PEAK_DAYS = 7


# Recorded files ------------------------------------------------------------------------------------


def data_file(name: str) -> Path:
    """The path of a recorded file by name (``.json`` optional), looked up in recorded/ then errors/."""
    filename = name if name.endswith(".json") else f"{name}.json"
    for folder in ("recorded", "errors"):
        path = DATA_DIR / folder / filename
        if path.is_file():
            return path
    raise FileNotFoundError(f"No recorded Jikan file named {name!r} in {DATA_DIR}")


@functools.cache
def load_recorded(name: str) -> Any:
    """The parsed body of a recorded file, parsed once per process. Shared: never mutate it."""
    return json.loads(data_file(name).read_text(encoding="utf-8"))


@functools.cache
def recorded_meta(name: str) -> tuple[int, str]:
    """(status, Cache-Control) a recorded file was served with, from its ``.headers.json`` or its body."""
    path = data_file(name)
    headers_path = path.with_name(path.name.removesuffix(".json") + ".headers.json")
    if headers_path.is_file():
        meta = json.loads(headers_path.read_text(encoding="utf-8"))
        return int(meta["status"]), meta["response_headers"].get("Cache-Control", CATALOGUE_CACHE_CONTROL)
    body = load_recorded(name)
    # Error bodies without headers carry their status, sometimes as a string ("429").
    status = body.get("status") if isinstance(body, dict) else None
    return (int(status) if status is not None else 200), "no-cache, private"


# Catalogue -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Title:
    """One catalogue title: the real recorded item (shared, never mutated) and what sorting needs."""

    item: dict[str, Any]
    mal_id: int
    type_key: str  # "tv", "tv_special", ... ("" when Jikan gave no type)
    status: str
    season: tuple[int, str] | None  # (year, season), from season/year or else aired.from


def _season_of(item: dict[str, Any]) -> tuple[int, str] | None:
    # season/year come only from MAL's "premiered": null for movies, OVAs and many upcoming shows.
    if item.get("season") in SEASONS and isinstance(item.get("year"), int):
        return item["year"], item["season"]
    aired_from = (item.get("aired") or {}).get("from")
    if not aired_from:
        return None
    aired = date.fromisoformat(aired_from[:10])
    return aired.year, SEASONS[(aired.month - 1) // 3]


def _title(item: dict[str, Any]) -> Title:
    type_key = (item.get("type") or "").lower().replace(" ", "_")
    return Title(item=item, mal_id=item["mal_id"], type_key=type_key, status=item["status"], season=_season_of(item))


@functools.cache
def real_items() -> tuple[dict[str, Any], ...]:
    """Every distinct real anime item in the recorded full-v4 responses, by mal_id.

    Early-v4 and hand-edited files are left out (their items lack ``titles[]``), and so are episodes
    and genres, which are not anime. A title recorded twice keeps the copy from the later file.
    """
    items: dict[int, dict[str, Any]] = {}
    for path in sorted((DATA_DIR / "recorded").glob("v4_*.json")):
        if path.name.endswith(".headers.json") or "MODIFIED" in path.name:
            continue
        data = load_recorded(path.name).get("data")
        for item in data if isinstance(data, list) else [data]:
            if isinstance(item, dict) and "titles" in item:
                items[item["mal_id"]] = item
    return tuple(items[mal_id] for mal_id in sorted(items))


def _clone(item: dict[str, Any], number: int) -> dict[str, Any]:
    mal_id = CLONE_FIRST_ID + number - 1
    suffix = f" (sim {number})"
    titles = [
        {**entry, "title": entry["title"] + suffix} if entry["type"] in ("Default", "English") else entry
        for entry in item["titles"]
    ]
    return {
        **item,
        "mal_id": mal_id,
        "url": f"https://myanimelist.net/anime/{mal_id}/",
        "titles": titles,
        "title": item["title"] + suffix,
        "title_english": item["title_english"] + suffix if item.get("title_english") else item.get("title_english"),
    }


@functools.cache
def catalogue(size: int | None = None) -> tuple[Title, ...]:
    """The real titles, cut or grown to ``size`` by cloning them under ids from 900000 (benchmarks)."""
    items = list(real_items())
    if size is None:
        size = len(items)
    base = len(items)
    items = items[:size] + [_clone(items[n % base], n + 1) for n in range(max(0, size - base))]
    return tuple(_title(item) for item in items)


# Daily drift ---------------------------------------------------------------------------------------


def _unit_floats(*key: object) -> list[float]:
    # A stable hash, not hash(): the answer must be the same in every process and on every run.
    digest = hashlib.blake2b(repr(key).encode(), digest_size=16).digest()
    return [int.from_bytes(digest[i : i + 4], "big") / 2**32 for i in range(0, 16, 4)]


@dataclass(frozen=True)
class DayNumbers:
    """The drifted numbers of every catalogue title on one day, index-aligned with ``catalogue()``."""

    score: list[float | None]
    scored_by: list[int | None]
    members: list[int]
    favorites: list[int]
    rank: list[int | None]
    popularity: list[int]


def _grown(base: int | None, days: int, rate: float) -> int | None:
    # Linear growth from the recorded value: never below 0, and monotonic in the day.
    return None if base is None else max(0, base + math.floor(days * (base * rate + 1)))


def _steady_score(seed: int, item: dict[str, Any], days: int) -> float | None:
    """The recorded score with its slow trend ``days`` after the recording (None: not scored)."""
    score = item.get("score")
    if score is None or item.get("status") == NOT_YET_AIRED:
        return None
    growth = _unit_floats(seed, item["mal_id"])[3]
    return score + (growth - 0.5) * 0.0006 * days  # at most 0.03 points a quarter


def _drift(seed: int, item: dict[str, Any], days: int) -> tuple[float | None, int | None, int, int]:
    """(score, scored_by, members, favorites) of one recorded item ``days`` after the recording."""
    phase, period, amplitude, growth = _unit_floats(seed, item["mal_id"])
    score = _steady_score(seed, item, days)
    if score is not None:
        wave = (0.02 + 0.1 * amplitude) * math.sin(2 * math.pi * (days / (20 + 70 * period) + phase))
        score = round(min(10.0, max(1.0, score + wave)), 2)
    rate = 0.00005 + 0.0005 * growth
    scored_by = _grown(item.get("scored_by"), days, rate * 0.6) if score is not None else None
    members = _grown(item.get("members") or 0, days, rate) or 0
    favorites = _grown(item.get("favorites") or 0, days // 3, rate * 0.5) or 0
    return score, scored_by, members, favorites


@functools.lru_cache(maxsize=32)
def _drifted(seed: int, size: int | None, day: date) -> tuple[tuple[float | None, int | None, int, int], ...]:
    days = (day - DRIFT_EPOCH).days
    return tuple(_drift(seed, title.item, days) for title in catalogue(size))


def _surge_starts(cycle: int, order_at: Callable[[int], list[int]]) -> dict[int, int]:
    """The day (since DRIFT_EPOCH) each surging title of a cycle starts its surge, by catalogue index.

    order_at(d) is the order on day d, best first.
    """
    places = enumerate(order_at(cycle * DEMO_SURGE_CYCLE)[DEMO_SURGE_PLACE:DEMO_SURGE_REACH], start=DEMO_SURGE_PLACE)
    return {index: cycle * DEMO_SURGE_CYCLE + 7 * (place % DEMO_SURGE_WEEKS) for place, index in places}


def _surged(values: list[Any], days: int, order_at: Callable[[int], list[int]], step: float) -> list[Any]:
    """values on day ``days`` with the surges: a surging title moves towards the surge place's value."""
    latest: dict[int, int] = {}
    # A surge that started late in the cycle before fades into this one.
    for cycle in (days // DEMO_SURGE_CYCLE - 1, days // DEMO_SURGE_CYCLE):
        latest.update((i, start) for i, start in _surge_starts(cycle, order_at).items() if start <= days)
    order = sorted((i for i, v in enumerate(values) if v is not None), key=lambda i: -values[i])
    if len(order) < DEMO_SURGE_PLACE:
        return values
    target = values[order[DEMO_SURGE_PLACE - 1]] + step
    surged = list(values)
    for index, start in latest.items():
        age = days - start
        if age < DEMO_SURGE_DAYS and surged[index] is not None and surged[index] < target:
            strength = min(1.0, (DEMO_SURGE_DAYS - age) / (DEMO_SURGE_DAYS - DEMO_SURGE_PEAK_DAYS))
            surged[index] += strength * (target - surged[index])
    return surged


@functools.lru_cache(maxsize=32)
def day_numbers(seed: int, size: int | None, day: date, demo: bool = False) -> DayNumbers:
    """Scores wave slowly around the recorded score with a small trend; counts grow a little each day.

    rank is the position by score among the scored titles, ties sharing a rank as on MAL; popularity
    the position by members. Upcoming titles keep score, scored_by and rank null; other unscored
    titles keep the rank they were recorded with (0, "unknown"). The demo adds its surges (DEMO_*).
    """
    titles = catalogue(size)
    drifted = _drifted(seed, size, day)
    score, scored_by = [d[0] for d in drifted], [d[1] for d in drifted]
    members, favorites = [d[2] for d in drifted], [d[3] for d in drifted]
    if demo:
        days = (day - DRIFT_EPOCH).days

        def members_order(on: int) -> list[int]:
            values = [d[2] for d in _drifted(seed, size, DRIFT_EPOCH + timedelta(days=on))]
            return sorted(range(len(values)), key=lambda i: -values[i])

        # Scores wave, so a title's week comes from its place without the wave: a place that stays put
        # from cycle to cycle keeps its week, and a surge never comes round again within 90 days.
        def score_order(on: int) -> list[int]:
            steady = [_steady_score(seed, title.item, on) for title in titles]
            return sorted((i for i, v in enumerate(steady) if v is not None), key=lambda i: -(steady[i] or 0))

        score = [None if v is None else round(min(10.0, v), 2) for v in _surged(score, days, score_order, 0.01)]
        members = [round(v) for v in _surged(members, days, members_order, 1)]
    rank: list[int | None] = [None if t.status == NOT_YET_AIRED else t.item.get("rank") for t in titles]
    scored = sorted((i for i, s in enumerate(score) if s is not None), key=lambda i: -(score[i] or 0))
    previous, current = None, 0
    for position, i in enumerate(scored, start=1):
        if score[i] != previous:
            previous, current = score[i], position
        rank[i] = current
    popularity = [0] * len(titles)
    for position, i in enumerate(sorted(range(len(titles)), key=lambda i: (-members[i], titles[i].mal_id)), start=1):
        popularity[i] = position
    return DayNumbers(score, scored_by, members, favorites, rank, popularity)


@functools.lru_cache(maxsize=256)
def ordering(seed: int, size: int | None, day: date, query: tuple[str, ...], demo: bool = False) -> tuple[int, ...]:
    """Catalogue indexes answering one list query on one day, in order. Sorted once, then cached.

    query is ("top", filter, type), ("now",), ("upcoming",), ("season", year, season) or ("search", words).
    Ties are broken by mal_id so paging is stable (real Jikan's is not: see the duplicates fault).
    """
    titles = catalogue(size)
    numbers = day_numbers(seed, size, day, demo)
    indexes = list(range(len(titles)))

    def by_members(i: int) -> tuple[int, int]:
        return -numbers.members[i], titles[i].mal_id

    kind = query[0]
    if kind == "top":
        _, top_filter, top_type = query
        if top_type:
            indexes = [i for i in indexes if titles[i].type_key == top_type]
        if top_filter == "upcoming":
            return tuple(sorted((i for i in indexes if titles[i].status == NOT_YET_AIRED), key=by_members))
        if top_filter == "bypopularity":
            return tuple(sorted(indexes, key=by_members))
        if top_filter == "favorite":
            return tuple(sorted(indexes, key=lambda i: (-numbers.favorites[i], titles[i].mal_id)))
        if top_filter == "airing":
            indexes = [i for i in indexes if titles[i].status == "Currently Airing"]
        # MAL's ranking lists only scored titles.
        ranked = [i for i in indexes if numbers.score[i] is not None]
        return tuple(sorted(ranked, key=lambda i: (-(numbers.score[i] or 0), titles[i].mal_id)))
    if kind == "upcoming":
        return tuple(sorted((i for i in indexes if titles[i].status == NOT_YET_AIRED), key=by_members))
    if kind == "search":
        # GET /anime?q=: the titles one of whose names holds the words, most members first.
        return tuple(sorted((i for i in indexes if query[1] in _names(titles[i].item)), key=by_members))
    # The demo's titles carry seasons moved into the day's calendar: move the asked season back.
    season = latest_season(size) if kind == "now" else _moved_season((int(query[1]), query[2]), -quarters(day, demo))
    return tuple(sorted((i for i in indexes if titles[i].season == season), key=by_members))


def _names(item: dict[str, Any]) -> str:
    names = [item.get("title"), item.get("title_english"), *(t.get("title") for t in item.get("titles") or [])]
    return " ".join(name.lower() for name in names if isinstance(name, str))


@functools.cache
def latest_season(size: int | None) -> tuple[int, str] | None:
    """The newest season among titles that have started airing (upcoming ones would point to the future)."""
    seasons = [t.season for t in catalogue(size) if t.season and t.status != NOT_YET_AIRED]
    return max(seasons, key=lambda s: (s[0], SEASONS.index(s[1])), default=None)


def drifted_item(seed: int, size: int | None, day: date, index: int, demo: bool = False) -> dict[str, Any]:
    """The full recorded item of one catalogue title with that day's numbers (a new top-level dict)."""
    numbers = day_numbers(seed, size, day, demo)
    item = catalogue(size)[index].item
    return {
        **item,
        **_moved_dates(item, quarters(day, demo)),
        "score": numbers.score[index],
        "scored_by": numbers.scored_by[index],
        "rank": numbers.rank[index],
        "popularity": numbers.popularity[index],
        "members": numbers.members[index],
        "favorites": numbers.favorites[index],
    }


# The demo's calendar ------------------------------------------------------------------------------


def quarters(day: date, demo: bool) -> int:
    """How many seasons the demo moves the recorded dates: the recordings' season becomes the day's."""
    if not demo:
        return 0
    return (day.year - DRIFT_EPOCH.year) * 4 + (day.month - 1) // 3 - (DRIFT_EPOCH.month - 1) // 3


def _moved_season(season: tuple[int, str], by: int) -> tuple[int, str]:
    year, index = divmod(season[0] * 4 + SEASONS.index(season[1]) + by, 4)
    return year, SEASONS[index]


def _moved_date(year: int, month: int | None, day: int | None, by: int) -> tuple[int, int | None, int | None]:
    """A (year, month, day) of MAL's, each part possibly unknown, moved by ``by`` seasons."""
    if month is None:
        # Only the year is known: it moves by the whole years in ``by`` (floor, as the months would).
        return year + (by * 3) // 12, None, day
    year, month = divmod(year * 12 + month - 1 + by * 3, 12)
    if day is not None:
        day = min(day, monthrange(year, month + 1)[1])
    return year, month + 1, day


def _mal_date(year: int, month: int | None, day: int | None) -> str:
    """MAL's aired.string form of a date: "Oct 2, 2022", "Oct 2022" or "2022"."""
    if month is None:
        return str(year)
    name = date(2000, month, 1).strftime("%b")
    return f"{name} {year}" if day is None else f"{name} {day}, {year}"


def _moved_dates(item: dict[str, Any], by: int) -> dict[str, Any]:
    """The item's season, year and aired dates moved by ``by`` seasons (nothing when by is 0)."""
    if not by:
        return {}
    moved: dict[str, Any] = {}
    if item.get("season") in SEASONS and isinstance(item.get("year"), int):
        moved["year"], moved["season"] = _moved_season((item["year"], item["season"]), by)
    elif isinstance(item.get("year"), int):
        moved["year"] = item["year"] + (by * 3) // 12
    aired = item.get("aired") or {}
    prop = aired.get("prop") or {}
    if not prop:
        return moved
    new_aired = {**aired, "prop": dict(prop)}
    parts: list[str | None] = []
    for end in ("from", "to"):
        point = prop.get(end) or {}
        if point.get("year") is None:
            parts.append(None)
            continue
        year, month, day = _moved_date(point["year"], point.get("month"), point.get("day"), by)
        new_aired["prop"][end] = {"day": day, "month": month, "year": year}
        if aired.get(end):
            new_aired[end] = f"{year:04d}-{month or 1:02d}-{day or 1:02d}{aired[end][10:]}"
        parts.append(_mal_date(year, month, day))
    if parts[0] is not None:
        # "Oct 2, 2022 to ?" keeps its open end; a single day ("Jul 12, 2020") stays single.
        ends = " to " in (aired.get("string") or "")
        new_aired["string"] = parts[0] + (f" to {parts[1] or '?'}" if ends else "")
    moved["aired"] = new_aired
    return moved


# Answers -------------------------------------------------------------------------------------------


@dataclass
class Answer:
    """One HTTP answer before encoding: a JSON body (dict) or raw bytes."""

    status: int
    body: Any
    cache_control: str = CATALOGUE_CACHE_CONTROL
    headers: dict[str, str] = field(default_factory=dict)

    @functools.cached_property
    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, separators=(",", ":")).encode()


def recorded_answer(name: str) -> Answer:
    status, cache_control = recorded_meta(name)
    return Answer(status, load_recorded(name), cache_control)


def bad_request(param: str, message: str) -> Answer:
    """Jikan's 400 ValidationException body, with the message for the offending parameter."""
    return Answer(400, {**load_recorded(BAD_REQUEST_FILE), "messages": {param: [message]}})


def page_params(params: dict[str, str]) -> tuple[int, int] | Answer:
    """(page, limit) from the query, or the real 400 body."""
    try:
        page, limit = int(params.get("page", 1)), int(params.get("limit", PER_PAGE))
    except ValueError:
        return bad_request("page", "The page and limit must be integers.")
    if limit > PER_PAGE:
        return bad_request("limit", f"Value {limit} is higher than the configured '{PER_PAGE}' max value.")
    if page < 1 or limit < 1:
        return bad_request("page", "The page and limit must be at least 1.")
    return page, limit


def list_page(
    seed: int, size: int | None, day: date, query: tuple[str, ...], params: dict[str, str], demo: bool = False
) -> Answer:
    """One page of a catalogue list, with pagination in the full v4 shape."""
    paging = page_params(params)
    return paging if isinstance(paging, Answer) else _list_page(seed, size, day, query, *paging, demo)


# The same page is asked for again and again (retries, resumes, benchmarks): built and encoded once.
@functools.lru_cache(maxsize=2048)
def _list_page(
    seed: int, size: int | None, day: date, query: tuple[str, ...], page: int, limit: int, demo: bool
) -> Answer:
    order = ordering(seed, size, day, query, demo)
    last_page = max(1, math.ceil(len(order) / limit))
    data = [drifted_item(seed, size, day, i, demo) for i in order[(page - 1) * limit : page * limit]]
    pagination = {
        "last_visible_page": last_page,
        "has_next_page": page < last_page,
        "current_page": page,
        "items": {"count": len(data), "total": len(order), "per_page": limit},
    }
    return Answer(200, {"pagination": pagination, "data": data})


SEASON_PATH = re.compile(r"^/seasons/(-?\d+)/(\w+)$")
ANIME_PATH = re.compile(r"^/anime/(-?\d+)$")


def catalogue_answer(
    seed: int, size: int | None, day: date, path: str, params: dict[str, str], demo: bool = False
) -> Answer:
    """Answer a request (path relative to /v4) from the simulated catalogue."""
    if path == "/top/anime":
        top_filter, top_type = params.get("filter", "").lower(), params.get("type", "").lower()
        if top_filter and top_filter not in TOP_FILTERS:
            return bad_request("filter", "The selected filter is invalid.")
        if top_type and top_type not in TOP_TYPES:
            return bad_request("type", "The selected type is invalid.")
        return list_page(seed, size, day, ("top", top_filter, top_type), params, demo)
    if path == "/seasons/now":
        return list_page(seed, size, day, ("now",), params, demo)
    if path == "/seasons/upcoming":
        return list_page(seed, size, day, ("upcoming",), params, demo)
    if match := SEASON_PATH.match(path):
        year, season = int(match[1]), match[2].lower()
        if not 1917 <= year <= 2100 or season not in SEASONS:
            return recorded_answer(SEASON_NOT_FOUND_FILE)
        return list_page(seed, size, day, ("season", str(year), season), params, demo)
    if path == "/genres/anime":
        return recorded_answer(GENRES_FILE)
    if path == "/anime":
        return list_page(seed, size, day, ("search", params.get("q", "").strip().lower()), params, demo)
    if match := ANIME_PATH.match(path):
        index = catalogue_index(size).get(int(match[1]))
        if index is None:
            return recorded_answer(NOT_FOUND_FILE)
        return Answer(200, {"data": drifted_item(seed, size, day, index, demo)})
    return recorded_answer(NOT_FOUND_FILE)


@functools.cache
def catalogue_index(size: int | None) -> dict[int, int]:
    return {title.mal_id: i for i, title in enumerate(catalogue(size))}


def override_answer(pages: list[str], page: int) -> Answer:
    """Page ``page`` of an override: the recorded file served as-is, with pagination made consistent."""
    if page <= len(pages):
        answer = recorded_answer(pages[page - 1])
        body = answer.body
    else:
        # Past the end: an empty page shaped like the last one.
        answer = recorded_answer(pages[-1])
        body = {**answer.body, "data": []}
        answer = Answer(200, body, answer.cache_control)
    pagination = body.get("pagination") if isinstance(body, dict) else None
    if isinstance(pagination, dict):
        pagination = {**pagination, "has_next_page": page < len(pages), "last_visible_page": len(pages)}
        if page > len(pages):
            if "current_page" in pagination:
                pagination["current_page"] = page
            if isinstance(pagination.get("items"), dict):
                pagination["items"] = {**pagination["items"], "count": 0}
        answer.body = {**body, "pagination": pagination}
    return answer


# Faults --------------------------------------------------------------------------------------------


@dataclass
class Fault:
    kind: str
    times: int
    path: str | None
    options: dict[str, Any]


def path_matches(path: str, prefix: str | None) -> bool:
    """Segment-aware prefix match: "/anime" matches "/anime/457", not "/animelist"."""
    return prefix is None or path == prefix or path.startswith(prefix.rstrip("/") + "/")


def early_v4(body: Any) -> Any:
    """The early-2022 v4 shape: items without titles[]/approved, pagination without current_page/items."""
    if not isinstance(body, dict):
        return body
    body = dict(body)
    data = body.get("data")
    strip = ("titles", "approved")
    if isinstance(data, list):
        body["data"] = [{k: v for k, v in item.items() if k not in strip} for item in data]
    elif isinstance(data, dict):
        body["data"] = {k: v for k, v in data.items() if k not in strip}
    if isinstance(body.get("pagination"), dict):
        body["pagination"] = {k: body["pagination"][k] for k in ("last_visible_page", "has_next_page")}
    return body


def corrupt_items(body: Any) -> Any:
    """Break the first three items: no mal_id, negative members, a score that is not a number."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return body
    data = [dict(item) for item in data]
    if len(data) > 0:
        data[0].pop("mal_id", None)
    if len(data) > 1:
        data[1]["members"] = -1
    if len(data) > 2:
        data[2]["score"] = "abc"
    return {**body, "data": data}


def with_duplicates(body: Any, previous: Any) -> Any:
    """Repeat the last 5 items of the previous page at the start of this one (Jikan's unstable sort)."""
    data = body.get("data") if isinstance(body, dict) else None
    previous_data = previous.get("data") if isinstance(previous, dict) else None
    if not isinstance(data, list) or not isinstance(previous_data, list):
        return body
    data = previous_data[-5:] + data
    body = {**body, "data": data}
    pagination = body.get("pagination")
    if isinstance(pagination, dict) and isinstance(pagination.get("items"), dict):
        body["pagination"] = {**pagination, "items": {**pagination["items"], "count": len(data)}}
    return body


# Server --------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request the fake received. status is None until its answer is decided."""

    path: str  # relative to /v4, e.g. "/top/anime" (the full path when outside /v4)
    params: dict[str, str]
    at: float  # time.monotonic() on arrival
    status: int | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeJikan

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout tests) closes its socket mid-answer: not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as the real Jikan (nginx) does
    timeout = 30  # idle keep-alive connections end on their own
    disable_nagle_algorithm = True  # headers and body go out in two writes; don't let the body wait

    def setup(self) -> None:
        super().setup()
        with self.server.fake._lock:
            self.server.fake._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.fake._lock:
            self.server.fake._connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        answer, delay = self.server.fake._answer(self.path)
        if delay and self.server.fake._stopping.wait(delay):
            return
        body = answer.encoded
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", answer.cache_control)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # The request log is FakeJikan.requests; stderr lines would only clutter test output.
        pass


class FakeJikan:
    """A real HTTP server on 127.0.0.1 that speaks Jikan v4 under /v4. Thread-safe.

    Use it as a context manager, or start() and stop(). ``day`` may be changed at any time; the
    catalogue answers as of that day. Paths given to serve(), inject() and request_count() are
    relative to /v4 ("/top/anime"); a leading "/v4" is accepted too. ``demo`` serves the demo's
    catalogue: dates moved into the day's calendar, and weekly surges (DEMO_*).
    """

    def __init__(
        self,
        *,
        day: date | None = None,
        catalogue_size: int | None = None,
        seed: int = 7,
        port: int = 0,
        demo: bool = False,
    ) -> None:
        self.day: date = day or datetime.now(UTC).date()
        self.catalogue_size = catalogue_size
        self.seed = seed
        self.demo = demo
        self.port = port
        self.requests: list[RecordedRequest] = []
        self._overrides: dict[str, list[str]] = {}
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v4"

    def start(self) -> FakeJikan:
        # Build the catalogue now so the first request is as fast as the others.
        day_numbers(self.seed, self.catalogue_size, self.day, self.demo)
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        self._server.fake = self
        self.port = self._server.server_address[1]
        # A short poll interval: stop() waits for the serving loop to notice, once per test.
        serve = functools.partial(self._server.serve_forever, poll_interval=0.02)
        self._thread = threading.Thread(target=serve, name="fake-jikan", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes handlers sleeping on injected latency
        self._server.shutdown()
        self._server.server_close()
        # Idle keep-alive connections would otherwise keep their handler threads (and this fake) alive.
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeJikan:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def serve(self, path: str, pages: list[str]) -> None:
        """Answer GET <path> page N with the recorded file pages[N-1] (see override_answer)."""
        if not pages:
            raise ValueError("serve() needs at least one page")
        for name in pages:
            data_file(name)  # fail here, not in the server thread, on a typo
        with self._lock:
            self._overrides[_relative(path)] = list(pages)

    def inject(self, fault: str, *, times: int = 1, path: str | None = None, **options: Any) -> None:
        """Queue a fault for the next ``times`` requests under ``path`` (None: any path).

        A request takes at most one fault, the oldest queued one that matches.
        """
        if fault not in FAULT_OPTIONS:
            raise ValueError(f"Unknown fault {fault!r}; expected one of {sorted(FAULT_OPTIONS)}")
        if unknown := set(options) - FAULT_OPTIONS[fault]:
            raise TypeError(f"Fault {fault!r} takes no option(s) {sorted(unknown)}")
        if fault == "latency" and "seconds" not in options:
            raise TypeError("The latency fault needs seconds=")
        with self._lock:
            self._faults.append(Fault(fault, times, None if path is None else _relative(path), options))

    def reset(self) -> None:
        with self._lock:
            self._overrides.clear()
            self._faults.clear()
            self.requests.clear()

    def request_count(self, path: str | None = None) -> int:
        """Requests received under ``path`` (segment-aware prefix, None: all)."""
        prefix = None if path is None else _relative(path)
        with self._lock:
            return sum(1 for request in self.requests if path_matches(request.path, prefix))

    # Called from handler threads -------------------------------------------------------------------

    def _answer(self, raw_path: str) -> tuple[Answer, float]:
        """Record the request and decide its answer: (answer, seconds to wait before sending)."""
        url = urlsplit(raw_path)
        path = _relative(url.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        request = RecordedRequest(path=path, params=params, at=time.monotonic())
        with self._lock:
            self.requests.append(request)
            fault = self._take_fault(path)
            pages = self._overrides.get(path)
        delay = 0.0
        if fault is not None and fault.kind == "latency":
            delay, fault = float(fault.options["seconds"]), None
        answer = self._normal_answer(url.path, path, params, pages)
        if fault is not None:
            answer = self._faulty(fault, answer, url.path, path, params, pages)
        request.status = answer.status
        return answer, delay

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self._faults:
            if path_matches(path, fault.path):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _normal_answer(self, full_path: str, path: str, params: dict[str, str], pages: list[str] | None) -> Answer:
        if not (full_path == "/v4" or full_path.startswith("/v4/")):
            return recorded_answer(NOT_FOUND_FILE)
        if pages is not None:
            paging = page_params({"page": params.get("page", "1")})
            return paging if isinstance(paging, Answer) else override_answer(pages, paging[0])
        return catalogue_answer(self.seed, self.catalogue_size, self.day, path, params, self.demo)

    def _faulty(
        self, fault: Fault, answer: Answer, full_path: str, path: str, params: dict[str, str], pages: list[str] | None
    ) -> Answer:
        kind = fault.kind
        if kind == "429":
            name = FAULT_FILES["429_upstream" if fault.options.get("upstream") else "429"]
            retry_after = fault.options.get("retry_after")
            headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
            return Answer(429, load_recorded(name), "private, must-revalidate", headers)
        if kind in ("500", "504", "404"):
            return Answer(int(kind), load_recorded(FAULT_FILES[kind]), "no-cache, private")
        if kind == "malformed":
            html = b"<html><head><title>Jikan</title></head><body>Service temporarily unavailable</body></html>"
            return Answer(200, html, answer.cache_control)
        if kind == "truncated":
            encoded = answer.encoded
            return Answer(200, encoded[: len(encoded) // 2], answer.cache_control)
        if kind == "no_data":
            body = answer.body if isinstance(answer.body, dict) else {}
            return Answer(200, {k: v for k, v in body.items() if k != "data"}, answer.cache_control)
        if kind == "drift":
            return Answer(answer.status, early_v4(answer.body), answer.cache_control)
        if kind == "bad_items":
            return Answer(answer.status, corrupt_items(answer.body), answer.cache_control)
        # duplicates: needs the previous page of the same query (nothing to repeat on page 1).
        page = params.get("page", "1")
        if not page.isdigit() or int(page) < 2:
            return answer
        previous = self._normal_answer(full_path, path, {**params, "page": str(int(page) - 1)}, pages)
        return Answer(answer.status, with_duplicates(answer.body, previous.body), answer.cache_control)


def _relative(path: str) -> str:
    """ "/v4/top/anime/" -> "/top/anime"; paths outside /v4 are kept whole."""
    path = path.rstrip("/") or "/"
    if path == "/v4":
        return "/"
    return path.removeprefix("/v4") if path.startswith("/v4/") else path


def iter_catalogue(seed: int, size: int | None, day: date, demo: bool = False) -> Iterator[dict[str, Any]]:
    """Every catalogue item as served on ``day`` (for tests and seeding a demo without HTTP)."""
    for index in range(len(catalogue(size))):
        yield drifted_item(seed, size, day, index, demo)
