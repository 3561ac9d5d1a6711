from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.fakejikan import DATA_DIR
from snapshots.models import Anime, Genre, Studio
from snapshots.validation import AnimeRecord, ItemRejection, episode_minutes, item_validate

RECORDED = DATA_DIR / "recorded"


def _recorded_items() -> list[tuple[str, dict]]:
    items = []
    for path in sorted(RECORDED.glob("*.json")):
        if path.name.endswith(".headers.json") or "episodes" in path.name or "genres" in path.name:
            continue
        data = json.loads(path.read_text()).get("data")
        for item in data if isinstance(data, list) else [data] if isinstance(data, dict) else []:
            items.append((path.name, item))
    return items


def _item(**changes) -> dict:
    item = json.loads((RECORDED / "v4_top_anime_type-tv_page1_2022-12-06.json").read_text())["data"][0]
    item.update(changes)
    return item


@pytest.mark.parametrize(("name", "item"), _recorded_items(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_recorded_item_is_accepted(name, item):
    result = item_validate(item)
    assert isinstance(result, AnimeRecord), result
    assert result.mal_id == item["mal_id"]
    assert result.title


def test_a_full_item_is_read_into_a_record():
    record = item_validate(_item())
    assert isinstance(record, AnimeRecord)
    assert record.mal_id == 5114
    assert record.title == "Fullmetal Alchemist: Brotherhood"
    assert record.score == Decimal("9.11")
    assert (record.rank, record.popularity, record.type, record.season, record.year) == (1, 3, "TV", "spring", 2009)
    assert record.aired_from.isoformat() == "2009-04-05"
    assert (4, "Bones") in record.studios
    kinds = {kind for _, _, kind in record.genres}
    assert kinds == {"genre", "theme", "demographic"}
    assert record.image_url.startswith("https://cdn.myanimelist.net/")


def test_two_titles_sharing_a_rank_are_both_valid():
    items = [item for name, item in _recorded_items() if name == "v4_top_anime_type-tv_page1_2022-12-06.json"]
    ranks = [item_validate(item).rank for item in items]
    assert len(ranks) == 25
    assert len(set(ranks)) < len(ranks), "the 12-06 page has two titles at the same rank"


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"mal_id": None}, "mal_id", "must be a positive integer"),
        ({"mal_id": -3}, "mal_id", "must be a positive integer"),
        ({"mal_id": "5114"}, "mal_id", "must be a positive integer"),
        ({"mal_id": True}, "mal_id", "must be a positive integer"),
        ({"title": "", "titles": []}, "title", "missing"),
        ({"title": None, "titles": None}, "title", "missing"),
        ({"members": -1}, "members", "must not be negative"),
        ({"members": 12.5}, "members", "must be an integer"),
        ({"rank": "1"}, "rank", "must be an integer"),
        ({"favorites": -5}, "favorites", "must not be negative"),
        ({"score": "abc"}, "score", "must be a number"),
        ({"score": 11}, "score", "must be between 1 and 10"),
        ({"score": 0.5}, "score", "must be between 1 and 10"),
    ],
)
def test_bad_items_are_rejected_with_field_and_reason(changes, field, reason):
    result = item_validate(_item(**changes))
    assert isinstance(result, ItemRejection)
    assert (result.field, result.reason) == (field, reason)


def test_a_rejection_keeps_the_mal_id_when_it_is_valid():
    result = item_validate(_item(members=-1))
    assert isinstance(result, ItemRejection)
    assert result.mal_id == 5114
    assert result.value == "-1"


@pytest.mark.parametrize("raw", [None, 42, "item", [1, 2]])
def test_an_item_that_is_not_an_object_is_rejected(raw):
    result = item_validate(raw)
    assert isinstance(result, ItemRejection)
    assert result.field == "item"


def test_zero_means_unknown_for_score_rank_popularity_and_members():
    record = item_validate(_item(score=0, rank=0, popularity=0, members=0, favorites=0))
    assert isinstance(record, AnimeRecord)
    assert (record.score, record.rank, record.popularity, record.members) == (None, None, None, None)
    assert record.favorites == 0


def test_upcoming_titles_have_null_score_and_rank():
    upcoming = [item for name, item in _recorded_items() if "seasons_upcoming_page1" in name]
    records = [item_validate(item) for item in upcoming]
    assert all(isinstance(r, AnimeRecord) and r.score is None and r.rank is None for r in records)


