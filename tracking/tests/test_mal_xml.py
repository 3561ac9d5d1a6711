"""MAL export reading and writing: every field, hostile files refused with a clear message, and a round trip."""

from __future__ import annotations

import gzip
import re
import tracemalloc
import zlib
from datetime import date
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from tracking.mal_xml import (
    MAX_UPLOAD_BYTES,
    MAX_XML_BYTES,
    MalEntry,
    MalFileError,
    MalRejected,
    parse_export,
    render_export,
)

DATA = Path(__file__).parent / "data"

MAL_ANIME_ELEMENTS = [
    "series_animedb_id",
    "series_title",
    "series_type",
    "series_episodes",
    "my_id",
    "my_watched_episodes",
    "my_start_date",
    "my_finish_date",
    "my_rated",
    "my_score",
    "my_storage",
    "my_storage_value",
    "my_status",
    "my_comments",
    "my_times_watched",
    "my_rewatch_value",
    "my_priority",
    "my_tags",
    "my_rewatching",
    "my_rewatching_ep",
    "my_discuss",
    "my_sns",
    "update_on_import",
]
MAL_MYINFO_ELEMENTS = [
    "user_id",
    "user_name",
    "user_export_type",
    "user_total_anime",
    "user_total_watching",
    "user_total_completed",
    "user_total_onhold",
    "user_total_dropped",
    "user_total_plantowatch",
]


def entry(**fields) -> MalEntry:
    defaults: dict[str, Any] = {
        "mal_id": 1,
        "title": "Cowboy Bebop",
        "series_type": "TV",
        "episodes": 26,
        "watched_episodes": 0,
        "started_on": None,
        "finished_on": None,
        "score": None,
        "status": "plan_to_watch",
        "notes": "",
        "times_watched": 0,
        "rewatching": False,
        "tags": "",
    }
    return MalEntry(**(defaults | fields))


def anime_xml(**elements: str) -> bytes:
    """A one-entry export; each keyword is an element of the <anime>, written as given."""
    fields = {"series_animedb_id": "1", "series_title": "Cowboy Bebop", "my_status": "Watching"} | elements
    body = "".join(f"<{tag}>{value}</{tag}>" for tag, value in fields.items())
    return f"<myanimelist><anime>{body}</anime></myanimelist>".encode()


@pytest.fixture
def animelist() -> bytes:
    return (DATA / "animelist.xml").read_bytes()


def test_every_field_is_read(animelist):
    export = parse_export(animelist)

    assert export.username == "kenji_watches"
    assert export.entries[:2] == [
        MalEntry(
            mal_id=1,
            title="Cowboy Bebop",
            series_type="TV",
            episodes=26,
            watched_episodes=26,
            started_on=date(2019, 1, 5),
            finished_on=date(2019, 2, 17),
            score=9,
            status="completed",
            notes="The ending still hurts.",
            times_watched=1,
            rewatching=False,
            tags="space, jazz",
        ),
        MalEntry(
            mal_id=32281,
            title="Kimi no Na wa.",
            series_type="Movie",
            episodes=1,
            watched_episodes=1,
            started_on=date(2017, 3, 4),
            finished_on=date(2017, 3, 4),
            score=10,
            status="completed",
            notes="Second time with friends & family.",
            times_watched=1,
            rewatching=True,
            tags="rewatch",
        ),
    ]


def test_cdata_titles_and_notes_keep_ampersands_angle_brackets_and_newlines(animelist):
    by_id = {entry.mal_id: entry for entry in parse_export(animelist).entries}

    assert by_id[37999].title == "Kaguya-sama wa Kokurasetai: Tensai-tachi no Renai Zunousen & <Love is War>"
    assert by_id[5114].notes == "Paused at <episode 30> & will resume."
    assert by_id[20].notes == "Too many fillers.\nMaybe later."
    assert by_id[20].tags == "long, fillers"


def test_unknown_partial_and_impossible_dates_stay_none(animelist):
    by_id = {entry.mal_id: entry for entry in parse_export(animelist).entries}

    assert (by_id[37999].started_on, by_id[37999].finished_on) == (None, None)  # 0000-00-00
    assert by_id[5114].started_on is None  # 2020-05-00: an import never invents the day
    assert by_id[20].started_on is None  # 2021-02-30
    assert by_id[20].finished_on == date(2021, 6, 1)
    assert (by_id[52991].started_on, by_id[52991].finished_on) == (None, None)  # empty


def test_zero_means_unknown_for_score_and_episodes(animelist):
    by_id = {entry.mal_id: entry for entry in parse_export(animelist).entries}

    assert by_id[52991].episodes is None
    assert by_id[52991].score is None
    assert by_id[37999].score is None


def test_statuses_in_words_and_in_old_numbers(animelist):
    words = parse_export(animelist)
    numbers = parse_export((DATA / "animelist_numeric_status.xml").read_bytes())

    everything = ["watching", "completed", "on_hold", "dropped", "plan_to_watch"]
    assert sorted({entry.status for entry in words.entries}) == sorted(everything)
    assert [entry.status for entry in numbers.entries] == everything
    assert numbers.username == "old_timer"
    assert numbers.rejected == []


