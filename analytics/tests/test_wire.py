"""Kept answers on the wire: the short path, its memory tier, compression and conditional requests."""

from __future__ import annotations

import datetime as dt
import gzip
from decimal import Decimal

import brotli
import pytest
from django.contrib.staticfiles.storage import staticfiles_storage
from django.db import OperationalError
from django.urls import reverse

from analytics import cache as analytics_cache
from analytics import wire
from analytics.api.throttling import AnonThrottle
from analytics.tests.test_views import admin_change_data
from snapshots.tests.factories import AnimeFactory, EtlRunFactory, GenreFactory, SnapshotFactory

pytestmark = pytest.mark.django_db

D = dt.date(2024, 5, 31)
# Headers the answer carries whichever way it was made; X-Request-ID is checked on its own.
COMPARED = (
    "Content-Type",
    "Vary",
    "Allow",
    "Content-Disposition",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
    "X-Frame-Options",
    "Content-Security-Policy",
)
URLS = [
    "/api/v1/overview",
    "/api/v1/top-rated",
    "/api/v1/top-rated?limit=5&format=csv",
    "/api/v1/genres",
    "/api/v1/seasons",
    "/api/v1/trending",
    "/api/v1/anime/1",
    "/api/v1/anime/1/history",
    "/api/v1/anime?q=climber",
    "/",
    "/trending/",
    "/anime/1/",
]


@pytest.fixture
def history():
    """Two titles in the top feed on D and on D - 7: A climbs 5 -> 2, B falls 2 -> 5."""
    action = GenreFactory(mal_id=1, name="Action")
    a = AnimeFactory(mal_id=1, title="Climber", genres=[action], season="spring", year=2020)
    b = AnimeFactory(mal_id=2, title="Faller", season="spring", year=2020)
    for day, ranks in ((D - dt.timedelta(days=7), {a: 5, b: 2}), (D, {a: 2, b: 5})):
        run = EtlRunFactory(feed="top", taken_on=day)
        for anime, rank in ranks.items():
            SnapshotFactory(anime=anime, feed="top", taken_on=day, position=rank, rank=rank, run=run)
    return a, b


def _served(source: str, endpoint: str) -> float:
    return wire.ANSWERS.labels(endpoint=endpoint, source=source)._value.get()


def _decoded(response) -> bytes:
    body = response.content
    return {"br": brotli.decompress, "gzip": gzip.decompress}.get(response.get("Content-Encoding"), bytes)(body)


@pytest.mark.parametrize("url", URLS)
def test_kept_answers_send_the_bytes_and_headers_of_an_uncached_answer(client, history, settings, url):
    settings.ANALYTICS_CACHE_ENABLED = False
    uncached = client.get(url, HTTP_ACCEPT_ENCODING="gzip", HTTP_X_REQUEST_ID="uncached")
    settings.ANALYTICS_CACHE_ENABLED = True
    built = client.get(url, HTTP_ACCEPT_ENCODING="gzip", HTTP_X_REQUEST_ID="built")
    from_memory = client.get(url, HTTP_ACCEPT_ENCODING="gzip", HTTP_X_REQUEST_ID="memory")
    wire.forget()  # as another process would: its memory is empty, Redis has the answer
    from_redis = client.get(url, HTTP_ACCEPT_ENCODING="gzip", HTTP_X_REQUEST_ID="redis")

    assert uncached.status_code == 200
    for response, request_id in ((built, "built"), (from_memory, "memory"), (from_redis, "redis")):
        assert response.status_code == 200
        assert _decoded(response) == _decoded(uncached)
        assert {name: response.get(name) for name in COMPARED} == {name: uncached.get(name) for name in COMPARED}
        assert response["X-Request-ID"] == request_id
    assert built.content == from_memory.content == from_redis.content
    assert built["ETag"] == from_memory["ETag"] == from_redis["ETag"]