def test_title_falls_back_to_the_default_entry_of_titles():
    record = item_validate(_item(title=None, titles=[{"type": "Default", "title": "Hagane"}]))
    assert isinstance(record, AnimeRecord)
    assert record.title == "Hagane"


def test_nul_characters_are_dropped_from_text():
    record = item_validate({**_item(), "title": "Null\x00 Title", "synopsis": "\x00a\x00b"})

    assert isinstance(record, AnimeRecord)
    assert (record.title, record.synopsis) == ("Null Title", "ab")


def test_unknown_enum_values_are_kept_as_text():
    raw = json.loads((RECORDED / "v4_MODIFIED_anime_11757_unknown_enum_values_reactive-jikan.json").read_text())
    record = item_validate(raw["data"])
    assert isinstance(record, AnimeRecord)
    assert record.type == "UNKNOWN TYPE"
    assert record.rating == "UNKNOWN RATING"
    # An invalid season is not kept: the season is derived from the airing dates instead.
    assert (record.season, record.year) == ("summer", 2012)


def test_season_is_derived_from_aired_when_jikan_gives_null():
    aired = {"from": "2019-10-05T00:00:00+00:00", "prop": {"from": {"day": 5, "month": 10, "year": 2019}}}
    record = item_validate(_item(season=None, year=None, aired=aired, type="Movie"))
    assert isinstance(record, AnimeRecord)
    assert (record.season, record.year) == ("fall", 2019)


def test_a_padded_year_only_date_gives_a_year_but_no_season():
    aired = {"from": "2023-01-01T00:00:00+00:00", "string": "2023 to ?", "prop": {"from": {"year": 2023}}}
    record = item_validate(_item(season=None, year=None, aired=aired))
    assert isinstance(record, AnimeRecord)
    assert (record.season, record.year, record.aired_string) == ("", 2023, "2023 to ?")


def test_not_available_dates_give_nulls():
    aired = {"from": None, "to": None, "string": "Not available", "prop": {"from": {}, "to": {}}}
    record = item_validate(_item(season=None, year=None, aired=aired))
    assert isinstance(record, AnimeRecord)
    assert (record.aired_from, record.aired_to, record.season, record.year) == (None, None, "", None)


def test_early_v4_shape_without_titles_is_accepted():
    raw = json.loads((RECORDED / "v4early_top_anime_trimmed-1-item_2022-02_reactive-jikan.json").read_text())
    record = item_validate(raw["data"][0])
    assert isinstance(record, AnimeRecord)
    assert "titles" not in raw["data"][0]


def test_malformed_genre_entries_are_skipped_not_fatal():
    record = item_validate(_item(genres=[{"mal_id": "x"}, None, {"mal_id": 1, "name": "Action"}], themes="oops"))
    assert isinstance(record, AnimeRecord)
    assert [g for g in record.genres if g[2] == "genre"] == [(1, "Action", "genre")]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_never_raises(raw):
    assert isinstance(item_validate(raw), AnimeRecord | ItemRejection)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["score", "rank", "members", "aired", "season", "year", "genres", "title", "titles", "images", "url"]
        ),
        json_values,
    )
)
def test_arbitrary_values_in_a_real_item_never_raise(changes):
    assert isinstance(item_validate(_item(**changes)), AnimeRecord | ItemRejection)


def test_a_title_longer_than_its_column_is_cut_to_the_column_length():
    limit = Anime._meta.get_field("title").max_length
    record = item_validate(_item(title="x" * (limit + 50)))
    assert isinstance(record, AnimeRecord)
    assert len(record.title) == limit


def test_a_type_longer_than_its_column_is_cut():
    limit = Anime._meta.get_field("type").max_length
    record = item_validate(_item(type="T" * (limit * 3)))
    assert isinstance(record, AnimeRecord)
    assert record.type == "T" * limit


def test_genre_and_studio_names_are_cut_to_their_columns():
    genre_limit, studio_limit = Genre._meta.get_field("name").max_length, Studio._meta.get_field("name").max_length
    record = item_validate(
        _item(genres=[{"mal_id": 1, "name": "g" * 1000}], studios=[{"mal_id": 4, "name": "s" * 1000}])
    )
    assert isinstance(record, AnimeRecord)
    assert [len(name) for _, name, kind in record.genres if kind == "genre"] == [genre_limit]
    assert [len(name) for _, name in record.studios] == [studio_limit]


def _column_max(model, name: str) -> int:
    """The highest value the database backend stores in the column (SQLite's are all 64-bit)."""
    return connection.ops.integer_field_range(model._meta.get_field(name).get_internal_type())[1]


