"""/api/v1/me/: the person's own list over the API, by session (with CSRF) or personal token; and the matrix
of who reaches what: anonymous, the owner, another person, staff."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from snapshots.tests.factories import AnimeFactory
from tracking import services
from tracking.models import ApiToken, ListEntry
from tracking.tests.factories import ListEntryFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST = reverse("me:list")


def _entry_url(mal_id: int) -> str:
    return reverse("me:list-entry", args=[mal_id])


@pytest.fixture
def owner():
    return UserFactory(username="owner")


@pytest.fixture
def entry(owner):
    return ListEntryFactory(user=owner, anime=AnimeFactory(mal_id=5114, title="Fullmetal", episodes=64), score=9)


def _as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _token_client(user) -> Client:
    _token, raw = services.api_token_create(user=user, name="script")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_the_owner_lists_reads_changes_and_removes_their_entries(owner, entry):
    client = _as(owner)
    listed = client.get(LIST).json()
    assert listed["count"] == 1
    assert listed["results"][0] | {"updated_at": None} == {
        "mal_id": 5114,
        "title": "Fullmetal",
        "episodes": 64,
        "mal_rank": entry.anime.rank,
        "status": "watching",
        "score": 9,
        "progress": 0,
        "rewatching": False,
        "times_rewatched": 0,
        "started_on": None,
        "finished_on": None,
        "notes": "",
        "updated_at": None,
    }
    assert client.get(_entry_url(5114)).json()["score"] == 9
    changed = client.patch(_entry_url(5114), {"status": "completed"}, content_type="application/json").json()
    assert (changed["status"], changed["progress"]) == ("completed", 64)
    assert client.delete(_entry_url(5114)).status_code == 204
    assert not ListEntry.objects.exists()


def test_adding_a_title(owner):
    AnimeFactory(mal_id=1, episodes=12)
    response = _as(owner).post(
        LIST, {"mal_id": 1, "status": "watching", "progress": 3}, content_type="application/json"
    )
    assert response.status_code == 201
    assert response.json()["progress"] == 3


def test_filters_sorts_and_pages(owner):
    for n, (title, status) in enumerate([("Alpha", "watching"), ("Beta", "dropped"), ("Gamma", "watching")]):
        ListEntryFactory(user=owner, anime=AnimeFactory(mal_id=n + 1, title=title), status=status)
    client = _as(owner)
    watching = client.get(LIST, {"status": "watching", "sort": "title"}).json()
    assert [row["title"] for row in watching["results"]] == ["Alpha", "Gamma"]
    assert [row["title"] for row in client.get(LIST, {"q": "bet"}).json()["results"]] == ["Beta"]
    page = client.get(LIST, {"sort": "title", "limit": 1, "offset": 1}).json()
    assert ([row["title"] for row in page["results"]], page["count"]) == (["Beta"], 3)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mal_id": 1, "score": 11}, "score"),
        ({"mal_id": 1, "progress": -1}, "progress"),
        ({"mal_id": 1, "progress": 13}, "progress"),
        ({"mal_id": 1, "status": "binging"}, "status"),
        ({"mal_id": 1, "started_on": "2999-01-01"}, "started_on"),
        ({"mal_id": 1, "started_on": "2020-05-02", "finished_on": "2020-05-01"}, "finished_on"),
        ({"mal_id": 1, "started_on": "not a date"}, "started_on"),
        ({"mal_id": 999}, "mal_id"),
        ({"mal_id": "one"}, "mal_id"),
        ({}, "mal_id"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(owner, etl, body, field):
    AnimeFactory(mal_id=1, episodes=12)
    response = _as(owner).post(LIST, body, content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()
    assert not ListEntry.objects.exists()


def test_adding_a_title_twice_is_a_400(owner, entry):
    response = _as(owner).post(LIST, {"mal_id": 5114}, content_type="application/json")
    assert response.status_code == 400
    assert "PATCH" in response.json()["mal_id"][0]


def test_a_malformed_body_is_a_400_not_a_500(owner, entry):
    response = _as(owner).generic("PATCH", _entry_url(5114), "{not json", content_type="application/json")
    assert response.status_code == 400


def test_a_personal_token_works_and_a_revoked_or_wrong_one_is_a_401(owner, entry):
    client = _token_client(owner)
    assert client.get(LIST).json()["count"] == 1
    assert ApiToken.objects.get().last_used_at is not None
    # Token requests need no CSRF token: no cookie, nothing for a forged form to ride on.
    assert client.patch(_entry_url(5114), {"score": 7}, content_type="application/json").status_code == 200
    ApiToken.objects.all().delete()
    assert client.get(LIST).status_code == 401
    assert Client(HTTP_AUTHORIZATION="Bearer ad_wrong").get(LIST).status_code == 401


def test_session_writes_need_the_csrf_token(owner, entry):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)
    assert strict.get(LIST).status_code == 200
    assert strict.patch(_entry_url(5114), {"score": 1}, content_type="application/json").status_code == 403
    assert strict.delete(_entry_url(5114)).status_code == 403
    assert strict.post(LIST, {"mal_id": 1}, content_type="application/json").status_code == 403
    assert ListEntry.objects.get().score == 9


WHO = ["anonymous", "other", "staff"]


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("get", "list", None),
        ("post", "list", {"mal_id": 5114, "status": "dropped"}),
        ("get", "entry", None),
        ("patch", "entry", {"score": 1}),
        ("delete", "entry", None),
    ],
)
def test_nobody_but_the_owner_reads_or_changes_an_entry(owner, entry, django_user_model, who, method, url, body):
    if who == "anonymous":
        client = Client()
    elif who == "staff":
        client = _as(django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-boss-123456"))
    else:
        client = _as(UserFactory(username="other"))
    target = LIST if url == "list" else _entry_url(5114)
    response = getattr(client, method)(target, json.dumps(body) if body else None, content_type="application/json")
    if who == "anonymous":
        assert response.status_code in (401, 403)
    elif method == "get" and url == "list":
        assert response.json()["count"] == 0  # their own, empty list
    elif method == "post":
        assert response.status_code == 201  # onto their own list
    else:
        assert response.status_code == 404
    mine = ListEntry.objects.get(user=owner)
    assert (mine.status, mine.score) == ("watching", 9)
    assert "Fullmetal" not in response.content.decode() or (method == "post" and who != "anonymous")


SAMPLE = (Path(__file__).parent / "data" / "animelist.xml").read_bytes()


def test_import_over_the_api_dry_run_then_apply(owner, etl, django_capture_on_commit_callbacks):
    for mal_id in (1, 32281, 37999, 5114, 20):
        AnimeFactory(mal_id=mal_id, episodes=None)
    client = _as(owner)
    dry = client.post(reverse("me:import"), {"file": SimpleUploadedFile("animelist.xml", SAMPLE)})
    assert dry.status_code == 200
    body = dry.json()
    assert (len(body["added"]), len(body["not_found"]), len(body["rejected"])) == (5, 1, 1)
    assert not ListEntry.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        applied = client.post(reverse("me:import"), {"file": SimpleUploadedFile("a.xml", SAMPLE), "apply": "true"})
    assert applied.status_code == 202
    job = client.get(reverse("me:import-job", args=[applied.json()["id"]])).json()
    assert (job["state"], job["added"], job["total"]) == ("done", 5, 6)
    assert ListEntry.objects.filter(user=owner).count() == 5
    other = _as(UserFactory(username="other"))
    assert other.get(reverse("me:import-job", args=[applied.json()["id"]])).status_code == 404


# Built with mtime=0 and named: each xdist worker must collect the same parameters.
@pytest.mark.parametrize(
    "data", [b"not xml at all", b"", gzip.compress(SAMPLE, mtime=0)[:100]], ids=["not-xml", "empty", "truncated-gzip"]
)
def test_a_bad_file_over_the_api_is_a_400_naming_the_file(owner, data):
    response = _as(owner).post(reverse("me:import"), {"file": SimpleUploadedFile("x.xml", data)})
    assert response.status_code == 400
    assert "file" in response.json()


def test_export_over_the_api_in_each_format(owner, entry):
    client = _token_client(owner)
    xml = client.get(reverse("me:export"), {"format": "xml"})
    assert xml["Content-Type"] == "application/xml"
    assert b"<series_animedb_id>5114</series_animedb_id>" in xml.content
    assert client.get(reverse("me:export"), {"format": "csv"})["Content-Type"].startswith("text/csv")
    assert client.get(reverse("me:export"), {"format": "json"}).json()["entries"][0]["mal_id"] == 5114
    bad = client.get(reverse("me:export"), {"format": "pdf"})
    assert bad.status_code == 400
    assert "format" in bad.json()
    assert Client().get(reverse("me:export")).status_code in (401, 403)