def test_a_hit_is_answered_from_memory_then_from_redis_without_the_view(client, history, django_assert_num_queries):
    url = reverse("api:genres")
    client.get(url)
    before = (_served("memory", "genres"), _served("redis", "genres"))
    client.get(url)
    wire.memory.clear()
    client.get(url)
    client.get(url)
    assert (_served("memory", "genres") - before[0], _served("redis", "genres") - before[1]) == (2, 1)
    # A hit asks the database for nothing once this process knows the data version.
    with django_assert_num_queries(0):
        assert client.get(url).status_code == 200


def test_the_same_query_in_other_spellings_is_one_kept_answer(client, history):
    url = reverse("api:top-rated")
    answers = {client.get(url, query)["ETag"] for query in ({}, {"limit": "10"}, {"limit": "010", "feed": "top"})}
    assert len(answers) == 1
    assert len({key for key in wire.memory._entries if key.startswith("analytics:wire:top-rated:")}) == 1


def test_answers_come_compressed_as_the_client_accepts(client, history):
    url = reverse("api:trending")
    plain = client.get(url).content
    for accept, coding in (("br, gzip", "br"), ("gzip", "gzip"), ("gzip;q=0, br", "br"), ("br;q=0", None), ("", None)):
        response = client.get(url, HTTP_ACCEPT_ENCODING=accept)
        assert response.get("Content-Encoding") == coding, accept
        assert _decoded(response) == plain
        assert "Accept-Encoding" in response["Vary"]
        assert int(response["Content-Length"]) == len(response.content)


def test_if_none_match_gets_a_304_without_a_body(client, history):
    url = reverse("api:top-rated")
    first = client.get(url)
    etag = first["ETag"]
    assert etag.startswith('W/"')
    for tag in (etag, etag.removeprefix("W/"), f'"other", {etag}', "*"):
        response = client.get(url, HTTP_IF_NONE_MATCH=tag)
        assert response.status_code == 304, tag
        assert response.content == b""
        assert response["ETag"] == etag
        assert response["Vary"] == first["Vary"]
        assert response["X-Request-ID"]
    assert client.get(url, HTTP_IF_NONE_MATCH='W/"stale"').status_code == 200
    # A different query is a different answer, with its own tag.
    assert client.get(url, {"limit": 5})["ETag"] != etag


