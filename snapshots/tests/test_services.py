from __future__ import annotations

import datetime as dt
import json
import threading
from unittest import mock

import pytest
from django.db import IntegrityError, connection
from django.utils import timezone

from devtools.fakejikan import DATA_DIR
from devtools.testing import wait_until
from snapshots import services
from snapshots.locks import feed_lock
from snapshots.models import Anime, EtlRun, RawPage, Rejection, Snapshot, SnapshotDay
from snapshots.signals import snapshot_committed
from snapshots.staging import Staging
from snapshots.tests.factories import EtlRunFactory
from snapshots.validation import AnimeRecord, item_validate

pytestmark = pytest.mark.django_db

DAY = dt.date(2024, 5, 1)
PAGE_12_06 = "v4_top_anime_type-tv_page1_2022-12-06.json"
PAGE_12_09 = "v4_top_anime_type-tv_page1_2022-12-09.json"
RECORDED = DATA_DIR / "recorded"


def _day_rows(feed: str, day: dt.date) -> list[tuple[int, int]]:
    return list(Snapshot.objects.filter(feed=feed, taken_on=day).order_by("position").values_list("anime", "position"))


def test_feed_snapshot_loads_a_feed_end_to_end(etl):
    run = services.feed_snapshot(feed="top", taken_on=DAY)
    assert run.status == EtlRun.Status.SUCCESS
    assert (run.pages, run.requests) == (4, 4)
    assert run.items_loaded == run.items_received > 50
    rows = _day_rows("top", DAY)
    assert [position for _, position in rows] == list(range(1, len(rows) + 1))
    assert etl.request_count("/top/anime") == 4
    fmab = Anime.objects.get(mal_id=5114)
    assert fmab.title == "Fullmetal Alchemist: Brotherhood"
    assert fmab.episode_minutes == 24  # "24 min per ep"
    assert fmab.genres.filter(kind="demographic").exists()
    assert (fmab.first_seen, fmab.last_seen) == (DAY, DAY)
    assert RawPage.objects.filter(run=run).count() == 4
    day = SnapshotDay.objects.get(feed="top", taken_on=DAY)
    assert (day.rows, day.run) == (len(rows), run)


def test_feed_snapshot_is_idempotent_and_a_rerun_reuses_stored_pages(etl):
    first = services.feed_snapshot(feed="top", taken_on=DAY)
    before = _day_rows("top", DAY)
    etl.reset()
    second = services.feed_snapshot(feed="top", taken_on=DAY)
    assert second.status == EtlRun.Status.SUCCESS
    assert etl.request_count() == 0, "resume must not call Jikan again"
    assert second.requests == 0
    assert _day_rows("top", DAY) == before
    assert Snapshot.objects.filter(feed="top").count() == first.items_loaded
    assert set(Snapshot.objects.values_list("run", flat=True)) == {second.pk}


def test_fresh_asks_jikan_again(etl):
    services.feed_snapshot(feed="airing", taken_on=DAY)
    etl.reset()
    run = services.feed_snapshot(feed="airing", taken_on=DAY, fresh=True)
    assert run.requests == etl.request_count() >= 1


def test_a_rerun_replaces_the_day_and_leaves_other_days_alone(etl):
    yesterday = DAY - dt.timedelta(days=1)
    services.feed_snapshot(feed="top", taken_on=yesterday, pages=2)
    services.feed_snapshot(feed="top", taken_on=DAY, pages=2)
    # The rerun sees only the first page: the titles of page 2 have left the feed that day.
    services.feed_snapshot(feed="top", taken_on=DAY, pages=1, fresh=True)
    today = [anime for anime, _ in _day_rows("top", DAY)]
    assert len(today) == 25
    assert len(_day_rows("top", yesterday)) == 50
    assert dict(SnapshotDay.objects.values_list("taken_on", "rows")) == {yesterday: 50, DAY: 25}
    assert set(today) < {anime for anime, _ in _day_rows("top", yesterday)}