def test_the_malformed_entry_is_rejected_and_the_others_are_read(animelist):
    export = parse_export(animelist)

    assert len(export.entries) == 6
    assert export.rejected == [
        MalRejected(mal_id=None, title="Broken <entry>", reason=export.rejected[0].reason),
    ]
    assert "series_animedb_id" in export.rejected[0].reason
    assert "'abc'" in export.rejected[0].reason


@pytest.mark.parametrize(
    ("elements", "words"),
    [
        ({"series_animedb_id": ""}, "id (series_animedb_id) is missing"),
        ({"series_animedb_id": "-3"}, "not a positive number"),
        ({"my_status": "Binging"}, "'Binging' is not a MyAnimeList status"),
        ({"my_status": "5"}, "'5' is not a MyAnimeList status"),
        ({"my_score": "11"}, "score (my_score) 11 is not between 0 and 10"),
        ({"my_score": "7.5"}, "'7.5' is not a whole number"),
        ({"my_watched_episodes": "-1"}, "watched episodes (my_watched_episodes) '-1'"),
        ({"series_episodes": "many"}, "number of episodes (series_episodes) 'many'"),
        ({"my_times_watched": "²"}, "times watched"),
        ({"my_rewatching": "yes"}, "neither 0 nor 1"),
    ],
)
def test_bad_entries_are_rejected_with_their_reason(elements, words):
    export = parse_export(anime_xml(**elements))

    assert export.entries == []
    assert len(export.rejected) == 1
    assert words in export.rejected[0].reason
    assert export.rejected[0].title == "Cowboy Bebop"


def test_a_repeated_id_is_rejected_the_second_time():
    one = "<anime><series_animedb_id>1</series_animedb_id><my_status>Watching</my_status></anime>"
    export = parse_export(f"<myanimelist>{one}{one}</myanimelist>".encode())

    assert [entry.mal_id for entry in export.entries] == [1]
    assert export.rejected[0].mal_id == 1
    assert "more than once" in export.rejected[0].reason


def test_missing_optional_elements_have_defaults():
    anime = "<anime><series_animedb_id>7</series_animedb_id><my_status>Dropped</my_status></anime>"
    export = parse_export(f"<myanimelist>{anime}</myanimelist>".encode())

    assert export.username == ""
    assert export.entries == [entry(mal_id=7, title="", series_type="", episodes=None, status="dropped")]


def test_plain_and_gzipped_give_the_same_result(animelist):
    plain = parse_export(animelist)

    assert parse_export(gzip.compress(animelist)) == plain
    # Concatenated gzip members are one stream, as gzip itself reads them.
    half = len(animelist) // 2
    assert parse_export(gzip.compress(animelist[:half]) + gzip.compress(animelist[half:])) == plain


def billion_laughs() -> bytes:
    entities = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    dtd = f"<!DOCTYPE myanimelist [{''.join(entities)}]>"
    return f'<?xml version="1.0"?>{dtd}<myanimelist>&lol9;</myanimelist>'.encode()


