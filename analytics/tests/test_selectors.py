"""Hand-built histories for every analytics selector, with the awkward days users run into."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics import selectors
from snapshots.feeds import FEEDS
from snapshots.models import Genre
from snapshots.tests.factories import AnimeFactory, EtlRunFactory, GenreFactory, SnapshotFactory, StudioFactory

pytestmark = pytest.mark.django_db

D = dt.date(2024, 5, 1)
ENVELOPE_KEYS = {"feed", "rank_by", "as_of", "date", "baseline_date", "insufficient_history", "results"}


def ago(days: int) -> dt.date:
    return D - dt.timedelta(days=days)


def put(anime, taken_on: dt.date, rank: int | None, score: str | None = "8.00", feed: str = "top", **extra):
    """One snapshot row without an ETL run (the selectors never need one)."""
    return SnapshotFactory(
        anime=anime,
        feed=feed,
        taken_on=taken_on,
        rank=rank,
        position=extra.pop("position", rank or 99),
        score=None if score is None else Decimal(score),
        run=None,
        **extra,
    )


def ids(envelope) -> list[int]:
    return [row["mal_id"] for row in envelope["results"]]


# --- D and the envelope ---------------------------------------------------------------------------


def test_resolve_day_is_the_newest_day_of_the_feed_on_or_before_as_of():
    anime = AnimeFactory()
    for days_ago in (10, 3):
        put(anime, ago(days_ago), 1)
    put(anime, D, 1, feed="airing")
    assert selectors.resolve_day(feed="top", as_of=None) == ago(3)
    assert selectors.resolve_day(feed="top", as_of=ago(4)) == ago(10)
    assert selectors.resolve_day(feed="top", as_of=ago(11)) is None
    assert selectors.resolve_day(feed="movies", as_of=None) is None


@pytest.mark.parametrize(
    ("call", "needed"),
    [
        (lambda: selectors.top_rated(feed="top", as_of=None), 1),
        (lambda: selectors.genre_distribution(feed="top", as_of=None), 1),
        (lambda: selectors.rank_climbers(feed="top", window=7, as_of=None), 8),
        (lambda: selectors.rank_fallers(feed="top", window=30, as_of=None), 31),
        (lambda: selectors.score_momentum(feed="top", window=30, as_of=None), 31),
        (lambda: selectors.new_entries(feed="top", as_of=None), 8),
        (lambda: selectors.top_streaks(feed="top", as_of=None), 1),
    ],
)
def test_every_list_answers_with_the_envelope_when_the_feed_has_no_data(call, needed):
    put(AnimeFactory(), D, 1, feed="airing")
    result = call()
    assert set(result) == ENVELOPE_KEYS
    assert result == {
        "feed": "top",
        "rank_by": "rank",
        "as_of": None,
        "date": None,
        "baseline_date": None,
        "insufficient_history": {"needed_days": needed, "have_days": 0, "available_in_days": needed},
        "results": [],
    }


def test_no_data_before_as_of_counts_as_no_data():
    put(AnimeFactory(), D, 1)
    result = selectors.rank_climbers(feed="top", window=7, as_of=ago(1))
    assert result["date"] is None
    assert result["as_of"] == ago(1)
    assert result["insufficient_history"] == {"needed_days": 8, "have_days": 0, "available_in_days": 8}


def test_window_must_be_7_or_30():
    with pytest.raises(ValueError, match="window"):
        selectors.rank_climbers(feed="top", window=14, as_of=None)


# --- top rated ------------------------------------------------------------------------------------


def test_top_rated_orders_by_score_with_unscored_titles_last_then_by_position():
    a, b, c, d = AnimeFactory.create_batch(4)
    put(a, D, 4, "8.50", position=4)
    put(b, D, 1, None, position=1)
    put(c, D, 3, "9.10", position=3)
    put(d, D, 2, "8.50", position=2)
    result = selectors.top_rated(feed="top", as_of=None)
    assert ids(result) == [c.mal_id, d.mal_id, a.mal_id, b.mal_id]
    assert result["date"] == D
    assert result["insufficient_history"] is None
    assert list(result["results"][0]) == [
        "mal_id",
        "title",
        "type",
        "rank",
        "position",
        "score",
        "members",
        "popularity",
        "image_url",
    ]
    assert selectors.top_rated(feed="top", as_of=None, limit=2)["results"][1]["mal_id"] == d.mal_id


def test_top_rated_reads_the_snapshot_of_the_day_not_the_latest_facts():
    anime = AnimeFactory(score=Decimal("9.99"), members=1)
    put(anime, ago(5), 7, "7.77", members=555, popularity=42)
    put(anime, D, 1, "8.88")
    row = selectors.top_rated(feed="top", as_of=ago(1))["results"][0]
    assert row["score"] == Decimal("7.77")
    assert (row["rank"], row["members"], row["popularity"]) == (7, 555, 42)


def test_top_rated_filters_by_min_score_genre_and_type():
    action = GenreFactory(mal_id=1, name="Action")
    also_action = GenreFactory(mal_id=2000, name="action", kind=Genre.Kind.THEME)
    movie = AnimeFactory(type="Movie", genres=[action, also_action])
    tv = AnimeFactory(type="TV", genres=[action])
    other = AnimeFactory(type="TV")
    put(movie, D, 1, "9.00")
    put(tv, D, 2, "7.00")
    put(other, D, 3, None)
    assert ids(selectors.top_rated(feed="top", as_of=None, min_score=Decimal("7.00"))) == [movie.mal_id, tv.mal_id]
    assert ids(selectors.top_rated(feed="top", as_of=None, min_score=Decimal("7.01"))) == [movie.mal_id]
    # A name matching two genres still lists each title once.
    assert ids(selectors.top_rated(feed="top", as_of=None, genre="ACTION")) == [movie.mal_id, tv.mal_id]
    assert ids(selectors.top_rated(feed="top", as_of=None, genre="2000")) == [movie.mal_id]
    assert ids(selectors.top_rated(feed="top", as_of=None, type="movie")) == [movie.mal_id]
    assert ids(selectors.top_rated(feed="top", as_of=None, type="tv", genre="action")) == [tv.mal_id]


# --- genre distribution ---------------------------------------------------------------------------


def test_genre_distribution_counts_coverage_and_frequency_of_the_day():
    action = GenreFactory(name="Action")
    drama = GenreFactory(name="Drama")
    ecchi = GenreFactory(name="Ecchi", kind=Genre.Kind.EXPLICIT)
    gore = GenreFactory(name="Gore", kind=Genre.Kind.THEME)
    first = AnimeFactory(genres=[action, drama, gore])
    second = AnimeFactory(genres=[action, ecchi])
    third = AnimeFactory(genres=[gore])
    for rank, anime in enumerate([first, second, third], start=1):
        put(anime, D, rank)
    put(AnimeFactory(genres=[drama]), ago(1), 1)  # another day: not counted

    result = selectors.genre_distribution(feed="top", as_of=None)
    # 3 titles; genre mentions (genre + explicit): action 2, drama 1, ecchi 1 = 4.
    assert result["results"] == [
        {"mal_id": action.mal_id, "name": "Action", "kind": "genre", "count": 2, "coverage": 66.67, "frequency": 50.0},
        {"mal_id": drama.mal_id, "name": "Drama", "kind": "genre", "count": 1, "coverage": 33.33, "frequency": 25.0},
        {"mal_id": ecchi.mal_id, "name": "Ecchi", "kind": "explicit", "count": 1, "coverage": 33.33, "frequency": 25.0},
    ]
    themes = selectors.genre_distribution(feed="top", as_of=None, kind="themes")["results"]
    assert themes == [
        {"mal_id": gore.mal_id, "name": "Gore", "kind": "theme", "count": 2, "coverage": 66.67, "frequency": 100.0}
    ]
    assert selectors.genre_distribution(feed="top", as_of=None, kind="demographics")["results"] == []


def test_genre_distribution_rounds_half_up():
    common, rare = GenreFactory.create_batch(2)
    for rank in range(1, 33):
        put(AnimeFactory(genres=[common, rare] if rank == 1 else [common]), D, rank)
    rows = selectors.genre_distribution(feed="top", as_of=None)["results"]
    assert [(row["mal_id"], row["coverage"], row["frequency"]) for row in rows] == [
        (common.mal_id, 100.0, 96.97),  # 32 of 33 mentions = 96.9696...
        (rare.mal_id, 3.13, 3.03),  # 1 of 32 titles = 3.125 exactly: half up, not to even
    ]


def test_genre_distribution_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        selectors.genre_distribution(feed="top", as_of=None, kind="studios")


# --- seasonal trends ------------------------------------------------------------------------------


def test_seasonal_trends_groups_by_year_and_season_in_calendar_order():
    AnimeFactory(year=2023, season="fall", score=Decimal("8.00"), members=10, popularity=3, favorites=5)
    AnimeFactory(year=2023, season="fall", score=Decimal("7.25"), members=11, popularity=4, favorites=None)
    AnimeFactory(year=2023, season="fall", score=None, members=None, popularity=None, favorites=1)
    AnimeFactory(year=2023, season="winter", score=None, members=None, popularity=None, favorites=None)
    AnimeFactory(year=2023, season="", score=Decimal("1.00"))  # no season: not counted
    AnimeFactory(year=None, season="fall")
    AnimeFactory(year=2018, season="fall")  # outside the default five years

    result = selectors.seasonal_trends(as_of=dt.date(2024, 3, 1), min_volume=1)
    assert (result["from_year"], result["to_year"]) == (2020, 2024)
    assert result["results"] == [
        {
            "year": 2023,
            "season": "winter",
            "volume": 1,
            "mean_score": None,
            "mean_members": None,
            "mean_popularity": None,
            "total_favorites": 0,
        },
        {
            "year": 2023,
            "season": "fall",
            "volume": 3,
            # 7.625 rounds half up, 10.5 and 3.5 stay.
            "mean_score": 7.63,
            "mean_members": 10.5,
            "mean_popularity": 3.5,
            "total_favorites": 6,
        },
    ]


def test_seasonal_trends_takes_an_explicit_range_and_replays_a_past_day():
    AnimeFactory(year=2015, season="spring", first_seen=dt.date(2024, 1, 1))
    AnimeFactory(year=2016, season="spring", first_seen=dt.date(2024, 6, 1))
    full = selectors.seasonal_trends(from_year=2015, to_year=2016, min_volume=1)
    assert [(row["year"], row["volume"]) for row in full["results"]] == [(2015, 1), (2016, 1)]
    past = selectors.seasonal_trends(from_year=2015, to_year=2016, as_of=dt.date(2024, 2, 1), min_volume=1)
    assert [(row["year"], row["volume"]) for row in past["results"]] == [(2015, 1)]
    assert selectors.seasonal_trends(to_year=2016)["from_year"] == 2012


def test_seasonal_trends_hide_seasons_below_the_minimum_volume_and_say_how_many(settings):
    assert settings.SEASON_MIN_VOLUME == 3  # the default
    for score in ("7.00", "7.20", "7.40"):
        AnimeFactory(year=2023, season="spring", score=Decimal(score))
    AnimeFactory(year=2023, season="summer", score=Decimal("9.90"))  # one title: no season to crown
    AnimeFactory.create_batch(2, year=2023, season="fall", score=Decimal("9.00"))

    result = selectors.seasonal_trends(from_year=2023, to_year=2023)
    assert [(row["season"], row["volume"]) for row in result["results"]] == [("spring", 3)]
    assert (result["min_volume"], result["hidden_small_seasons"]) == (3, 2)
    settings.SEASON_MIN_VOLUME = 2
    assert [row["season"] for row in selectors.seasonal_trends(from_year=2023, to_year=2023)["results"]] == [
        "spring",
        "fall",
    ]
    everything = selectors.seasonal_trends(from_year=2023, to_year=2023, min_volume=1)
    assert [row["season"] for row in everything["results"]] == ["spring", "summer", "fall"]
    assert (everything["min_volume"], everything["hidden_small_seasons"]) == (1, 0)


# --- climbers and fallers -------------------------------------------------------------------------


def test_climbers_compare_with_the_newest_day_in_the_window_and_order_by_change():
    up6, up6_better, up2, down, same = AnimeFactory.create_batch(5)
    for anime, before, now in [(up6, 10, 4), (up6_better, 9, 3), (up2, 7, 5), (down, 1, 8), (same, 2, 2)]:
        put(anime, ago(7), before)
        put(anime, D, now)
    # Older days in the window must lose to D - 7; a day after D - 7 is too recent to be B.
    put(up2, ago(14), 100)
    put(up2, ago(6), 100)

    result = selectors.rank_climbers(feed="top", window=7, as_of=None)
    assert result["baseline_date"] == ago(7)
    assert ids(result) == [up6_better.mal_id, up6.mal_id, up2.mal_id]
    assert result["results"][0] == {
        "mal_id": up6_better.mal_id,
        "title": up6_better.title,
        "rank": 3,
        "previous_rank": 9,
        "change": 6,
        "mal_rank": 3,
        "score": Decimal("8.00"),
        "image_url": up6_better.image_url,
    }
    fallers = selectors.rank_fallers(feed="top", window=7, as_of=None)
    assert [(row["mal_id"], row["change"]) for row in fallers["results"]] == [(down.mal_id, -7)]


def test_climbers_break_equal_changes_by_current_rank_then_mal_id():
    first, second, third = AnimeFactory.create_batch(3)
    # Rank ties: second and third share rank 5 today (and 8 before).
    put(first, ago(7), 5)
    put(first, D, 2)
    put(third, ago(7), 8)
    put(third, D, 5)
    put(second, ago(7), 8)
    put(second, D, 5)
    result = selectors.rank_climbers(feed="top", window=7, as_of=None)
    assert ids(result) == [first.mal_id, second.mal_id, third.mal_id]
    assert ids(selectors.rank_climbers(feed="top", window=7, as_of=None, limit=1)) == [first.mal_id]


def test_fallers_put_the_biggest_fall_first():
    small, big = AnimeFactory.create_batch(2)
    put(small, ago(7), 1)
    put(small, D, 3)
    put(big, ago(7), 2)
    put(big, D, 20)
    assert ids(selectors.rank_fallers(feed="top", window=7, as_of=None)) == [big.mal_id, small.mal_id]


def test_climbers_skip_null_ranks_and_titles_missing_on_either_day():
    unranked_now, unranked_before, new, left = AnimeFactory.create_batch(4)
    put(unranked_now, ago(7), 10)
    put(unranked_now, D, None)
    put(unranked_before, ago(7), None)
    put(unranked_before, D, 1)
    put(new, D, 2)
    put(left, ago(7), 3)
    for selector in (selectors.rank_climbers, selectors.rank_fallers):
        result = selector(feed="top", window=7, as_of=None)
        assert result["results"] == []
        assert result["insufficient_history"] is None


def test_climbers_use_an_older_day_when_days_were_missed():
    anime = AnimeFactory()
    put(anime, ago(13), 9)  # D - 7 .. D - 12 were missed
    put(anime, ago(3), 1)
    put(anime, D, 4)
    result = selectors.rank_climbers(feed="top", window=7, as_of=None)
    assert result["baseline_date"] == ago(13)
    assert result["results"][0]["change"] == 5


def test_climbers_window_edges_are_inclusive():
    anime = AnimeFactory()
    put(anime, ago(60), 40)
    put(anime, D, 10)
    assert selectors.rank_climbers(feed="top", window=30, as_of=None)["baseline_date"] == ago(60)
    assert selectors.rank_climbers(feed="top", window=7, as_of=None)["insufficient_history"] is not None


def test_climbers_replay_a_past_day_with_as_of():
    anime = AnimeFactory()
    put(anime, ago(20), 9)
    put(anime, ago(12), 6)
    put(anime, D, 1)
    result = selectors.rank_climbers(feed="top", window=7, as_of=ago(11))
    assert (result["as_of"], result["date"], result["baseline_date"]) == (ago(11), ago(12), ago(20))
    assert result["results"][0]["change"] == 3


def test_climbers_say_when_the_history_is_too_short():
    anime = AnimeFactory()
    for days_ago in range(6):  # D - 5 .. D: six days
        put(anime, ago(days_ago), 1)
    result = selectors.rank_climbers(feed="top", window=7, as_of=None)
    assert result["date"] == D
    assert result["baseline_date"] is None
    assert result["results"] == []
    # B appears when D - 5 is seven days old: in two days.
    assert result["insufficient_history"] == {"needed_days": 8, "have_days": 6, "available_in_days": 2}


def test_insufficient_history_counts_days_since_the_first_snapshot_even_across_a_gap():
    anime = AnimeFactory()
    put(anime, ago(70), 1)  # before D - 2·window: too old to ever be B
    put(anime, ago(3), 1)
    put(anime, D, 1)
    result = selectors.score_momentum(feed="top", window=7, as_of=None)
    assert result["insufficient_history"] == {"needed_days": 8, "have_days": 71, "available_in_days": 4}
    monthly = selectors.rank_climbers(feed="top", window=30, as_of=None)
    assert monthly["insufficient_history"] == {"needed_days": 31, "have_days": 71, "available_in_days": 27}


def test_insufficient_history_waits_at_least_a_day():
    put(AnimeFactory(), D, 1)
    result = selectors.rank_climbers(feed="top", window=30, as_of=None)
    assert result["insufficient_history"] == {"needed_days": 31, "have_days": 1, "available_in_days": 30}


# --- score momentum -------------------------------------------------------------------------------


def test_score_momentum_keeps_rises_of_at_least_min_change():
    big, small, tiny, flat, drop, unscored = AnimeFactory.create_batch(6)
    for anime, before, now in [
        (big, "7.00", "7.50"),
        (small, "8.00", "8.10"),
        (tiny, "8.00", "8.01"),
        (flat, "8.00", "8.00"),
        (drop, "8.00", "7.00"),
        (unscored, None, "9.00"),
    ]:
        put(anime, ago(30), 1, before)
        put(anime, D, 1, now)
    result = selectors.score_momentum(feed="top", window=30, as_of=None)
    assert ids(result) == [big.mal_id, small.mal_id, tiny.mal_id]
    assert result["results"][0] == {
        "mal_id": big.mal_id,
        "title": big.title,
        "score": Decimal("7.50"),
        "previous_score": Decimal("7.00"),
        "change": Decimal("0.50"),
        "rank": 1,
        "mal_rank": 1,
    }
    strict = selectors.score_momentum(feed="top", window=30, as_of=None, min_change=Decimal("0.10"))
    assert ids(strict) == [big.mal_id, small.mal_id]


def test_score_momentum_breaks_ties_by_rank_with_unranked_last():
    unranked, ranked_low, ranked_high = AnimeFactory.create_batch(3)
    for anime, rank in [(unranked, None), (ranked_low, 9), (ranked_high, 2)]:
        put(anime, ago(7), rank, "8.00")
        put(anime, D, rank, "8.20")
    result = selectors.score_momentum(feed="top", window=7, as_of=None)
    assert ids(result) == [ranked_high.mal_id, ranked_low.mal_id, unranked.mal_id]


# --- new entries ----------------------------------------------------------------------------------


def test_new_entries_are_titles_entering_the_top_this_week_and_not_in_the_90_days_before():
    new, old_timer, outsider_before, came_back, too_old = AnimeFactory.create_batch(5)
    put(new, ago(30), 70)  # in the feed, outside the top 50: still new
    put(new, ago(5), 40)
    put(new, ago(2), 12)
    put(new, D, 30)
    put(old_timer, ago(7), 50)  # D - 7 belongs to the 90 days before
    put(old_timer, D, 1)
    put(outsider_before, ago(30), None)  # no rank is not "in the top"
    put(outsider_before, D, 2)
    put(came_back, ago(90), 3)  # D - 90 is inside the look-back
    put(came_back, D, 4)
    put(too_old, ago(91), 3)  # ... D - 91 is not
    put(too_old, ago(6), 5)

    result = selectors.new_entries(feed="top", as_of=None)
    assert result["insufficient_history"] is None
    assert result["results"] == [
        {
            "mal_id": outsider_before.mal_id,
            "title": outsider_before.title,
            "rank": 2,
            "mal_rank": 2,
            "entered_on": D,
            "best_rank": 2,
        },
        {"mal_id": new.mal_id, "title": new.title, "rank": 30, "mal_rank": 30, "entered_on": ago(5), "best_rank": 12},
        {
            "mal_id": too_old.mal_id,
            "title": too_old.title,
            "rank": None,
            "mal_rank": None,
            "entered_on": ago(6),
            "best_rank": 5,
        },
    ]
    # In the top 10, the old timer (rank 50 on D - 7) is new too.
    top_10 = [old_timer.mal_id, outsider_before.mal_id, too_old.mal_id]
    assert ids(selectors.new_entries(feed="top", as_of=None, top=10)) == top_10


def test_new_entries_keep_titles_that_left_again_with_their_rank_at_d():
    left_top, left_feed, stays = AnimeFactory.create_batch(3)
    put(stays, ago(20), 60)
    put(left_top, ago(3), 5)
    put(left_top, D, 77)
    put(left_feed, ago(3), 6)
    put(stays, ago(3), 7)
    put(stays, D, 9)
    result = selectors.new_entries(feed="top", as_of=None)
    # Same entry day: by rank at D, unknown rank last.
    assert [(row["mal_id"], row["rank"]) for row in result["results"]] == [
        (stays.mal_id, 9),
        (left_top.mal_id, 77),
        (left_feed.mal_id, None),
    ]


def test_new_entries_need_a_day_in_the_90_days_before_the_week():
    anime = AnimeFactory()
    put(anime, ago(100), 1)  # too old to compare with
    put(anime, ago(4), 1)
    put(anime, D, 1)
    result = selectors.new_entries(feed="top", as_of=None)
    assert result["results"] == []
    assert result["insufficient_history"] == {"needed_days": 8, "have_days": 101, "available_in_days": 3}


# --- streaks --------------------------------------------------------------------------------------


def test_streaks_count_consecutive_feed_days_in_the_top_ending_at_d():
    steady, broken, unranked_gap, outside = AnimeFactory.create_batch(4)
    feed_days = [ago(n) for n in (0, 1, 3, 4, 9)]  # D - 2, D - 5 ... were missed: they break nothing
    for taken_on in feed_days:
        put(steady, taken_on, 1)
    put(broken, ago(0), 2)
    put(broken, ago(1), 3)
    put(broken, ago(3), 11)  # outside the top 10 that day
    put(broken, ago(4), 3)
    put(unranked_gap, ago(0), 2)
    put(unranked_gap, ago(1), None)
    put(unranked_gap, ago(3), 4)
    put(outside, ago(0), 11)

    result = selectors.top_streaks(feed="top", as_of=None)
    assert result["results"] == [
        {"mal_id": steady.mal_id, "title": steady.title, "rank": 1, "mal_rank": 1, "days": 5, "since": ago(9)},
        {"mal_id": broken.mal_id, "title": broken.title, "rank": 2, "mal_rank": 2, "days": 2, "since": ago(1)},
        {"mal_id": unranked_gap.mal_id, "title": unranked_gap.title, "rank": 2, "mal_rank": 2, "days": 1, "since": D},
    ]
    assert ids(selectors.top_streaks(feed="top", as_of=None, top=1)) == [steady.mal_id]


def test_streaks_are_broken_by_a_feed_day_without_the_title():
    anime, filler = AnimeFactory.create_batch(2)
    put(anime, ago(2), 1)
    put(filler, ago(1), 1)  # the feed has data this day, the title is not in it
    put(anime, D, 1)
    assert selectors.top_streaks(feed="top", as_of=None)["results"][0]["days"] == 1


def test_streaks_longer_than_one_batch_cost_a_few_queries(django_assert_max_num_queries):
    anime, late = AnimeFactory.create_batch(2)
    for days_ago in range(200):
        put(anime, ago(days_ago), 1)
    for days_ago in range(40):
        put(late, ago(days_ago), 2)
    put(late, ago(40), 20)
    with django_assert_max_num_queries(12):
        result = selectors.top_streaks(feed="top", as_of=None)
    assert [(row["days"], row["since"]) for row in result["results"]] == [(200, ago(199)), (40, ago(39))]


# --- the feed rank --------------------------------------------------------------------------------


def test_each_feed_declares_the_rank_its_trends_use():
    assert {name: feed.rank_by for name, feed in FEEDS.items()} == {
        "top": "rank",
        "airing": "position",
        "upcoming": "position",
        "popular": "popularity",
        "movies": "position",
        "season": "position",
    }


def test_popular_climbers_move_by_popularity_not_by_mal_rank():
    # Before the feed rank, `popular` listed the score-rank mover: the row `top` would list.
    gains_members, score_mover = AnimeFactory.create_batch(2)
    put(gains_members, ago(7), 50, feed="popular", position=9, popularity=9)
    put(gains_members, D, 50, feed="popular", position=4, popularity=4)
    put(score_mover, ago(7), 30, feed="popular", position=2, popularity=2)
    put(score_mover, D, 10, feed="popular", position=2, popularity=2)

    climbers = selectors.rank_climbers(feed="popular", window=7, as_of=None)
    assert climbers["rank_by"] == "popularity"
    assert climbers["results"] == [
        {
            "mal_id": gains_members.mal_id,
            "title": gains_members.title,
            "rank": 4,
            "previous_rank": 9,
            "change": 5,
            "mal_rank": 50,
            "score": Decimal("8.00"),
            "image_url": gains_members.image_url,
        }
    ]
    assert selectors.rank_fallers(feed="popular", window=7, as_of=None)["results"] == []


def test_upcoming_titles_have_no_mal_rank_yet_their_trends_move_by_position():
    # Not yet aired titles have no rank: before the feed rank, every `upcoming` list stayed empty.
    rising, sinking = AnimeFactory.create_batch(2)
    for taken_on, places in ((ago(7), {rising: 6, sinking: 1}), (D, {rising: 1, sinking: 6})):
        for anime, position in places.items():
            put(anime, taken_on, None, None, feed="upcoming", position=position, popularity=None)

    def moves(selector):
        result = selector(feed="upcoming", window=7, as_of=None)
        assert result["rank_by"] == "position"
        return [(r["mal_id"], r["rank"], r["previous_rank"], r["change"], r["mal_rank"]) for r in result["results"]]

    assert moves(selectors.rank_climbers) == [(rising.mal_id, 1, 6, 5, None)]
    assert moves(selectors.rank_fallers) == [(sinking.mal_id, 6, 1, -5, None)]
    new = selectors.new_entries(feed="upcoming", as_of=None, top=5)
    assert new["rank_by"] == "position"
    assert new["results"] == [
        {
            "mal_id": rising.mal_id,
            "title": rising.title,
            "rank": 1,
            "mal_rank": None,
            "entered_on": D,
            "best_rank": 1,
        }
    ]
    streaks = selectors.top_streaks(feed="upcoming", as_of=None, top=5)
    assert [(r["mal_id"], r["rank"], r["days"], r["since"]) for r in streaks["results"]] == [(rising.mal_id, 1, 1, D)]


def test_momentum_in_a_position_feed_breaks_ties_by_position_and_shows_the_mal_rank():
    behind, ahead = AnimeFactory.create_batch(2)
    for anime, position, mal_rank in ((behind, 8, 3), (ahead, 2, 40)):
        put(anime, ago(7), mal_rank, "8.00", feed="airing", position=position)
        put(anime, D, mal_rank, "8.20", feed="airing", position=position)
    result = selectors.score_momentum(feed="airing", window=7, as_of=None)
    assert result["rank_by"] == "position"
    assert [(r["mal_id"], r["rank"], r["mal_rank"]) for r in result["results"]] == [
        (ahead.mal_id, 2, 40),
        (behind.mal_id, 8, 3),
    ]


# --- trending -------------------------------------------------------------------------------------


def test_trending_bundles_each_widget_as_an_envelope():
    a, b = AnimeFactory.create_batch(2)
    put(a, ago(7), 5)
    put(a, D, 1)
    put(b, ago(7), 1)
    put(b, D, 2)
    result = selectors.trending(feed="top", as_of=None, limit=1)
    assert (result["feed"], result["rank_by"], result["as_of"], result["date"]) == ("top", "rank", None, D)
    widgets = [
        *("weekly_climbers", "monthly_climbers", "weekly_fallers", "monthly_fallers"),
        *("weekly_momentum", "monthly_momentum", "new_entries", "streaks"),
    ]
    for widget in widgets:
        assert set(result[widget]) == ENVELOPE_KEYS
        assert result[widget]["rank_by"] == "rank"
        assert len(result[widget]["results"]) <= 1
    assert ids(result["weekly_climbers"]) == [a.mal_id]
    assert ids(result["weekly_fallers"]) == [b.mal_id]
    assert result["monthly_climbers"]["insufficient_history"]["needed_days"] == 31
    assert ids(result["streaks"]) == [a.mal_id]


def test_trending_of_a_position_feed_moves_by_position_and_names_it():
    rising, sinking = AnimeFactory.create_batch(2)
    for taken_on, places in ((ago(7), {rising: 2, sinking: 1}), (D, {rising: 1, sinking: 2})):
        for anime, position in places.items():
            put(anime, taken_on, None, feed="upcoming", position=position)
    result = selectors.trending(feed="upcoming", as_of=None)
    assert result["rank_by"] == "position"
    assert {result[widget]["rank_by"] for widget in ("weekly_climbers", "new_entries", "streaks")} == {"position"}
    assert ids(result["weekly_climbers"]) == [rising.mal_id]
    assert ids(result["weekly_fallers"]) == [sinking.mal_id]
    assert ids(result["streaks"]) == [rising.mal_id, sinking.mal_id]


# --- performance ----------------------------------------------------------------------------------


def test_windowed_selectors_cost_a_handful_of_queries_whatever_the_history(django_assert_max_num_queries):
    titles = AnimeFactory.create_batch(5)
    for days_ago in range(120):
        for rank, anime in enumerate(titles, start=1):
            put(anime, ago(days_ago), (rank + days_ago) % 7 + 1, position=rank)
    calls = [
        lambda: selectors.rank_climbers(feed="top", window=30, as_of=None),
        lambda: selectors.rank_fallers(feed="top", window=7, as_of=None),
        lambda: selectors.score_momentum(feed="top", window=7, as_of=None),
        lambda: selectors.new_entries(feed="top", as_of=None),
        lambda: selectors.top_rated(feed="top", as_of=None, genre="action", type="tv"),
        lambda: selectors.genre_distribution(feed="top", as_of=None),
    ]
    for call in calls:
        with django_assert_max_num_queries(5):
            call()


# --- titles ---------------------------------------------------------------------------------------


def test_anime_search_filters_and_orders_by_members():
    action = GenreFactory(name="Action")
    big = AnimeFactory(title="Frieren", title_english="Frieren: Beyond", members=900, genres=[action])
    small = AnimeFactory(title="Sousou", title_english="Beyond Journey", members=10, season="fall", year=2023)
    unknown = AnimeFactory(title="Beyond?", members=None, type="Movie", status="Not yet aired")
    assert list(selectors.anime_search(q="beyond")) == [big, small, unknown]
    assert list(selectors.anime_search(genre="ACTION")) == [big]
    assert list(selectors.anime_search(type="movie", status="not yet aired")) == [unknown]
    assert list(selectors.anime_search(year=2023, season="Fall")) == [small]


def test_anime_detail_has_facts_and_the_latest_row_per_feed():
    anime = AnimeFactory(genres=[GenreFactory(name="Drama")])
    anime.studios.add(StudioFactory(name="Madhouse"))
    put(anime, ago(1), 2, "8.10", feed="top")
    put(anime, D, 1, "8.20", feed="top", position=3)
    put(anime, ago(5), 7, feed="airing", position=7)
    detail = selectors.anime_detail(anime=anime)
    assert detail["mal_id"] == anime.mal_id
    assert detail["genres"] == [{"mal_id": anime.genres.get().mal_id, "name": "Drama", "kind": "genre"}]
    assert [studio["name"] for studio in detail["studios"]] == ["Madhouse"]
    assert detail["feeds"] == [
        {"feed": "top", "taken_on": D, "position": 3, "rank": 1, "score": Decimal("8.20")},
        {"feed": "airing", "taken_on": ago(5), "position": 7, "rank": 7, "score": Decimal("8.00")},
    ]


def test_anime_history_draws_the_title_numbers_once_per_day_and_each_feed_its_own_places():
    anime = AnimeFactory()
    title = {"members": 150, "popularity": 38, "favorites": 9}
    put(anime, ago(9), 5, "8.00", members=100, popularity=40, favorites=7, position=6)
    put(anime, ago(5), 4, "8.10", feed="airing", members=120, popularity=39, favorites=8, position=15)
    put(anime, ago(2), 3, "8.25", position=4, **title)
    put(anime, ago(2), 3, "8.25", feed="airing", position=12, **title)
    put(anime, D, 4, None, members=160, popularity=38, favorites=9, position=5)
    put(anime, D, 4, None, feed="airing", members=160, popularity=38, favorites=9, position=9)

    history = selectors.anime_history(anime=anime)
    # One point per day, whichever feeds had the title that day (D - 5: only airing).
    assert history["days"][:2] == [
        {
            "taken_on": ago(9),
            "score": Decimal("8.00"),
            "rank": 5,
            "popularity": 40,
            "members": 100,
            "favorites": 7,
            "score_change": None,
            "rank_change": None,
            "popularity_change": None,
            "members_change": None,
            "favorites_change": None,
        },
        {
            "taken_on": ago(5),
            "score": Decimal("8.10"),
            "rank": 4,
            "popularity": 39,
            "members": 120,
            "favorites": 8,
            "score_change": Decimal("0.10"),
            "rank_change": 1,
            "popularity_change": 1,
            "members_change": 20,
            "favorites_change": 1,
        },
    ]
    changes = [(d["taken_on"], d["rank_change"], d["score_change"], d["members_change"]) for d in history["days"]]
    assert changes[2:] == [(ago(2), 1, Decimal("0.15"), 30), (D, -1, None, 10)]
    # Per feed, its feed rank (MAL's rank in top, the position in airing) and position.
    assert history["rank_by"] == {"top": "rank", "airing": "position"}
    assert history["feeds"] == {
        "top": [
            {"taken_on": ago(9), "feed_rank": 5, "position": 6, "feed_rank_change": None},
            {"taken_on": ago(2), "feed_rank": 3, "position": 4, "feed_rank_change": 2},
            {"taken_on": D, "feed_rank": 4, "position": 5, "feed_rank_change": -1},
        ],
        "airing": [
            {"taken_on": ago(5), "feed_rank": 15, "position": 15, "feed_rank_change": None},
            {"taken_on": ago(2), "feed_rank": 12, "position": 12, "feed_rank_change": 3},
            {"taken_on": D, "feed_rank": 9, "position": 9, "feed_rank_change": 3},
        ],
    }
    assert list(history["feeds"]) == ["top", "airing"]

    # A window still compares its first point with the snapshot before it.
    recent = selectors.anime_history(anime=anime, days=3)
    assert [(d["taken_on"], d["rank_change"]) for d in recent["days"]] == [(ago(2), 1), (D, -1)]
    assert [(p["taken_on"], p["feed_rank_change"]) for p in recent["feeds"]["top"]] == [(ago(2), 2), (D, -1)]
    replay = selectors.anime_history(anime=anime, days=3, as_of=ago(2))
    assert [(d["taken_on"], d["rank_change"]) for d in replay["days"]] == [(ago(2), 1)]
    assert [(p["taken_on"], p["feed_rank_change"]) for p in replay["feeds"]["airing"]] == [(ago(2), 3)]
    assert selectors.anime_history(anime=anime, as_of=ago(10)) == {
        "mal_id": anime.mal_id,
        "title": anime.title,
        "days": [],
        "rank_by": {},
        "feeds": {},
    }


# --- status ---------------------------------------------------------------------------------------


def test_overview_and_feeds_summary_describe_the_history(time_machine):
    time_machine.move_to(dt.datetime(2024, 5, 4, 12, tzinfo=dt.UTC))
    anime = AnimeFactory(first_seen=ago(10))
    AnimeFactory(first_seen=D)
    put(anime, ago(10), 1)
    put(anime, D, 1)
    put(anime, ago(1), 1, feed="airing")
    failed = EtlRunFactory(feed="top", taken_on=D, status="failed", finished_at=None)

    result = selectors.overview()
    assert (result["anime"], result["snapshot_days"], result["rows"]) == (2, 3, 3)
    top = result["feeds"][0]
    assert top == {
        "feed": "top",
        "first_day": ago(10),
        "latest_day": D,
        "days": 2,
        "age_days": 3,
        "stale": True,
        "last_run": {"id": failed.pk, "status": "failed", "taken_on": D, "finished_at": None},
    }
    assert result["last_run"]["id"] == failed.pk
    assert [feed["feed"] for feed in result["feeds"]][:2] == ["top", "airing"]

    past = selectors.overview(as_of=ago(1))
    assert (past["anime"], past["snapshot_days"], past["rows"], past["last_run"]) == (1, 2, 2, None)

    summary = {row["feed"]: row for row in selectors.feeds_summary()}
    assert summary["airing"]["days"] == 1
    assert summary["airing"]["age_days"] == 4
    assert summary["movies"]["latest_day"] is None
    assert summary["top"]["path"] == "/top/anime"
    # Freshness follows the one rule of snapshots.selectors: no success in the last 24 hours is stale.
    assert (summary["top"]["stale"], summary["top"]["last_success_at"]) == (True, None)


def test_etl_runs_are_newest_first_and_filtered():
    old = EtlRunFactory(feed="top", status="success")
    new = EtlRunFactory(feed="airing", status="failed")
    assert list(selectors.etl_runs()) == [new, old]
    assert list(selectors.etl_runs(feed="top")) == [old]
    assert list(selectors.etl_runs(status="failed")) == [new]


def test_data_version_changes_when_a_run_commits():
    first = selectors.data_version()
    EtlRunFactory(status="failed")
    assert selectors.data_version() == first
    run = EtlRunFactory(status="running", finished_at=None)
    second = EtlRunFactory(status="success")
    version = selectors.data_version()
    assert version != first
    # An older run that finishes after a newer one still changes the version.
    run.status, run.finished_at = "partial", timezone.now()
    run.save()
    assert selectors.data_version() not in (first, version)
    assert second.pk > run.pk
