"""Migrations that rewrite data keep it: a self-hosted history must survive an upgrade."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE, AFTER = ("snapshots", "0004_rawpage_lz4"), ("snapshots", "0005_rawpage_body")


def _migrate(target: tuple[str, str]):
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


def _migrate_forward() -> None:
    """Every app to its newest migration: going back in snapshots took the apps that depend on it back too."""
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_stored_pages_keep_their_body_and_next_page_flag_across_0005():
    payloads = [
        {"pagination": {"has_next_page": True, "last_visible_page": 2}, "data": [{"mal_id": 1, "title": 'Ü "x"'}]},
        {"pagination": {"has_next_page": False}, "data": []},
        {"data": [{"mal_id": 2}]},  # early shapes may lack pagination: the only page
    ]
    try:
        old = _migrate(BEFORE)
        run = old.get_model("snapshots", "EtlRun").objects.create(feed="top", taken_on=dt.date(2024, 1, 1))
        for page, payload in enumerate(payloads, start=1):
            old.get_model("snapshots", "RawPage").objects.create(
                run=run, page=page, url=f"u{page}", http_status=200, payload=payload
            )

        new = _migrate(AFTER)
        stored = new.get_model("snapshots", "RawPage").objects.order_by("page")
        assert [json.loads(raw.body) for raw in stored] == payloads
        assert [raw.has_next_page for raw in stored] == [True, False, False]

        back = _migrate(BEFORE)
        assert [raw.payload for raw in back.get_model("snapshots", "RawPage").objects.order_by("page")] == payloads
    finally:
        _migrate_forward()


@pytest.mark.django_db(transaction=True)
def test_stored_titles_get_their_variants_from_the_newest_raw_page_and_every_title_its_search_text():
    item = {"mal_id": 1, "title": "Shingeki no Kyojin", "titles": [{"type": "Synonym", "title": "AoT"}]}
    older = {**item, "titles": [{"type": "Synonym", "title": "Old name"}]}
    try:
        old = _migrate(("snapshots", "0006_etlrun_status_queued"))
        Anime, RawPage = old.get_model("snapshots", "Anime"), old.get_model("snapshots", "RawPage")
        day = dt.date(2024, 1, 1)
        Anime.objects.create(mal_id=1, title="Shingeki no Kyojin", first_seen=day, last_seen=day)
        Anime.objects.create(mal_id=2, title="Pokémon", title_japanese="ポケモン", first_seen=day, last_seen=day)
        run = old.get_model("snapshots", "EtlRun").objects.create(feed="top", taken_on=day)
        for page, data in ((1, [older]), (2, [item, "junk"])):
            body = json.dumps({"pagination": {"has_next_page": page == 1}, "data": data})
            RawPage.objects.create(run=run, page=page, url="u", http_status=200, body=body, has_next_page=page == 1)
        RawPage.objects.create(run=run, page=3, url="u", http_status=200, body="not json", has_next_page=False)

        new = _migrate(("snapshots", "0007_anime_titles_search_text"))

        titles = {a.mal_id: (a.titles, a.search_text) for a in new.get_model("snapshots", "Anime").objects.all()}
        assert titles == {
            1: ([{"type": "Synonym", "title": "AoT"}], "shingeki no kyojin aot"),
            2: ([], "pokemon ホケモン"),
        }
    finally:
        _migrate_forward()


@pytest.mark.django_db(transaction=True)
def test_past_run_errors_get_a_public_text_that_never_repeats_a_database_message():
    errors = {
        "Quality gate: only 3 of 25 items passed validation; the previous data of this day is kept.": None,
        "abandoned: the worker stopped before finishing": None,
        'Database error: duplicate key value violates unique constraint "x"': "Database error; the day keeps its "
        "previous data.",
        "Jikan answered 500 for http://10.0.0.5/v4/top/anime?page=1: boom": "The run failed; the details are in "
        "the admin.",
        "": "",
    }
    try:
        old = _migrate(("snapshots", "0007_anime_titles_search_text"))
        EtlRun = old.get_model("snapshots", "EtlRun")
        for error in errors:
            EtlRun.objects.create(feed="top", taken_on=dt.date(2024, 1, 1), status="failed", error=error)

        new = _migrate(("snapshots", "0008_etlrun_public_error_dataedit"))

        public = dict(new.get_model("snapshots", "EtlRun").objects.values_list("error", "public_error"))
        assert public == {error: error if text is None else text for error, text in errors.items()}
    finally:
        _migrate_forward()


@pytest.mark.django_db(transaction=True)
def test_stored_titles_get_their_minutes_per_episode_from_the_newest_raw_page():
    day = dt.date(2024, 1, 1)
    try:
        old = _migrate(("snapshots", "0008_etlrun_public_error_dataedit"))
        Anime, RawPage = old.get_model("snapshots", "Anime"), old.get_model("snapshots", "RawPage")
        for mal_id in (1, 2, 3):
            Anime.objects.create(mal_id=mal_id, title=f"T{mal_id}", first_seen=day, last_seen=day)
        run = old.get_model("snapshots", "EtlRun").objects.create(feed="top", taken_on=day)
        pages = [
            [{"mal_id": 1, "duration": "20 min per ep"}],  # older: the newer page wins
            [{"mal_id": 1, "duration": "24 min per ep"}, {"mal_id": 2, "duration": "1 hr 52 min"}, "junk"],
        ]
        for page, data in enumerate(pages, start=1):
            body = json.dumps({"data": data})
            RawPage.objects.create(run=run, page=page, url="u", http_status=200, body=body, has_next_page=False)

        new = _migrate(("snapshots", "0009_anime_episode_minutes"))

        minutes = dict(new.get_model("snapshots", "Anime").objects.values_list("mal_id", "episode_minutes"))
        assert minutes == {1: 24, 2: 112, 3: None}
    finally:
        _migrate_forward()


def _snapshot_indexes() -> dict[str, Any]:
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, "snapshots_snapshot")


def _title_only_indexes() -> list[str]:
    return [name for name, found in _snapshot_indexes().items() if found["index"] and found["columns"] == ["anime_id"]]


@pytest.mark.django_db(transaction=True)
def test_an_existing_history_moves_to_the_whole_catalogue_indexes_and_back():
    day = dt.date(2024, 1, 1)
    try:
        old = _migrate(("snapshots", "0009_anime_episode_minutes"))
        Anime, Snapshot = old.get_model("snapshots", "Anime"), old.get_model("snapshots", "Snapshot")
        Anime.objects.create(mal_id=1, title="A", first_seen=day, last_seen=day)
        Snapshot.objects.create(anime_id=1, feed="popular", taken_on=day, position=1, rank=7, popularity=1)
        old.get_model("snapshots", "SnapshotDay").objects.create(feed="popular", taken_on=day, rows=1)

        new = _migrate(("snapshots", "0010_whole_catalogue_indexes"))
        assert new.get_model("snapshots", "SnapshotDay").objects.get().loaded_at is not None
        indexes = _snapshot_indexes()
        assert {
            "snapshot_feed_day_anime",
            "snapshot_feed_day_rank_top",
            "snapshot_feed_day_popular_top",
        } <= set(indexes)
        assert "snapshot_feed_day_rank" not in indexes
        _migrate(("snapshots", "0011_postgresql_indexes"))
        assert "snapshot_feed_day_score" in _snapshot_indexes()
        with connection.cursor() as cursor:
            assert "snapshots_anime_search_trgm" in connection.introspection.get_constraints(cursor, "snapshots_anime")
        assert _title_only_indexes()

        _migrate(("snapshots", "0012_title_history_index"))
        assert _snapshot_indexes()["snapshot_unique_anime_feed_day"]["unique"]
        assert not _title_only_indexes()  # the unique constraint leads with the title
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'snapshot_unique_anime_feed_day'")
            assert 'INCLUDE ("position", rank, popularity, score, members, favorites)' in cursor.fetchone()[0]

        back = _migrate(("snapshots", "0009_anime_episode_minutes"))
        assert "snapshot_feed_day_rank" in _snapshot_indexes()
        assert _title_only_indexes()
        assert back.get_model("snapshots", "Snapshot").objects.get().rank == 7
    finally:
        _migrate_forward()