@pytest.mark.skipif(_column_max(Anime, "members") >= 3_000_000_000, reason="members is not a 32-bit column here")
def test_members_of_three_billion_are_rejected_by_a_32_bit_column_naming_the_field():
    assert Anime._meta.get_field("members").get_internal_type() == "PositiveIntegerField"
    result = item_validate(_item(members=3_000_000_000))
    assert isinstance(result, ItemRejection)
    assert (result.mal_id, result.field, result.reason) == (5114, "members", "must be at most 2147483647")
    assert result.value == "3000000000"


def test_a_count_one_past_its_column_is_rejected_and_the_largest_it_holds_is_accepted():
    high = _column_max(Anime, "favorites")
    result = item_validate(_item(favorites=high + 1))
    assert isinstance(result, ItemRejection)
    assert (result.field, result.reason) == ("favorites", f"must be at most {high}")
    record = item_validate(_item(favorites=high))
    assert isinstance(record, AnimeRecord)
    assert record.favorites == high


def test_a_mal_id_past_two_to_the_63_is_rejected_without_keeping_the_id():
    result = item_validate(_item(mal_id=2**63 + 1))
    assert isinstance(result, ItemRejection)
    assert (result.field, result.reason) == ("mal_id", f"must be at most {_column_max(Anime, 'mal_id')}")
    # The rejection is stored too: an id its column cannot hold is not kept there.
    assert result.mal_id is None


def test_a_year_of_40000_is_rejected_when_past_the_year_column_and_kept_otherwise():
    high = _column_max(Anime, "year")
    result = item_validate(_item(year=40000))
    if high < 40000:
        assert isinstance(result, ItemRejection)
        assert (result.field, result.reason) == ("year", f"must be at most {high}")
    else:
        assert isinstance(result, AnimeRecord)
        assert result.year == 40000


@pytest.mark.parametrize(("key", "field"), [("themes", "themes.mal_id"), ("studios", "studios.mal_id")])
def test_a_genre_or_studio_id_past_its_column_is_rejected(key, field):
    too_big = _column_max(Genre if key == "themes" else Studio, "mal_id") + 1
    result = item_validate(_item(**{key: [{"mal_id": too_big, "name": "Too big"}]}))
    assert isinstance(result, ItemRejection)
    assert (result.field, result.reason) == (field, f"must be at most {_column_max(Genre, 'mal_id')}")


def test_every_title_variant_jikan_gives_is_kept_with_its_type():
    record = item_validate(_item())
    assert isinstance(record, AnimeRecord)
    assert record.titles[0] == {"type": "Default", "title": "Fullmetal Alchemist: Brotherhood"}
    assert {"type": "Synonym", "title": "FMA"} in record.titles
    assert {"type": "Japanese", "title": "鋼の錬金術師 FULLMETAL ALCHEMIST"} in record.titles
    assert {"type": "French", "title": "Fullmetal Alchemist Brotherhood"} in record.titles


def test_the_early_v4_shape_gives_its_synonyms_and_other_titles_as_variants():
    raw = json.loads((RECORDED / "v4early_top_anime_trimmed-1-item_2022-02_reactive-jikan.json").read_text())
    record = item_validate(raw["data"][0])
    assert isinstance(record, AnimeRecord)
    assert record.titles == (
        {"type": "Default", "title": "Fullmetal Alchemist: Brotherhood"},
        {"type": "Synonym", "title": "Hagane no Renkinjutsushi: Fullmetal Alchemist"},
        {"type": "Synonym", "title": "Fullmetal Alchemist (2009)"},
        {"type": "Synonym", "title": "FMA"},
        {"type": "Synonym", "title": "FMAB"},
        {"type": "Japanese", "title": "鋼の錬金術師 FULLMETAL ALCHEMIST"},
        {"type": "English", "title": "Fullmetal Alchemist: Brotherhood"},
    )


def test_malformed_title_variants_are_skipped_and_long_ones_cut_to_the_title_column():
    limit = Anime._meta.get_field("title").max_length
    variants = [
        {"type": "Synonym", "title": "s" * (limit + 10)},
        "junk",
        {"type": "Synonym", "title": 5},
        {"type": "Synonym", "title": " \x00 "},
        {"title": "No type"},
        {"type": "Synonym", "title": "FMA"},
        {"type": "Synonym", "title": "FMA"},
    ]
    record = item_validate(_item(titles=variants))
    assert isinstance(record, AnimeRecord)
    assert record.titles == (
        {"type": "Synonym", "title": "s" * limit},
        {"type": "", "title": "No type"},
        {"type": "Synonym", "title": "FMA"},
    )