def test_duplicates_across_pages_keep_their_first_position(etl):
    etl.inject("duplicates", path="/top/anime")  # the first request is page 1: nothing to repeat yet
    etl.inject("duplicates", path="/top/anime")
    run = services.feed_snapshot(feed="top", taken_on=DAY, pages=2)
    assert run.items_duplicate == 5
    assert run.items_loaded == run.items_received - 5
    rows = _day_rows("top", DAY)
    assert [position for _, position in rows] == list(range(1, len(rows) + 1))
    assert len({anime for anime, _ in rows}) == len(rows)


def test_bad_items_are_rejected_recorded_and_the_run_goes_on(etl):
    etl.inject("bad_items", path="/top/anime")
    run = services.feed_snapshot(feed="top", taken_on=DAY, pages=1)
    assert run.status == EtlRun.Status.PARTIAL
    assert (run.items_received, run.items_rejected, run.items_loaded) == (25, 3, 22)
    reasons = set(Rejection.objects.filter(run=run).values_list("field", "reason"))
    assert reasons == {
        ("mal_id", "must be a positive integer"),
        ("members", "must not be negative"),
        ("score", "must be a number"),
    }


def test_the_quality_gate_fails_the_run_and_keeps_the_previous_data(etl):
    services.feed_snapshot(feed="movies", taken_on=DAY)
    before = _day_rows("movies", DAY)
    assert len(before) == 4
    etl.inject("bad_items", path="/top/anime")
    run = services.feed_snapshot(feed="movies", taken_on=DAY, fresh=True)
    assert run.status == EtlRun.Status.FAILED
    assert "Quality gate" in run.error
    assert (run.items_rejected, run.items_loaded) == (3, 0), "a failed run loaded nothing"
    assert Rejection.objects.filter(run=run).count() == 3, "rejections survive the rollback"
    assert _day_rows("movies", DAY) == before
    assert SnapshotDay.objects.get(feed="movies", taken_on=DAY).rows == 4


def test_jikan_down_fails_the_run_and_the_last_good_snapshot_stays(etl):
    services.feed_snapshot(feed="airing", taken_on=DAY)
    before = _day_rows("airing", DAY)
    etl.inject("500", times=5)
    run = services.feed_snapshot(feed="airing", taken_on=DAY, fresh=True)
    assert run.status == EtlRun.Status.FAILED
    assert run.error
    assert (run.requests, run.retries) == (5, 4)
    assert _day_rows("airing", DAY) == before


def test_a_failed_extraction_resumes_from_the_stored_pages(etl):
    etl.inject("latency", seconds=0, path="/top/anime")  # page 1 passes
    etl.inject("404", path="/top/anime")  # page 2 fails for good (a 404 is not retried)
    failed = services.feed_snapshot(feed="top", taken_on=DAY, pages=2)
    assert failed.status == EtlRun.Status.FAILED
    assert not Snapshot.objects.exists()
    etl.reset()
    run = services.feed_snapshot(feed="top", taken_on=DAY, pages=2)
    assert run.status == EtlRun.Status.SUCCESS
    assert etl.request_count() == run.requests == 1, "only the missing page is fetched"
    assert [r.params.get("page") for r in etl.requests] == ["2"]
    assert len(_day_rows("top", DAY)) == 50


def test_a_transient_error_is_retried_and_the_run_succeeds(etl):
    etl.inject("429", times=2, path="/top/anime")
    run = services.feed_snapshot(feed="top", taken_on=DAY, pages=1)
    assert run.status == EtlRun.Status.SUCCESS
    assert (run.requests, run.retries, run.rate_limited) == (3, 2, 2)


def test_a_run_is_skipped_while_another_holds_the_feed(etl):
    with feed_lock("top") as held:
        assert held
        run = services.feed_snapshot(feed="top", taken_on=DAY)
    assert run.status == EtlRun.Status.SKIPPED
    assert etl.request_count() == 0
    assert not Snapshot.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_of_a_feed_make_one_run_and_one_skip(etl):
    etl.inject("latency", seconds=0.5, path="/top/anime")
    results: list[EtlRun] = []
    threads = [
        threading.Thread(target=lambda: results.append(services.feed_snapshot(feed="top", taken_on=DAY, pages=1)))
        for _ in range(2)
    ]
    # The second starts once the first holds the lock and waits on Jikan: on the embedded SQLite a write
    # racing the first run's load transaction would fail with "table is locked" instead of skipping.
    threads[0].start()
    wait_until(lambda: etl.request_count() >= 1, timeout=10, message="the first run's request")
    threads[1].start()
    for thread in threads:
        thread.join()
    assert sorted(run.status for run in results) == [EtlRun.Status.SKIPPED, EtlRun.Status.SUCCESS]
    assert Snapshot.objects.filter(feed="top", taken_on=DAY).count() == 25


