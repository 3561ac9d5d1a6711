"""The selectors against a brute-force reference on random histories.

The reference below is written from the definitions in ARCHITECTURE.md ("Analytics (exact
definitions)") and the analytics spec, over plain Python rows, with none of the selectors' shortcuts
(no batching, no narrowed reads): every day of the feed is looked at. Trends compare each feed's own
feed rank, so the feeds drawn rank by MAL's rank, by popularity and by position. Hypothesis generates
histories with rank ties, null ranks and scores, missed days, titles leaving and re-entering, and days placed on
the window edges (D - 7, D - 14, D - 30, D - 60, D - 90 ...), then each example is written with
bulk_create inside a savepoint that is rolled back.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any
from unittest import mock

import pytest
from django.db import transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import selectors
from analytics.selectors import trends
from analytics.services import feed_moves_write
from snapshots.models import Anime, Genre, Snapshot, SnapshotDay

pytestmark = pytest.mark.django_db

END = dt.date(2024, 6, 30)
# The feed rank of each feed (ARCHITECTURE.md, "Feeds"): MAL's rank, popularity, or the position.
FEED_RANKS = {"top": "rank", "airing": "position", "popular": "popularity"}
FEEDS = tuple(FEED_RANKS)
# Offsets before END that sit on or next to a window edge for the as_of values drawn below.
EDGES = (0, 1, 2, 5, 6, 7, 8, 9, 13, 14, 15, 16, 29, 30, 31, 32, 59, 60, 61, 62, 89, 90, 91, 92, 97, 98)
AS_OF_BACK = (None, 0, 1, 2, 7)
GENRES = (
    (1, "Action", Genre.Kind.GENRE),
    (4, "Comedy", Genre.Kind.GENRE),
    (9, "Ecchi", Genre.Kind.EXPLICIT),
    (58, "Gore", Genre.Kind.THEME),
    (62, "Isekai", Genre.Kind.THEME),
    (27, "Shounen", Genre.Kind.DEMOGRAPHIC),
)
TYPES = ("TV", "Movie", "OVA")
SEASONS = ("winter", "spring", "summer", "fall")
KINDS = {"genres": ("genre", "explicit"), "themes": ("theme",), "demographics": ("demographic",)}
settings_ = settings(max_examples=100, deadline=None, database=None)


@dataclass(frozen=True)
class Title:
    mal_id: int
    type: str
    genres: frozenset[int]
    year: int | None
    season: str
    first_seen: dt.date
    score: Decimal | None
    members: int | None
    popularity: int | None
    favorites: int | None


@dataclass(frozen=True)
class Point:
    feed: str
    day: dt.date
    mal_id: int
    position: int
    rank: int | None
    popularity: int | None
    score: Decimal | None

    @property
    def feed_rank(self) -> int | None:
        return getattr(self, FEED_RANKS[self.feed])


@dataclass
class History:
    titles: dict[int, Title]
    points: list[Point]
    as_of: dt.date | None = None
    by_day: dict[tuple[str, dt.date], dict[int, Point]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for point in self.points:
            self.by_day.setdefault((point.feed, point.day), {})[point.mal_id] = point

    def days(self, feed: str) -> list[dt.date]:
        return sorted({day for f, day in self.by_day if f == feed})

    def on(self, feed: str, day: dt.date) -> dict[int, Point]:
        return self.by_day.get((feed, day), {})


# --- generated data -------------------------------------------------------------------------------

ranks = st.one_of(st.none(), st.integers(min_value=1, max_value=12))
# Mostly a few close scores, so equal changes, rises of exactly min_change and means ending in 5 are common.
close_scores = st.sampled_from(["7.50", "7.51", "8.00", "8.01"]).map(Decimal)
scores = st.one_of(
    st.none(),
    close_scores,
    close_scores,
    close_scores,
    st.integers(min_value=100, max_value=1000).map(lambda n: Decimal(n) / 100),
)


@st.composite
def titles(draw: st.DrawFn, mal_id: int) -> Title:
    return Title(
        mal_id=mal_id,
        type=draw(st.sampled_from(TYPES)),
        genres=frozenset(draw(st.sets(st.sampled_from([g[0] for g in GENRES]), max_size=4))),
        # Few years and seasons, so a season holds several titles and its means need rounding.
        year=draw(st.one_of(st.none(), st.just(2020), st.integers(min_value=2017, max_value=2025))),
        season=draw(st.sampled_from(("", "fall", "fall", *SEASONS))),
        first_seen=END - dt.timedelta(days=draw(st.integers(min_value=0, max_value=400))),
        score=draw(scores),
        members=draw(
            st.one_of(st.none(), st.integers(min_value=0, max_value=10), st.integers(min_value=0, max_value=10**6))
        ),
        popularity=draw(st.one_of(st.none(), st.integers(min_value=1, max_value=5000))),
        favorites=draw(st.one_of(st.none(), st.integers(min_value=0, max_value=10**5))),
    )


@st.composite
def histories(draw: st.DrawFn) -> History:
    ids = list(range(1, draw(st.integers(min_value=1, max_value=9)) + 1))
    catalogue = {mal_id: draw(titles(mal_id)) for mal_id in ids}
    points = []
    edge_or_any = st.one_of(st.sampled_from(EDGES), st.integers(min_value=0, max_value=130))
    for feed in FEEDS:
        offsets = draw(st.sets(edge_or_any, max_size=18))
        if draw(st.booleans()):
            offsets |= {0, 7}  # a latest day and its weekly baseline
        for offset in offsets:
            day = END - dt.timedelta(days=offset)
            # Mostly well filled days, so titles are often present on both compared days.
            present = draw(st.lists(st.sampled_from(ids), unique=True, min_size=len(ids) // 2))
            for position, mal_id in enumerate(present, start=1):
                points.append(Point(feed, day, mal_id, position, draw(ranks), draw(ranks), draw(scores)))
    back = draw(st.sampled_from(AS_OF_BACK))
    as_of = None if back is None else END - dt.timedelta(days=back)
    return History(titles=catalogue, points=points, as_of=as_of)


@contextmanager
def stored(history: History) -> Iterator[None]:
    """The history in the database for the duration of one example, then rolled back."""
    with transaction.atomic():
        Genre.objects.bulk_create([Genre(mal_id=i, name=n, kind=k) for i, n, k in GENRES])
        Anime.objects.bulk_create([_anime(title) for title in history.titles.values()])
        links = [Anime.genres.through(anime_id=t.mal_id, genre_id=g) for t in history.titles.values() for g in t.genres]
        Anime.genres.through.objects.bulk_create(links)
        Snapshot.objects.bulk_create(
            Snapshot(
                anime_id=p.mal_id,
                feed=p.feed,
                taken_on=p.day,
                position=p.position,
                rank=p.rank,
                popularity=p.popularity,
                score=p.score,
            )
            for p in history.points
        )
        # The ETL writes a feed's day list with its rows; the selectors read days from it.
        rows_per_day = Counter((p.feed, p.day) for p in history.points)
        SnapshotDay.objects.bulk_create(
            SnapshotDay(feed=feed, taken_on=day, rows=rows) for (feed, day), rows in rows_per_day.items()
        )
        yield
        transaction.set_rollback(True)


def _anime(title: Title) -> Anime:
    return Anime(
        mal_id=title.mal_id,
        title=f"Title {title.mal_id}",
        type=title.type,
        year=title.year,
        season=title.season,
        first_seen=title.first_seen,
        last_seen=END,
        score=title.score,
        members=title.members,
        popularity=title.popularity,
        favorites=title.favorites,
        image_url=f"https://cdn.example/{title.mal_id}.jpg",
    )


# --- the reference --------------------------------------------------------------------------------


def ref_day(h: History, feed: str) -> dt.date | None:
    days = [day for day in h.days(feed) if h.as_of is None or day <= h.as_of]
    return max(days) if days else None


def ref_envelope(h: History, feed: str, day: dt.date | None, **extra: Any) -> dict[str, Any]:
    return {
        "feed": feed,
        "rank_by": FEED_RANKS[feed],
        "as_of": h.as_of,
        "date": day,
        "baseline_date": extra.get("baseline"),
        "insufficient_history": extra.get("insufficient"),
        "results": extra.get("results", []),
    }


def ref_no_data(h: History, feed: str, needed: int) -> dict[str, Any]:
    short = {"needed_days": needed, "have_days": 0, "available_in_days": needed}
    return ref_envelope(h, feed, None, insufficient=short)


def ref_short(h: History, feed: str, day: dt.date, needed: int, wait: int, recent: Callable[[dt.date], bool]):
    have = (day - min(h.days(feed))).days + 1
    oldest = min(d for d in h.days(feed) if d <= day and recent(d))
    return {"needed_days": needed, "have_days": have, "available_in_days": max(1, (oldest - day).days + wait)}


def ref_baseline(h: History, feed: str, day: dt.date, window: int) -> dt.date | None:
    lo, hi = day - dt.timedelta(days=2 * window), day - dt.timedelta(days=window)
    candidates = [d for d in h.days(feed) if lo <= d <= hi]
    return max(candidates) if candidates else None


def ref_window(h: History, feed: str, window: int, rows: Callable[[dict, dict], list]) -> dict[str, Any]:
    day = ref_day(h, feed)
    if day is None:
        return ref_no_data(h, feed, window + 1)
    base = ref_baseline(h, feed, day, window)
    if base is None:
        low = day - dt.timedelta(days=2 * window)
        short = ref_short(h, feed, day, window + 1, window, lambda d: d >= low)
        return ref_envelope(h, feed, day, insufficient=short)
    return ref_envelope(h, feed, day, baseline=base, results=rows(h.on(feed, day), h.on(feed, base)))


def ref_rank_moves(h: History, feed: str, window: int, limit: int, climbing: bool) -> dict[str, Any]:
    def rows(now: dict[int, Point], before: dict[int, Point]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for mal_id, point in now.items():
            old = before.get(mal_id)
            if old is None or old.feed_rank is None or point.feed_rank is None:
                continue
            change = old.feed_rank - point.feed_rank
            if (climbing and change > 0) or (not climbing and change < 0):
                out.append(
                    {
                        "mal_id": mal_id,
                        "title": f"Title {mal_id}",
                        "rank": point.feed_rank,
                        "previous_rank": old.feed_rank,
                        "change": change,
                        "mal_rank": point.rank,
                        "score": point.score,
                        "image_url": f"https://cdn.example/{mal_id}.jpg",
                    }
                )
        if climbing:
            out.sort(key=lambda r: (-r["change"], r["rank"], r["mal_id"]))
        else:
            out.sort(key=lambda r: (r["change"], r["rank"], r["mal_id"]))
        return out[:limit]

    return ref_window(h, feed, window, rows)


def ref_momentum(h: History, feed: str, window: int, limit: int, min_change: Decimal) -> dict[str, Any]:
    def rows(now: dict[int, Point], before: dict[int, Point]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for mal_id, point in now.items():
            old = before.get(mal_id)
            if old is None or old.score is None or point.score is None:
                continue
            if point.score - old.score >= min_change:
                out.append(
                    {
                        "mal_id": mal_id,
                        "title": f"Title {mal_id}",
                        "score": point.score,
                        "previous_score": old.score,
                        "change": point.score - old.score,
                        "rank": point.feed_rank,
                        "mal_rank": point.rank,
                    }
                )
        big = 10**9
        out.sort(key=lambda r: (-r["change"], big if r["rank"] is None else r["rank"], r["mal_id"]))
        return out[:limit]

    return ref_window(h, feed, window, rows)


def ref_new_entries(h: History, feed: str, top: int, limit: int) -> dict[str, Any]:
    day = ref_day(h, feed)
    if day is None:
        return ref_no_data(h, feed, 8)
    days = [d for d in h.days(feed) if d <= day]
    recent_days = [d for d in days if day - dt.timedelta(days=7) < d]
    old_days = [d for d in days if day - dt.timedelta(days=90) <= d <= day - dt.timedelta(days=7)]
    if not old_days:
        short = ref_short(h, feed, day, 8, 7, lambda d: d > day - dt.timedelta(days=7))
        return ref_envelope(h, feed, day, insufficient=short)

    def in_top(mal_id: int, d: dt.date) -> bool:
        point = h.on(feed, d).get(mal_id)
        return point is not None and point.feed_rank is not None and point.feed_rank <= top

    out: list[dict[str, Any]] = []
    for mal_id in h.titles:
        entered = [d for d in recent_days if in_top(mal_id, d)]
        if not entered or any(in_top(mal_id, d) for d in old_days):
            continue
        now = h.on(feed, day).get(mal_id)
        best = min(rank for d in entered if (rank := h.on(feed, d)[mal_id].feed_rank) is not None)
        out.append(
            {
                "mal_id": mal_id,
                "title": f"Title {mal_id}",
                "rank": now.feed_rank if now else None,
                "mal_rank": now.rank if now else None,
                "entered_on": min(entered),
                "best_rank": best,
            }
        )
    big = 10**9
    out.sort(key=lambda r: (-r["entered_on"].toordinal(), r["rank"] or big, r["mal_id"]))
    return ref_envelope(h, feed, day, results=out[:limit])


def ref_streaks(h: History, feed: str, top: int, limit: int) -> dict[str, Any]:
    day = ref_day(h, feed)
    if day is None:
        return ref_no_data(h, feed, 1)
    days_back = sorted((d for d in h.days(feed) if d <= day), reverse=True)
    out: list[dict[str, Any]] = []
    for mal_id, point in h.on(feed, day).items():
        if point.feed_rank is None or point.feed_rank > top:
            continue
        count, since = 0, day
        for d in days_back:
            held = h.on(feed, d).get(mal_id)
            if held is None or held.feed_rank is None or held.feed_rank > top:
                break
            count, since = count + 1, d
        out.append(
            {
                "mal_id": mal_id,
                "title": f"Title {mal_id}",
                "rank": point.feed_rank,
                "mal_rank": point.rank,
                "days": count,
                "since": since,
            }
        )
    out.sort(key=lambda r: (-r["days"], r["rank"], r["mal_id"]))
    return ref_envelope(h, feed, day, results=out[:limit])


def ref_top_rated(h: History, feed: str, limit: int, min_score: Decimal | None, genre: str | None, kind: str | None):
    day = ref_day(h, feed)
    if day is None:
        return ref_no_data(h, feed, 1)
    out: list[dict[str, Any]] = []
    for mal_id, point in h.on(feed, day).items():
        title = h.titles[mal_id]
        if min_score is not None and (point.score is None or point.score < min_score):
            continue
        if genre is not None and not any(_genre_matches(g, genre) for g in title.genres):
            continue
        if kind is not None and title.type.lower() != kind.lower():
            continue
        out.append(
            {
                "mal_id": mal_id,
                "title": f"Title {mal_id}",
                "type": title.type,
                "rank": point.rank,
                "position": point.position,
                "score": point.score,
                "members": None,
                "popularity": point.popularity,
                "image_url": f"https://cdn.example/{mal_id}.jpg",
            }
        )
    out.sort(key=lambda r: (r["score"] is None, -(r["score"] or 0), r["position"], r["mal_id"]))
    return ref_envelope(h, feed, day, results=out[:limit])


def _genre_matches(genre_id: int, wanted: str) -> bool:
    name = next(n for i, n, _ in GENRES if i == genre_id)
    return str(genre_id) == wanted if wanted.isdigit() else name.lower() == wanted.lower()


def half_up(value: Fraction, places: int) -> float:
    scale = 10**places
    return float(Fraction(math.floor(value * scale + Fraction(1, 2)), scale))


def ref_genres(h: History, feed: str, kind: str) -> dict[str, Any]:
    day = ref_day(h, feed)
    if day is None:
        return ref_no_data(h, feed, 1)
    present = [h.titles[mal_id] for mal_id in h.on(feed, day)]
    wanted = [g for g in GENRES if g[2] in KINDS[kind]]
    counts = {g: sum(1 for t in present if g[0] in t.genres) for g in wanted}
    mentions = sum(counts.values())
    out: list[dict[str, Any]] = [
        {
            "mal_id": g[0],
            "name": g[1],
            "kind": g[2],
            "count": n,
            "coverage": half_up(Fraction(n * 100, len(present)), 2),
            "frequency": half_up(Fraction(n * 100, mentions), 2),
        }
        for g, n in counts.items()
        if n
    ]
    out.sort(key=lambda r: (-r["count"], r["name"]))
    return ref_envelope(h, feed, day, results=out)


def ref_seasons(h: History, from_year: int, to_year: int, as_of: dt.date | None, min_volume: int) -> dict[str, Any]:
    groups: dict[tuple[int, str], list[Title]] = {}
    for t in h.titles.values():
        if t.year is None or not t.season or not from_year <= t.year <= to_year:
            continue
        if as_of is not None and t.first_seen > as_of:
            continue
        groups.setdefault((t.year, t.season), []).append(t)

    def mean(values: list[Any], places: int) -> float | None:
        known = [Fraction(v) for v in values if v is not None]
        return half_up(sum(known, Fraction(0)) / len(known), places) if known else None

    out: list[dict[str, Any]] = [
        {
            "year": year,
            "season": season,
            "volume": len(ts),
            "mean_score": mean([t.score for t in ts], 2),
            "mean_members": mean([t.members for t in ts], 1),
            "mean_popularity": mean([t.popularity for t in ts], 1),
            "total_favorites": sum(t.favorites or 0 for t in ts),
        }
        for (year, season), ts in groups.items()
        if len(ts) >= min_volume
    ]
    out.sort(key=lambda r: (r["year"], SEASONS.index(r["season"])))
    hidden = sum(1 for ts in groups.values() if len(ts) < min_volume)
    return {
        "from_year": from_year,
        "to_year": to_year,
        "min_volume": min_volume,
        "hidden_small_seasons": hidden,
        "results": out,
    }


# --- the comparisons ------------------------------------------------------------------------------

limits = st.sampled_from([1, 2, 3, 100])


@settings_
@given(history=histories(), limit=limits)
def test_window_metrics_match_the_reference(history, limit):
    with stored(history):
        for feed in FEEDS:
            for window in (7, 30):
                h, kw = history, {"feed": feed, "window": window, "as_of": history.as_of, "limit": limit}
                assert selectors.rank_climbers(**kw) == ref_rank_moves(h, feed, window, limit, climbing=True)
                assert selectors.rank_fallers(**kw) == ref_rank_moves(h, feed, window, limit, climbing=False)
                for change in map(Decimal, ("0.01", "0.50", "0", "-1.00")):
                    expected = ref_momentum(h, feed, window, limit, change)
                    assert selectors.score_momentum(**kw, min_change=change) == expected


@settings_
@given(history=histories(), limit=limits)
def test_window_metrics_read_from_the_kept_moves_match_the_reference(history, limit):
    """As the ETL leaves them: each day's moves kept at its commit, and read instead of comparing the days."""
    with stored(history), mock.patch.object(trends, "moves_compute", wraps=trends.moves_compute) as computed:
        for feed in FEEDS:
            if (day := selectors.resolve_day(feed=feed, as_of=history.as_of)) is not None:
                feed_moves_write(feed=feed, day=day)
            computed.reset_mock()
            for window in (7, 30):
                h, kw = history, {"feed": feed, "window": window, "as_of": history.as_of, "limit": limit}
                assert selectors.rank_climbers(**kw) == ref_rank_moves(h, feed, window, limit, climbing=True)
                assert selectors.rank_fallers(**kw) == ref_rank_moves(h, feed, window, limit, climbing=False)
                for change in map(Decimal, ("0.01", "0.50")):
                    assert selectors.score_momentum(**kw, min_change=change) == ref_momentum(
                        h, feed, window, limit, change
                    )
            # Only a lower bar than the kept gains' has the days compared again.
            assert not computed.called
            for window in (7, 30):
                kw = {"feed": feed, "window": window, "as_of": history.as_of, "limit": limit}
                assert selectors.score_momentum(**kw, min_change=Decimal(0)) == ref_momentum(
                    history, feed, window, limit, Decimal(0)
                )