def decompression_bomb(megabytes: int = 200) -> bytes:
    """gzip of `megabytes` MB of zeros, built one chunk at a time so the test stays fast and small."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1024 * 1024)
    return b"".join(compressor.compress(chunk) for _ in range(megabytes)) + compressor.flush()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        pytest.param(billion_laughs(), "declares a DTD or entities", id="billion-laughs"),
        pytest.param(
            b'<?xml version="1.0"?><!DOCTYPE myanimelist [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            b"<myanimelist><myinfo><user_name>&xxe;</user_name></myinfo></myanimelist>",
            "declares a DTD or entities",
            id="external-entity",
        ),
        pytest.param(
            b"<myanimelist><myinfo><user_name>&xxe;</user_name></myinfo></myanimelist>",
            "not valid XML",
            id="undeclared-entity",
        ),
        pytest.param(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01", "not valid XML", id="png"),
        pytest.param(
            b"<!DOCTYPE html><html><head><title>MyAnimeList</title></head><body></body></html>",
            "web page (HTML)",
            id="html-page",
        ),
        pytest.param(
            b"<html><body><p>Anime list</p></body></html>",
            "its root element is <html>, not <myanimelist>",
            id="xhtml",
        ),
        pytest.param(b'<?xml version="1.0" encoding="klingon"?><myanimelist/>', "encoding", id="unknown-encoding"),
        pytest.param(b'<?xml version="1.0" encoding="shift_jis"?><myanimelist/>', "encoding", id="multibyte-encoding"),
        pytest.param(b'<?xml version="1.0" encoding="idna"?><myanimelist/>', "encoding", id="codec-not-for-text"),
        pytest.param(
            gzip.compress(b"<myanimelist></myanimelist>" * 100)[:-30], "gzip file is truncated", id="truncated"
        ),
        pytest.param(b"\x1f\x8b\x08\0garbage-not-deflate", "gzip file is damaged", id="damaged-gzip"),
        pytest.param(b"", "empty", id="empty"),
        pytest.param(gzip.compress(b""), "empty", id="empty-gzip"),
        pytest.param(b"<" * (MAX_UPLOAD_BYTES + 1), "larger than 5 MB", id="over-upload-cap"),
    ],
)
def test_unusable_files_are_refused_with_a_clear_message(data, words):
    with pytest.raises(MalFileError, match=re.escape(words)):
        parse_export(data)


def test_a_decompression_bomb_is_refused_without_inflating_it():
    bomb = decompression_bomb()
    assert len(bomb) < MAX_UPLOAD_BYTES

    tracemalloc.start()
    try:
        with pytest.raises(MalFileError, match="larger than 20 MB uncompressed"):
            parse_export(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * MAX_XML_BYTES


def test_an_oversized_upload_is_refused_before_decompressing(monkeypatch):
    def fail(*args):
        raise AssertionError("decompressed an over-cap upload")

    monkeypatch.setattr(zlib, "decompressobj", fail)
    with pytest.raises(MalFileError, match="larger than 5 MB"):
        parse_export(b"\x1f\x8b" + b"\0" * MAX_UPLOAD_BYTES)


def test_rendered_export_parses_back_to_the_same_entries(animelist):
    entries = [
        *parse_export(animelist).entries,
        entry(mal_id=2, title="Tricky ]]> title & <more>", notes="a ]]]]> b\r\nc]]", tags="]]>"),
        entry(mal_id=3, title="", series_type="Special", episodes=None, started_on=date(1, 1, 1), score=1),
    ]

    export = parse_export(render_export("kenji & <co>", entries))

    assert export.entries == entries
    assert export.rejected == []
    assert export.username == "kenji & <co>"


def test_rendering_drops_characters_xml_cannot_carry():
    rendered = render_export("me\x00", [entry(title="Bell\x07 Tower", notes="\ud800ok")])

    assert parse_export(rendered).entries == [entry(title="Bell Tower", notes="ok")]


def test_rendered_export_has_mal_shape_and_every_element_in_order(animelist):
    entries = parse_export(animelist).entries
    rendered = render_export("kenji_watches", entries)

    assert rendered.startswith(b'<?xml version="1.0" encoding="UTF-8" ?>\n')
    root = ElementTree.fromstring(rendered)
    assert root.tag == "myanimelist"
    myinfo = root.find("myinfo")
    assert [child.tag for child in myinfo] == MAL_MYINFO_ELEMENTS
    assert {child.tag: child.text for child in myinfo} == {
        "user_id": "0",
        "user_name": "kenji_watches",
        "user_export_type": "1",
        "user_total_anime": "6",
        "user_total_watching": "1",
        "user_total_completed": "2",
        "user_total_onhold": "1",
        "user_total_dropped": "1",
        "user_total_plantowatch": "1",
    }
    animes = root.findall("anime")
    assert len(animes) == 6
    for anime in animes:
        assert [child.tag for child in anime] == MAL_ANIME_ELEMENTS
    assert {child.tag: child.text or "" for child in animes[-1]} == {
        "series_animedb_id": "52991",
        "series_title": "Sousou no Frieren",
        "series_type": "TV",
        "series_episodes": "0",
        "my_id": "0",
        "my_watched_episodes": "0",
        "my_start_date": "0000-00-00",
        "my_finish_date": "0000-00-00",
        "my_rated": "",
        "my_score": "0",
        "my_storage": "",
        "my_storage_value": "0.00",
        "my_status": "Plan to Watch",
        "my_comments": "",
        "my_times_watched": "0",
        "my_rewatch_value": "",
        "my_priority": "LOW",
        "my_tags": "",
        "my_rewatching": "0",
        "my_rewatching_ep": "0",
        "my_discuss": "1",
        "my_sns": "default",
        "update_on_import": "1",
    }


def test_rendered_text_fields_are_cdata_and_statuses_are_mal_words(animelist):
    rendered = render_export("kenji_watches", parse_export(animelist).entries).decode()

    assert "<series_title><![CDATA[Cowboy Bebop]]></series_title>" in rendered
    assert "<my_comments><![CDATA[Paused at <episode 30> & will resume.]]></my_comments>" in rendered
    assert "<my_tags><![CDATA[space, jazz]]></my_tags>" in rendered
    assert "<my_rewatching>1</my_rewatching>" in rendered
    statuses = re.findall(r"<my_status>(.*?)</my_status>", rendered)
    assert set(statuses) == {"Watching", "Completed", "On-Hold", "Dropped", "Plan to Watch"}


def test_render_accepts_any_iterable_and_an_empty_list():
    rendered = render_export("", iter([]))

    assert parse_export(rendered).entries == []
    assert b"<user_total_anime>0</user_total_anime>" in rendered