def test_season_feed_follows_every_page(etl):
    run = services.feed_snapshot(feed="season", taken_on=DAY)
    assert run.status == EtlRun.Status.SUCCESS
    assert run.pages == etl.request_count("/seasons/now") >= 1
    assert Snapshot.objects.filter(feed="season").count() == run.items_loaded


def test_seasons_backfill_adds_titles_without_snapshots(etl):
    etl.serve("/seasons/2018/winter", ["v4_seasons_2018_winter_page1_2022-12-05.json"])
    runs = services.seasons_backfill(from_year=2018, to_year=2018)
    assert [run.feed for run in runs] == [f"backfill-2018-{s}" for s in ("winter", "spring", "summer", "fall")]
    winter = runs[0]
    assert winter.status == EtlRun.Status.SUCCESS
    assert winter.items_loaded == 25
    assert Anime.objects.filter(year=2018, season="winter").count() >= 20
    assert not Snapshot.objects.exists()


def test_snapshot_committed_is_sent_after_a_successful_run(etl):
    received = []

    def listener(sender, run, feed, taken_on, **kwargs):
        received.append((run.pk, feed, taken_on, Snapshot.objects.filter(run=run).count()))

    snapshot_committed.connect(listener)
    try:
        run = services.feed_snapshot(feed="airing", taken_on=DAY)
    finally:
        snapshot_committed.disconnect(listener)
    assert received == [(run.pk, "airing", DAY, run.items_loaded)]


def test_etl_prune_deletes_old_raw_pages_and_runs(etl):
    run = services.feed_snapshot(feed="airing", taken_on=DAY)
    old = EtlRunFactory(status=EtlRun.Status.FAILED)
    EtlRun.objects.filter(pk=old.pk).update(started_at=old.started_at - dt.timedelta(days=400))
    RawPage.objects.filter(run=run).update(fetched_at=run.started_at - dt.timedelta(days=100))
    raw_pages, runs = services.etl_prune()
    assert raw_pages == run.pages
    assert runs == 1
    assert EtlRun.objects.filter(pk=run.pk).exists()
    assert Snapshot.objects.filter(run=run).exists()


def test_unknown_feed_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown feed 'nope'; choose one of top, airing"):
        services.feed_snapshot(feed="nope", taken_on=DAY)


def test_anime_upsert_replaces_genre_and_studio_links_with_todays():
    item = json.loads((RECORDED / PAGE_12_06).read_text())["data"][0]
    first = item_validate(item)
    changed = item_validate({**item, "genres": [{"mal_id": 4, "name": "Comedy"}], "studios": []})
    assert isinstance(first, AnimeRecord)
    assert isinstance(changed, AnimeRecord)
    services.anime_upsert(records=[first], seen_on=DAY)
    services.anime_upsert(records=[changed], seen_on=DAY + dt.timedelta(days=1))
    anime = Anime.objects.get(mal_id=5114)
    assert set(anime.genres.filter(kind="genre").values_list("name", flat=True)) == {"Comedy"}
    assert {g.kind for g in anime.genres.all()} == {"genre", "theme", "demographic"}
    assert not anime.studios.exists()
    assert (anime.first_seen, anime.last_seen) == (DAY, DAY + dt.timedelta(days=1))