@settings_
@given(history=histories(), limit=limits, top=st.integers(min_value=1, max_value=12))
def test_new_entries_and_streaks_match_the_reference(history, limit, top):
    with stored(history):
        for feed in FEEDS:
            kw = {"feed": feed, "as_of": history.as_of, "top": top, "limit": limit}
            assert selectors.new_entries(**kw) == ref_new_entries(history, feed, top, limit)
            assert selectors.top_streaks(**kw) == ref_streaks(history, feed, top, limit)


@settings_
@given(
    history=histories(),
    limit=limits,
    min_score=st.sampled_from([None, Decimal("5.00"), Decimal("7.55")]),
    genre=st.sampled_from([None, "action", "GORE", "27", "9", "404"]),
    kind=st.sampled_from([None, "tv", "Movie", "ova", "Music"]),
)
def test_day_tables_match_the_reference(history, limit, min_score, genre, kind):
    with stored(history):
        for feed in FEEDS:
            got = selectors.top_rated(
                feed=feed, as_of=history.as_of, limit=limit, min_score=min_score, genre=genre, type=kind
            )
            expected = ref_top_rated(history, feed, limit, min_score, genre, kind)
            # Snapshots written here carry no members: null in, null out.
            assert got == expected
            for genre_kind in KINDS:
                got = selectors.genre_distribution(feed=feed, as_of=history.as_of, kind=genre_kind)
                assert got == ref_genres(history, feed, genre_kind)


@settings(max_examples=100, deadline=None, database=None)
@given(
    history=histories(),
    years=st.tuples(st.integers(min_value=2016, max_value=2026), st.integers(min_value=2016, max_value=2026)),
    as_of=st.sampled_from([None, END, END - dt.timedelta(days=200)]),
    min_volume=st.integers(min_value=1, max_value=3),
)
def test_seasonal_trends_match_the_reference(history, years, as_of, min_volume):
    with stored(history):
        got = selectors.seasonal_trends(from_year=years[0], to_year=years[1], as_of=as_of, min_volume=min_volume)
        assert got == ref_seasons(history, years[0], years[1], as_of, min_volume)
        # The default span: the five years ending in as_of's year, and the default minimum volume (3).
        assert selectors.seasonal_trends(as_of=END) == ref_seasons(history, 2020, 2024, END, 3)