def test_search_text_holds_every_variant_without_case_accents_or_punctuation():
    full_width_fma = "\uff26\uff2d\uff21"
    variants = [
        {"type": "Default", "title": "Fullmetal Alchemist: Brotherhood"},
        {"type": "Synonym", "title": f"Pokémon {full_width_fma}"},
    ]
    record = item_validate(_item(titles=variants, title_japanese="ナルト", title_english="Brother-hood!"))
    assert isinstance(record, AnimeRecord)
    words = record.search_text.split()
    assert "fullmetal alchemist brotherhood" in record.search_text
    assert {"pokemon", "fma", "ナルト", "brother", "hood"} <= set(words)
    assert not {":", "!", "-"} & set(record.search_text)


MAL_URLS = [
    "https://myanimelist.net/anime/5114/Fullmetal_Alchemist__Brotherhood",
    "http://myanimelist.net/anime/5114",
    "https://cdn.myanimelist.net/images/anime/1208/94745l.jpg",
    "https://img1.cdn.myanimelist.net/images/anime/1208/94745l.jpg",
    "HTTPS://MyAnimeList.NET/anime/5114",
]
OTHER_URLS = [
    "javascript:alert(1)",
    "data:image/png;base64,AAAA",
    "https://evil.example/anime/5114",
    "https://myanimelist.net.evil.example/anime/5114",
    "https://notmyanimelist.net/anime/5114",
    "ftp://myanimelist.net/anime/5114",
    "//myanimelist.net/anime/5114",
    "/anime/5114",
    "https://evil.example\\@myanimelist.net/",
    "https://user:pass@myanimelist.net/",
    "https://myanimelist.net/anime/5114 onerror=alert(1)",
    "https://myanimelist.net/" + "a" * 600,
    42,
]


@pytest.mark.parametrize("url", MAL_URLS)
def test_urls_to_myanimelist_hosts_are_kept(url):
    record = item_validate(_item(url=url, images={"jpg": {"large_image_url": url}}))
    assert isinstance(record, AnimeRecord)
    assert (record.url, record.image_url) == (url, url)


@pytest.mark.parametrize("url", OTHER_URLS)
def test_urls_off_myanimelist_are_dropped_and_the_item_kept(url):
    record = item_validate(_item(url=url, images={"jpg": {"large_image_url": url}, "webp": {"image_url": url}}))
    assert isinstance(record, AnimeRecord)
    assert (record.url, record.image_url) == ("", "")


def test_an_image_off_myanimelist_gives_way_to_the_next_size_that_is_on_it():
    images = {"jpg": {"large_image_url": "https://evil.example/l.jpg", "image_url": MAL_URLS[2]}}
    record = item_validate(_item(images=images))
    assert isinstance(record, AnimeRecord)
    assert record.image_url == MAL_URLS[2]


# Minutes per episode ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "minutes"),
    [
        ("24 min per ep", 24),
        ("23 min", 23),
        ("1 hr 52 min", 112),
        ("2 hr", 120),
        ("1 hr 3 min per ep", 63),
        ("45 sec per ep", 1),
        ("5 min 30 sec", 5),
        ("Unknown", None),
        ("", None),
        ("0 min", None),
        ("25 hr", None),  # more than a day is no episode
        ("999 hr 59 min", None),
        ("24 min per ep; DROP TABLE anime", None),
        ("24" * 40, None),
        ("min per ep", None),
        (None, None),
        (24, None),
        (["24 min"], None),
    ],
)
def test_episode_minutes_reads_every_shape_jikan_writes_and_refuses_the_rest(duration, minutes):
    assert episode_minutes(duration) == minutes


def test_every_duration_in_the_recorded_responses_is_read_or_unknown():
    durations = {item.get("duration") for _path, item in _recorded_items()}
    assert durations  # the recordings have them
    for duration in durations:
        assert (episode_minutes(duration) is None) == (duration in (None, "Unknown")), duration


@given(st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_episode_minutes_never_fails_on_any_string(text):
    minutes = episode_minutes(text)
    assert minutes is None or 1 <= minutes <= 24 * 60


def test_the_record_carries_the_minutes():
    item = json.loads((RECORDED / "v4_top_anime_type-tv_page1_2022-12-06.json").read_text())["data"][0]
    record = item_validate(item)
    assert isinstance(record, AnimeRecord)
    assert record.episode_minutes == episode_minutes(item["duration"])