def test_text_reaches_the_database_exactly_whatever_it_holds():
    # The load writes with COPY on PostgreSQL: tabs, newlines, backslashes and quotes must survive.
    item = json.loads((RECORDED / PAGE_12_06).read_text())["data"][0]
    awkward = 'Tab\there, "quoted", back\\slash\\N,\nnew line; 進撃の巨人 🎌'
    record = item_validate({**item, "title": awkward, "synopsis": awkward, "title_english": "\\."})
    assert isinstance(record, AnimeRecord)

    services.anime_upsert(records=[record], seen_on=DAY)

    anime = Anime.objects.get(mal_id=record.mal_id)
    assert (anime.title, anime.synopsis, anime.title_english) == (awkward.strip(), awkward.strip(), "\\.")
    assert (anime.score, anime.aired_from, anime.airing) == (record.score, record.aired_from, record.airing)


def test_pages_are_requested_one_at_a_time_in_order_and_never_past_the_last(etl):
    # The next page is fetched while the previous one is staged; that must not change what Jikan sees.
    run = services.feed_snapshot(feed="top", taken_on=DAY, pages=10)

    pages = [int(request.params["page"]) for request in etl.requests]
    assert pages == list(range(1, run.pages + 1))
    assert run.requests == run.pages == len(pages)
    assert list(RawPage.objects.filter(run=run).order_by("page").values_list("page", "has_next_page")) == [
        (page, page < run.pages) for page in pages
    ]


def test_no_page_is_asked_for_after_a_page_failed(etl):
    # Pages 3 and 4 are queued while page 2 is fetched; page 2's failure must stop them.
    etl.inject("latency", seconds=0, path="/top/anime")  # page 1 passes
    etl.inject("404", path="/top/anime")  # page 2 fails for good

    run = services.feed_snapshot(feed="top", taken_on=DAY, pages=4)

    assert run.status == EtlRun.Status.FAILED
    assert [request.params.get("page") for request in etl.requests] == ["1", "2"]
    assert run.requests == 2


def test_runs_abandon_fails_only_the_feeds_runs_left_running_past_the_lock_ttl(settings):
    settings.ETL_LOCK_TTL = 60
    running = EtlRun.Status.RUNNING
    stale, recent, other_feed, finished = (
        EtlRunFactory(feed="top", status=running, finished_at=None),
        EtlRunFactory(feed="top", status=running, finished_at=None),
        EtlRunFactory(feed="airing", status=running, finished_at=None),
        EtlRunFactory(feed="top", status=EtlRun.Status.SUCCESS),
    )
    long_ago = timezone.now() - dt.timedelta(seconds=61)
    EtlRun.objects.filter(pk__in=[stale.pk, other_feed.pk, finished.pk]).update(started_at=long_ago)

    assert services.runs_abandon(feed="top") == 1

    stale.refresh_from_db()
    assert (stale.status, stale.error) == (EtlRun.Status.FAILED, "abandoned: the worker stopped before finishing")
    assert stale.finished_at is not None
    statuses = dict(EtlRun.objects.exclude(pk=stale.pk).values_list("pk", "status"))
    assert statuses == {recent.pk: running, other_feed.pk: running, finished.pk: EtlRun.Status.SUCCESS}


def test_a_new_run_marks_the_feeds_abandoned_runs_failed(etl, settings):
    settings.ETL_LOCK_TTL = 60
    killed = EtlRunFactory(feed="airing", status=EtlRun.Status.RUNNING, finished_at=None)
    EtlRun.objects.filter(pk=killed.pk).update(started_at=timezone.now() - dt.timedelta(hours=1))
    run = services.feed_snapshot(feed="airing", taken_on=DAY)
    assert run.status == EtlRun.Status.SUCCESS
    killed.refresh_from_db()
    assert killed.status == EtlRun.Status.FAILED


