"""Importing a MyAnimeList export (dry run, then a job), the merge rules, and export -> import round trips."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from snapshots.tests.factories import AnimeFactory
from tracking import exports, services
from tracking.mal_xml import MalEntry, parse_export, render_export
from tracking.models import ImportJob, ListEntry
from tracking.tests.factories import ListEntryFactory, UserFactory

pytestmark = pytest.mark.django_db

SAMPLE = (Path(__file__).parent / "data" / "animelist.xml").read_bytes()
KNOWN = {1: 26, 32281: 1, 37999: 12, 5114: 64, 20: 220}  # the sample's titles AnimeDash knows, with episodes


@pytest.fixture
def titles():
    return {mal_id: AnimeFactory(mal_id=mal_id, episodes=episodes) for mal_id, episodes in KNOWN.items()}


@pytest.fixture
def fan(client):
    user = UserFactory(username="nagato")
    client.force_login(user)
    return user


def _item(mal_id: int, **fields) -> MalEntry:
    defaults: dict[str, Any] = dict(
        mal_id=mal_id, title=f"Title {mal_id}", series_type="TV", episodes=KNOWN.get(mal_id), watched_episodes=0,
        started_on=None, finished_on=None, score=None, status="watching", notes="", times_watched=0,
        rewatching=False, tags="",
    )  # fmt: skip
    return MalEntry(**(defaults | fields))


def _apply(user, items, *, overwrite=False) -> ImportJob:
    job = services.import_job_create(user=user, file_name="list.xml", items=items, overwrite=overwrite)
    return services.import_apply(job_id=job.pk)


def _upload(client, data: bytes, name="animelist.xml", **extra):
    return client.post(reverse("tracking:import"), {"file": SimpleUploadedFile(name, data), **extra})


def test_the_dry_run_shows_what_would_happen_and_changes_nothing(client, fan, titles):
    response = _upload(client, gzip.compress(SAMPLE), name="animelist.xml.gz")
    job = ImportJob.objects.get()
    assert response["Location"] == reverse("tracking:import-job", args=[job.pk])
    page = client.get(response["Location"]).content.decode()
    assert "<strong>5</strong> to add" in page
    assert "<strong>1</strong> not found" in page  # 52991 is not known here
    assert not ListEntry.objects.exists()
    assert job.state == "preview"


def test_applying_runs_the_job_and_reports_counts_and_what_it_could_not_resolve(
    client, fan, titles, etl, django_capture_on_commit_callbacks
):
    _upload(client, SAMPLE)
    job = ImportJob.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("tracking:import-job", args=[job.pk]))
    job.refresh_from_db()
    assert (job.state, job.processed, job.added, job.changed, job.unchanged) == ("done", 6, 5, 0, 0)
    assert [row["mal_id"] for row in job.unresolved] == [52991]
    assert job.unresolved[0]["reason"] == "No such title on MyAnimeList."  # the fake Jikan's 404
    assert ListEntry.objects.filter(user=fan).count() == 5
    statuses = dict(ListEntry.objects.values_list("anime_id", "status"))
    assert statuses == {1: "completed", 32281: "completed", 37999: "watching", 5114: "on_hold", 20: "dropped"}
    page = client.get(reverse("tracking:import-job", args=[job.pk])).content.decode()
    assert "<strong>5</strong> added" in page
    # Applying twice queues nothing more.
    assert services.import_job_queue(job=job) is False


def test_a_title_unknown_here_is_fetched_through_jikan_and_added(fan, titles, etl):
    job = _apply(fan, [_item(457, status="watching", watched_episodes=3)])
    assert job.added == 1
    assert ListEntry.objects.get(anime_id=457).anime.title  # stored as the ETL stores a title
    assert etl.request_count("/anime/457") == 1


def test_a_title_jikan_cannot_give_now_is_reported_and_added_by_a_later_import(fan, titles, etl, settings):
    settings.JIKAN_BREAKER_THRESHOLD = 100  # the retries' failures must not open the breaker for the next import
    items = [_item(457, status="plan_to_watch")]
    etl.inject("500", times=99, path="/anime/457")
    assert "next import tries again" in _apply(fan, items).unresolved[0]["reason"]
    etl.reset()
    assert _apply(fan, items).added == 1


def test_merge_never_downgrades_completed_or_dropped_unless_overwriting(fan, titles):
    ListEntryFactory(user=fan, anime=titles[1], status="completed", progress=26)
    ListEntryFactory(user=fan, anime=titles[20], status="dropped", progress=10)
    job = _apply(fan, [_item(1, status="watching", watched_episodes=3), _item(20, status="plan_to_watch")])
    assert dict(ListEntry.objects.values_list("anime_id", "status")) == {1: "completed", 20: "dropped"}
    assert job.unchanged == 2
    _apply(fan, [_item(1, status="watching", watched_episodes=3)], overwrite=True)
    assert ListEntry.objects.get(anime_id=1).status == "watching"


def test_merge_keeps_the_larger_progress_the_earlier_start_and_the_later_finish(fan, titles):
    ListEntryFactory(
        user=fan, anime=titles[5114], status="watching", progress=30,
        started_on=dt.date(2020, 1, 10), finished_on=dt.date(2020, 3, 1),
    )  # fmt: skip
    _apply(fan, [_item(5114, watched_episodes=12, started_on=dt.date(2020, 1, 1), finished_on=dt.date(2020, 2, 1))])
    entry = ListEntry.objects.get()
    assert (entry.progress, entry.started_on, entry.finished_on) == (30, dt.date(2020, 1, 1), dt.date(2020, 3, 1))


def test_an_unknown_date_stays_unknown_and_an_import_never_invents_one(fan, titles):
    ListEntryFactory(user=fan, anime=titles[37999], status="watching", started_on=dt.date(2021, 4, 1))
    _apply(
        fan, [_item(37999, status="completed", watched_episodes=12), _item(1, status="completed", watched_episodes=26)]
    )
    kept, new = ListEntry.objects.get(anime_id=37999), ListEntry.objects.get(anime_id=1)
    assert (kept.started_on, kept.finished_on) == (dt.date(2021, 4, 1), None)
    assert (new.started_on, new.finished_on) == (None, None)


def test_an_entry_breaking_a_rule_is_reported_and_the_rest_goes_on(fan, titles):
    job = _apply(fan, [_item(37999, watched_episodes=99), _item(1, status="watching")])
    assert job.added == 1
    assert "progress" in job.unresolved[0]["reason"]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><myanimelist>&lol;</myanimelist>', "DTD"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "not"),
        (gzip.compress(SAMPLE, mtime=0)[:200], "truncated"),
        (b"<html><body>My list</body></html>", "not a MyAnimeList export"),
        (b"", ""),
    ],
    ids=["xml-bomb", "png", "truncated-gzip", "html", "empty"],
)
def test_a_broken_hostile_or_wrong_file_gets_a_clear_message_and_changes_nothing(client, fan, titles, data, words):
    response = _upload(client, data)
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors["file"])
    assert words in errors
    assert not ImportJob.objects.exists()
    assert not ListEntry.objects.exists()


def test_a_decompression_bomb_is_refused_without_inflating_it(client, fan):
    import zlib

    packer = zlib.compressobj(wbits=31)
    chunk = b"\0" * 2**20
    bomb = b"".join(packer.compress(chunk) for _ in range(200)) + packer.flush()  # 200 MB of zeros, ~200 KB
    response = _upload(client, bomb, name="animelist.xml.gz")
    assert "larger than" in " ".join(response.context["form"].errors["file"])
    assert not ImportJob.objects.exists()


def test_an_upload_over_the_cap_is_refused(client, fan):
    response = _upload(client, b"<myanimelist>" + b" " * (5 * 2**20 + 1))
    assert "larger than 5 MB" in " ".join(response.context["form"].errors["file"])


def test_nobody_else_sees_or_applies_an_import(client, fan, titles):
    _upload(client, SAMPLE)
    job = ImportJob.objects.get()
    client.force_login(UserFactory())
    assert client.get(reverse("tracking:import-job", args=[job.pk])).status_code == 404
    assert client.post(reverse("tracking:import-job", args=[job.pk])).status_code == 404
    job.refresh_from_db()
    assert job.state == "preview"


def test_export_then_import_into_an_empty_account_gives_the_same_list(client, fan, titles):
    ListEntryFactory(
        user=fan,
        anime=titles[1],
        status="completed",
        score=10,
        progress=26,
        started_on=dt.date(2020, 1, 1),
        finished_on=dt.date(2020, 2, 1),
        notes="Tank! & <3 ]]>",
    )
    ListEntryFactory(user=fan, anime=titles[37999], status="watching", progress=5, rewatching=True, times_rewatched=2)
    ListEntryFactory(user=fan, anime=titles[20], status="plan_to_watch")
    response = client.get(reverse("tracking:export"), {"format": "xml"})
    assert response["Content-Disposition"].startswith('attachment; filename="animedash-nagato-')
    twin = UserFactory(username="twin")
    _apply(twin, parse_export(response.content).entries)
    fields = ("anime_id", "status", "score", "progress", "started_on", "finished_on", "notes", "rewatching",
              "times_rewatched")  # fmt: skip
    mine = list(ListEntry.objects.filter(user=fan).order_by("anime_id").values_list(*fields))
    theirs = list(ListEntry.objects.filter(user=twin).order_by("anime_id").values_list(*fields))
    assert mine == theirs


def test_csv_and_json_exports_hold_every_entry(client, fan, titles):
    ListEntryFactory(user=fan, anime=titles[1], status="completed", score=9)
    csv_body = client.get(reverse("tracking:export"), {"format": "csv"}).content.decode()
    assert csv_body.splitlines()[0].startswith("mal_id,title,series_type,episodes,status,score")
    assert ",completed,9," in csv_body
    data = json.loads(client.get(reverse("tracking:export"), {"format": "json"}).content)
    assert data["username"] == "nagato"
    assert data["entries"][0]["mal_id"] == 1
    assert client.get(reverse("tracking:export"), {"format": "pdf"}).status_code == 302


def test_the_export_renders_with_the_selector_it_shares_with_the_api(fan, titles):
    ListEntryFactory(user=fan, anime=titles[1])
    file = exports.list_export(user=fan, fmt="xml")
    assert parse_export(file.body).entries[0].mal_id == 1
    assert file.body == render_export("nagato", parse_export(file.body).entries)