def test_the_pages_revalidate_too(client, history):
    etag = client.get("/")["ETag"]
    assert client.get("/", HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_a_new_snapshot_makes_the_next_answer_fresh(client, history):
    url = reverse("api:top-rated")
    first = client.get(url)
    newcomer = AnimeFactory(mal_id=3, title="Newcomer", score=Decimal("9.90"))
    SnapshotFactory(anime=newcomer, feed="top", taken_on=D, position=1, rank=1, score=Decimal("9.90"))
    fresh = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert fresh.status_code == 200
    assert fresh["ETag"] != first["ETag"]
    assert next(row["mal_id"] for row in fresh.json()["results"]) == 3


def test_an_admin_edit_makes_the_next_answer_fresh(client, admin_client, history):
    a, _ = history
    assert "Climber" in client.get("/anime/1/").content.decode()
    change = reverse("admin:snapshots_anime_change", args=[1])
    assert admin_client.post(change, admin_change_data(a, title="Renamed")).status_code == 302
    assert "Renamed" in client.get("/anime/1/").content.decode()
    assert client.get(reverse("api:anime-detail", args=[1])).json()["title"] == "Renamed"


def test_a_deploy_with_new_static_files_builds_the_pages_afresh(client, history, monkeypatch):
    before = client.get("/")
    monkeypatch.setattr(staticfiles_storage, "manifest_hash", "next-release", raising=False)
    wire.forget()  # as the new release's process starts: its memory is empty, Redis has the old page
    after = client.get("/", HTTP_IF_NONE_MATCH=before["ETag"])
    assert after.status_code == 200
    assert after["ETag"] != before["ETag"]


def test_a_redis_outage_answers_fresh_from_the_database(client, history, settings):
    url = reverse("api:top-rated")
    kept = client.get(url).json()
    wire.memory.clear()
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    analytics_cache._skip_until = 0.0
    try:
        newcomer = AnimeFactory(mal_id=3, score=Decimal("9.90"))
        SnapshotFactory(anime=newcomer, feed="top", taken_on=D, position=1, rank=1, score=Decimal("9.90"))
        response = client.get(url)
        assert response.status_code == 200
        assert [row["mal_id"] for row in response.json()["results"]] == [3, *(r["mal_id"] for r in kept["results"])]
        # With Redis away, this process still keeps the answer for its next requests.
        before = _served("memory", "top-rated")
        assert client.get(url).json() == response.json()
        assert _served("memory", "top-rated") == before + 1
    finally:
        analytics_cache._skip_until = 0.0


def test_signed_in_people_and_the_browsable_api_go_the_whole_way(client, admin_client, history):
    url = reverse("api:overview")
    client.get(url)
    assert "ETag" not in admin_client.get(url)  # a session: never answered from kept bytes
    browsable = client.get(url, HTTP_ACCEPT="text/html")
    assert browsable["Content-Type"].startswith("text/html")
    assert "ETag" not in browsable
    assert not any(key.startswith("analytics:wire:overview:api:") for key in wire.memory._entries)


def test_a_visitor_with_a_message_waiting_gets_the_page_built_for_them(client, history):
    client.get("/")
    assert "ETag" in client.get("/")
    client.cookies["messages"] = "waiting"
    assert "ETag" not in client.get("/")


def test_a_kept_answer_still_counts_against_the_throttle(client, history, monkeypatch):
    # 20/min: one request every 3 s with a 3 s burst allowance, so two go on at once (the first one built).
    monkeypatch.setattr(AnonThrottle, "THROTTLE_RATES", {"anon": "20/min"})
    url = reverse("api:genres")
    statuses = [client.get(url).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = client.get(url)
    assert "throttled" in refused.json()["detail"].lower()
    assert int(refused["Retry-After"]) >= 1


def test_pages_are_not_throttled(client, history, monkeypatch):
    monkeypatch.setattr(AnonThrottle, "THROTTLE_RATES", {"anon": "1/min"})
    assert [client.get("/").status_code for _ in range(3)] == [200, 200, 200]


def test_a_host_not_allowed_is_refused_on_the_short_path_too(client, history):
    url = reverse("api:overview")
    client.get(url)
    assert client.get(url, HTTP_HOST="evil.example").status_code == 400


def test_a_database_outage_on_the_short_path_is_a_503(client, history, monkeypatch):
    url = reverse("api:overview")
    client.get(url)

    def down() -> str:
        raise OperationalError("connection refused")

    # The seam: the data version is the short path's only database read.
    monkeypatch.setattr(wire, "data_version", down)
    monkeypatch.setattr("analytics.cache.data_version", down)
    response = client.get(url)
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"


def test_errors_are_never_kept(client, history):
    missing = reverse("api:anime-detail", args=[999])
    assert client.get(missing).status_code == 404
    assert client.get(missing).status_code == 404
    assert "ETag" not in client.get(missing)
    assert client.get(reverse("api:top-rated"), {"limit": "0"}).status_code == 400


def test_the_memory_tier_stays_within_its_bounds():
    tier = wire.MemoryTier(max_entries=3, max_bytes=100)
    for n in range(10):
        tier.put(f"k{n}", n, 30)
        assert len(tier) <= 3
        assert tier.bytes <= 100
    assert [tier.get(f"k{n}") for n in range(10)] == [None] * 7 + [7, 8, 9]
    tier.get("k7")  # used most recently: kept when the next one arrives
    tier.put("k10", 10, 30)
    assert (tier.get("k7"), tier.get("k8")) == (7, None)
    tier.put("big", "too big", 101)
    assert tier.get("big") is None
    assert len(tier) == 3
    # A new data version empties it: no entry of the old one is asked for again.
    tier.follow("v2")
    assert tier.get("k7") is None
    assert (len(tier), tier.bytes) == (0, 0)


def test_a_url_never_kept_costs_no_data_version_check(client, history, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert client.get("/healthz").status_code == 200