def test_values_no_column_can_hold_cost_only_their_item_in_a_whole_run(etl):
    body = json.loads((RECORDED / PAGE_12_06).read_text())
    body["pagination"]["has_next_page"] = False
    items = body["data"]
    items[0]["members"] = 3_000_000_000
    items[1]["mal_id"] = 2**63 + 1
    items[2].update(season="spring", year=40_000)
    items[3].update(title="t" * 1000, title_english="e" * 1000, synopsis="s" * 100_000)
    items[4].update(url="javascript:alert(1)", images={"jpg": {"image_url": "https://evil.example/x.jpg"}})
    # Column ranges are the database's: SQLite's integers are all 64-bit, so members and year fit there.
    year_fits = connection.ops.integer_field_range("PositiveSmallIntegerField")[1] >= 40_000
    members_max = connection.ops.integer_field_range(Anime._meta.get_field("members").get_internal_type())[1]
    earlier = EtlRunFactory(feed="top", taken_on=DAY, status=EtlRun.Status.FAILED)
    RawPage.objects.create(run=earlier, page=1, url="u", http_status=200, body=json.dumps(body), has_next_page=False)

    run = services.feed_snapshot(feed="top", taken_on=DAY)

    assert run.status == EtlRun.Status.PARTIAL
    assert etl.request_count() == 0
    rejected = dict(Rejection.objects.filter(run=run).values_list("field", "reason"))
    assert rejected.get("members") == (f"must be at most {members_max}" if members_max < 3_000_000_000 else None)
    assert rejected["mal_id"].startswith("must be at most ")
    assert ("year" in rejected) is not year_fits
    assert run.items_loaded == 25 - len(rejected) == Snapshot.objects.filter(run=run).count()
    long = Anime.objects.get(mal_id=items[3]["mal_id"])
    assert (len(long.title), len(long.title_english), len(long.synopsis)) == (500, 500, 100_000)
    elsewhere = Anime.objects.get(mal_id=items[4]["mal_id"])
    assert (elsewhere.url, elsewhere.image_url) == ("", "")


def test_a_run_stores_every_title_variant_and_the_text_a_search_matches(etl):
    services.feed_snapshot(feed="top", taken_on=DAY, pages=1)
    fmab = Anime.objects.get(mal_id=5114)
    assert {"type": "Synonym", "title": "FMAB"} in fmab.titles
    assert {"type": "Japanese", "title": "鋼の錬金術師 FULLMETAL ALCHEMIST"} in fmab.titles
    assert "fullmetal alchemist brotherhood" in fmab.search_text
    assert {"fmab", "鋼の錬金術師", "hagane"} <= set(fmab.search_text.split())


@pytest.mark.django_db(transaction=True)  # the run closes its connection after a database error
def test_a_database_error_is_kept_in_full_for_staff_and_told_in_words_to_the_public(etl):
    raw = 'duplicate key value violates unique constraint "snapshot_unique_anime_feed_day"'
    with mock.patch.object(Staging, "titles_merge", autospec=True, side_effect=IntegrityError(raw)):
        run = services.feed_snapshot(feed="airing", taken_on=DAY, pages=1)
    assert run.status == EtlRun.Status.FAILED
    assert run.error == f"Database error: {raw}"
    assert run.public_error == "Database error; the day keeps its previous data."


@pytest.mark.parametrize(
    ("fault", "public"),
    [
        ("404", "Jikan refused the request (HTTP 404)."),
        ("500", "Jikan was unavailable (HTTP 500)."),
        ("malformed", "Jikan kept sending unreadable pages."),
    ],
)
def test_a_jikan_failure_is_told_to_the_public_without_hosts_or_urls(etl, fault, public):
    etl.inject(fault, times=10)
    run = services.feed_snapshot(feed="airing", taken_on=DAY, pages=1)
    assert run.status == EtlRun.Status.FAILED
    assert "127.0.0.1" in run.error, "staff see where it failed"
    assert run.public_error == public


def test_a_skipped_run_says_why_to_everyone(etl):
    with feed_lock("airing"):
        run = services.feed_snapshot(feed="airing", taken_on=DAY)
    assert run.error == run.public_error == "Another run of this feed is in progress."


@pytest.mark.django_db
def test_a_title_has_one_row_per_feed_and_day_on_every_database():
    # The unique constraint is the ETL's guard against a day loaded twice, on the embedded SQLite too.
    day = dt.date(2024, 1, 1)
    anime = Anime.objects.create(mal_id=1, title="A", first_seen=day, last_seen=day)
    Snapshot.objects.create(anime=anime, feed="top", taken_on=day, position=1)
    Snapshot.objects.create(anime=anime, feed="airing", taken_on=day, position=1)
    with pytest.raises(IntegrityError):
        Snapshot.objects.create(anime=anime, feed="top", taken_on=day, position=2)
