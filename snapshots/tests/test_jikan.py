from __future__ import annotations

import itertools
import json
import logging
import pickle
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from prometheus_client import CollectorRegistry

from devtools.fakejikan import DATA_DIR, FakeJikan
from snapshots import jikan
from snapshots.jikan import (
    CircuitOpen,
    JikanBadPayload,
    JikanClient,
    JikanClientError,
    JikanRateLimited,
    JikanUnavailable,
    RequestStats,
    endpoint_template,
    error_message,
    parse_page,
    response_error_message,
    retry_after_seconds,
)
from snapshots.ratelimit import RateLimiter

DATA = DATA_DIR
TOP_06 = "v4_top_anime_type-tv_page1_2022-12-06.json"
TOP_09 = "v4_top_anime_type-tv_page1_2022-12-09.json"
# Scheduling noise between a client's send and the fake's arrival timestamp.
JITTER = 0.03


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def make_client(fake_jikan: FakeJikan) -> Iterator[Callable[..., JikanClient]]:
    """Clients against the fake Jikan, unthrottled and with tiny backoffs unless a test says otherwise."""
    clients: list[JikanClient] = []

    def make(**overrides: Any) -> JikanClient:
        options: dict[str, Any] = {
            "base_url": fake_jikan.base_url,
            "timeout": 5.0,
            "limiter": RateLimiter(per_second=0, per_minute=0),
            "backoff_base": 0.01,
            "backoff_max": 0.05,
            "breaker_cooldown": 60.0,
            **overrides,
        }
        client = JikanClient(**options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def gaps(fake: FakeJikan) -> list[float]:
    times = [request.at for request in fake.requests]
    return [later - earlier for earlier, later in itertools.pairwise(times)]


# The client's own metrics only: the global registry also holds collectors that read the database.
JIKAN_METRICS = CollectorRegistry()
for _collector in (jikan.REQUESTS, jikan.REQUEST_SECONDS, jikan.RETRIES, jikan.RATE_LIMITED, jikan.CIRCUIT_OPEN):
    JIKAN_METRICS.register(_collector)


def metric(name: str, **labels: str) -> float:
    return JIKAN_METRICS.get_sample_value(name, labels) or 0.0


# Success and parsing -------------------------------------------------------------------------------


def test_get_page_returns_items_and_paging_fields(fake_jikan, make_client):
    fake_jikan.serve("/top/anime", pages=[TOP_06, TOP_09])
    client = make_client()

    first = client.get_page("/top/anime", params={"type": "tv"}, page=1)
    second = client.get_page("/top/anime", params={"type": "tv"}, page=2)

    recorded = json.loads((DATA / "recorded" / TOP_06).read_text())
    assert first.status == 200
    assert first.items == recorded["data"]
    assert json.loads(first.body)["data"] == first.items, "the body is kept as received"
    assert (first.has_next_page, first.last_visible_page, first.current_page) == (True, 2, 1)
    assert (second.has_next_page, second.last_visible_page) == (False, 2)
    assert first.url == f"{fake_jikan.base_url}/top/anime?type=tv&page=1"
    assert [request.params for request in fake_jikan.requests] == [
        {"type": "tv", "page": "1"},
        {"type": "tv", "page": "2"},
    ]


def test_get_page_reads_a_catalogue_page_with_25_items(fake_jikan, make_client):
    page = make_client().get_page("/top/anime", params={"filter": "airing"}, page=1)

    assert page.items
    assert len(page.items) <= 25
    assert all(item["status"] == "Currently Airing" for item in page.items)
    assert page.current_page == 1


def test_get_page_accepts_the_early_v4_shape(fake_jikan, make_client):
    fake_jikan.inject("drift")

    page = make_client().get_page("/top/anime", page=1)

    assert page.current_page is None
    assert page.has_next_page is True
    assert isinstance(page.last_visible_page, int)
    assert "titles" not in page.items[0]


def test_get_page_reads_a_recorded_early_v4_page(fake_jikan, make_client):
    fake_jikan.serve("/top/anime", pages=["v4early_top_anime_trimmed-1-item_2022-02_reactive-jikan.json"])

    page = make_client().get_page("/top/anime", page=1)

    assert len(page.items) == 1
    assert (page.has_next_page, page.last_visible_page, page.current_page) == (False, 1, None)


def test_get_json_returns_non_paged_bodies(fake_jikan, make_client):
    client = make_client()

    genres = client.get_json("/genres/anime")
    anime = client.get_json("/anime/457")

    assert len(genres["data"]) == 76
    assert anime["data"]["mal_id"] == 457


def test_parse_page_treats_a_missing_pagination_as_the_only_page():
    page = parse_page(json.dumps({"data": [{"mal_id": 1}], "pagination": "weird"}), url="u", status=200)

    assert (page.has_next_page, page.last_visible_page, page.current_page) == (False, None, None)


@pytest.mark.parametrize("body", [[], "text", {"pagination": {}}, {"data": None}, {"data": {"mal_id": 1}}])
def test_parse_page_rejects_a_body_without_a_data_list(body):
    with pytest.raises(JikanBadPayload, match="without a `data` list"):
        parse_page(json.dumps(body).encode(), url="u", status=200)


@pytest.mark.parametrize("body", [b"", b"<html>busy</html>", b'{"data": [', b'{"data": "\xff"}'])
def test_parse_page_rejects_a_body_that_is_not_json(body):
    with pytest.raises(JikanBadPayload, match="not JSON"):
        parse_page(body, url="u", status=200)


# get_client() -----------------------------------------------------------------


@pytest.fixture
def unthrottled(settings, fake_jikan) -> None:
    settings.JIKAN_RATE_PER_SECOND = 0
    settings.JIKAN_BACKOFF_BASE = 0.01


def test_get_client_calls_the_configured_jikan(fake_jikan, unthrottled):
    stats = RequestStats()
    client = jikan.get_client()

    top = client.get_page("/top/anime", params={"type": "tv"}, page=2, stats=stats)
    season = client.get_page("/seasons/2018/winter", page=1, stats=stats)
    now = client.get_page("/seasons/now", page=1, stats=stats)
    genres = client.get_json("/genres/anime", stats=stats)
    anime = client.get_json("/anime/457", stats=stats)

    assert top.current_page == 2
    assert season.items
    assert now.items
    assert genres["data"]
    assert anime["data"]["mal_id"] == 457
    assert [(request.path, request.params) for request in fake_jikan.requests] == [
        ("/top/anime", {"type": "tv", "page": "2"}),
        ("/seasons/2018/winter", {"page": "1"}),
        ("/seasons/now", {"page": "1"}),
        ("/genres/anime", {}),
        ("/anime/457", {}),
    ]
    assert stats == RequestStats(requests=5)


def test_get_client_is_reused_until_its_settings_change(settings, unthrottled):
    client = jikan.get_client()
    assert jikan.get_client() is client

    settings.JIKAN_TIMEOUT = 3.5

    rebuilt = jikan.get_client()
    assert rebuilt is not client
    assert rebuilt.base_url == settings.JIKAN_BASE_URL
    assert rebuilt.limiter.per_second == 0


def test_get_client_reads_the_optional_retry_settings(settings, unthrottled):
    settings.JIKAN_MAX_ATTEMPTS = 2
    settings.JIKAN_BACKOFF_MAX = 7.0

    client = jikan.get_client()

    assert (client.max_attempts, client.backoff_max) == (2, 7.0)


# Client errors: not retried ------------------------------------------------------------------------


def test_404_is_not_retried(fake_jikan, make_client):
    stats = RequestStats()

    with pytest.raises(JikanClientError) as raised:
        make_client().get_json("/anime/999999999", stats=stats)

    assert raised.value.status == 404
    assert raised.value.message == "Not Found"
    assert fake_jikan.request_count() == 1
    assert stats == RequestStats(requests=1, failures=1)


def test_400_validation_error_reads_the_messages_object(fake_jikan, make_client):
    with pytest.raises(JikanClientError) as raised:
        make_client().get_page("/top/anime", params={"limit": 50}, page=1)

    assert raised.value.status == 400
    assert raised.value.message == "limit: Value 50 is higher than the configured '25' max value."
    assert fake_jikan.request_count() == 1


def test_a_client_error_does_not_count_towards_the_breaker(fake_jikan, make_client):
    client = make_client(breaker_threshold=2, max_attempts=1)
    for _ in range(3):
        fake_jikan.inject("500")
        with pytest.raises(JikanUnavailable):
            client.get_page("/top/anime", page=1)
        with pytest.raises(JikanClientError):
            client.get_json("/anime/999999999")

    assert client.get_page("/top/anime", page=1).items


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("errors/QUOTED_404_BadResponseException_from_issue_378.json", "Resource does not exist"),
        ("errors/QUOTED_429_jikan_rate_limit_from_code_comments.json", "You are being rate-limited."),
        ("errors/QUOTED_504_BadResponseException_from_issues_595_610_612.json", "Jikan failed to connect"),
        ("errors/SYNTHETIC_400_ValidationException_limit_over_25.json", "limit: Value 50 is higher"),
        ("errors/SYNTHETIC_429_upstream_mal_rate_limit.json", "Jikan is being rate limited by MyAnimeList."),
        ("errors/SYNTHETIC_500_UpstreamException.json", "Request to MyAnimeList.net failed."),
        ("recorded/v4_error_404_anime_-1_HttpException.json", "Not Found"),
        ("recorded/v4_error_500_reviews_anime_unhandled_Exception_2022-12-15.json", "Unhandled Exception."),
    ],
)
def test_error_message_reads_every_recorded_error_body(name, expected):
    body = json.loads((DATA / name).read_text())

    message = error_message(body, fallback="fallback")

    assert message.startswith(expected)
    assert "/var/www" not in message  # the `trace` of an unhandled 500 stays out


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": "429", "message": "  slow down  "}, "slow down"),
        (
            {"status": 400, "messages": {"type": ["bad"], "page": "must be positive"}},
            "type: bad; page: must be positive",
        ),
        ({"status": 500, "message": "", "error": "upstream said no"}, "upstream said no"),
        ({"status": 500, "message": None, "messages": {}, "error": None}, "fallback"),
        ({}, "fallback"),
        ([], "fallback"),
        (None, "fallback"),
    ],
)
def test_error_message_tolerates_every_body_shape(body, expected):
    assert error_message(body, fallback="fallback") == expected


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "Service Unavailable"),
        (b"<html><body>nginx</body></html>", "Service Unavailable"),
        (b"upstream connect error", "upstream connect error"),
        (b'{"status": "503", "message": "maintenance"}', "maintenance"),
    ],
)
def test_response_error_message_falls_back_to_text_or_reason(content, expected):
    response = httpx.Response(503, content=content, request=httpx.Request("GET", "http://jikan.test/v4/top/anime"))

    assert response_error_message(response) == expected


# Rate limiting by Jikan ----------------------------------------------------------------------------


def test_429_without_retry_after_backs_off_then_succeeds(fake_jikan, make_client):
    fake_jikan.inject("429")
    stats = RequestStats()

    page = make_client(backoff_base=0.05, backoff_max=1.0).get_page("/top/anime", page=1, stats=stats)

    assert page.items
    assert [request.status for request in fake_jikan.requests] == [429, 200]
    assert gaps(fake_jikan)[0] >= 0.05 - JITTER
    assert stats == RequestStats(requests=2, retries=1, rate_limited=1, failures=1)


def test_429_with_retry_after_waits_that_long(fake_jikan, make_client):
    fake_jikan.inject("429", retry_after=1)

    make_client(backoff_max=5.0).get_page("/top/anime", page=1)

    assert fake_jikan.request_count() == 2
    assert gaps(fake_jikan)[0] >= 1.0 - JITTER


def test_429_with_a_retry_after_beyond_backoff_max_gives_up_at_once(fake_jikan, make_client):
    fake_jikan.inject("429", retry_after=120)

    with pytest.raises(JikanRateLimited) as raised:
        make_client(backoff_max=5.0).get_page("/top/anime", page=1)

    assert raised.value.retry_after == 120
    assert fake_jikan.request_count() == 1


@pytest.mark.parametrize(("upstream", "origin"), [(False, "jikan"), (True, "mal")])
def test_429_says_who_rate_limited(fake_jikan, make_client, upstream, origin):
    fake_jikan.inject("429", times=3, upstream=upstream)
    before = metric("jikan_rate_limited_total", origin=origin)

    with pytest.raises(JikanRateLimited) as raised:
        make_client(max_attempts=3).get_page("/seasons/now", page=1)

    assert raised.value.origin == origin
    assert raised.value.retry_after is None
    assert isinstance(raised.value, JikanUnavailable)
    assert fake_jikan.request_count() == 3
    assert metric("jikan_rate_limited_total", origin=origin) - before == 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("2", 2.0), (" 1.5 ", 1.5), ("-3", 0.0), ("soon", None)],
)
def test_retry_after_seconds_reads_delta_seconds(value, expected):
    assert retry_after_seconds(value) == expected


def test_retry_after_seconds_reads_an_http_date():
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

    assert retry_after_seconds("Wed, 01 May 2024 12:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("Wed, 01 May 2024 11:00:00 GMT", now=now) == 0.0


# Outages: retried ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["500", "504"])
def test_5xx_is_retried_then_succeeds(fake_jikan, make_client, status):
    fake_jikan.inject(status, times=2)
    stats = RequestStats()

    page = make_client().get_page("/seasons/2018/winter", page=1, stats=stats)

    assert page.items
    assert [request.status for request in fake_jikan.requests] == [int(status), int(status), 200]
    assert stats == RequestStats(requests=3, retries=2, failures=2)


def test_five_failures_raise_jikan_unavailable_then_the_breaker_opens(fake_jikan, make_client):
    fake_jikan.inject("500", times=5)
    client = make_client()

    with pytest.raises(JikanUnavailable, match=r"Request to MyAnimeList\.net failed") as raised:
        client.get_page("/top/anime", page=1)
    assert raised.value.status == 500
    assert fake_jikan.request_count() == 5

    with pytest.raises(CircuitOpen, match="until"):
        client.get_page("/top/anime", page=1)
    assert fake_jikan.request_count() == 5


@pytest.mark.parametrize("fault", ["malformed", "truncated", "no_data"])
def test_bad_payloads_are_retried(fake_jikan, make_client, fault):
    fake_jikan.inject(fault)
    stats = RequestStats()

    page = make_client().get_page("/top/anime", page=1, stats=stats)

    assert page.items
    assert fake_jikan.request_count() == 2
    assert stats == RequestStats(requests=2, retries=1, failures=1)


def test_bad_payloads_raise_jikan_bad_payload_after_the_last_attempt(fake_jikan, make_client):
    fake_jikan.inject("malformed", times=3)

    with pytest.raises(JikanBadPayload, match="not JSON"):
        make_client(max_attempts=3).get_json("/genres/anime")

    assert fake_jikan.request_count() == 3


def test_a_timeout_is_retried(fake_jikan, make_client, caplog):
    fake_jikan.inject("latency", seconds=2.0)
    stats = RequestStats()

    with caplog.at_level(logging.WARNING, logger="snapshots.jikan"):
        page = make_client(timeout=0.3).get_page("/top/anime", page=1, stats=stats)

    assert page.items
    assert fake_jikan.request_count() == 2
    assert stats == RequestStats(requests=2, retries=1, failures=1)
    assert caplog.records[0].reason == "timeout"


def test_connection_errors_are_retried_then_raise(make_client):
    client = make_client(base_url="http://127.0.0.1:1/v4", max_attempts=2)
    stats = RequestStats()

    with pytest.raises(JikanUnavailable, match="Could not talk to Jikan") as raised:
        client.get_page("/top/anime", page=1, stats=stats)

    assert raised.value.reason == "connection"
    assert stats == RequestStats(requests=2, retries=1, failures=2)


def test_a_non_retryable_5xx_is_raised_at_once(make_client):
    client = make_client()
    response = httpx.Response(501, json={"message": "nope"}, request=httpx.Request("GET", "http://jikan.test/v4/x"))

    with pytest.raises(JikanUnavailable) as raised:
        client._classify(response, parse=parse_page)

    assert raised.value.retryable is False


def test_each_retry_is_logged_with_its_status_and_wait(fake_jikan, make_client, caplog):
    fake_jikan.inject("504")

    with caplog.at_level(logging.WARNING, logger="snapshots.jikan"):
        make_client().get_page("/seasons/2018/winter", page=1)

    [record] = caplog.records
    assert record.name == "snapshots.jikan"
    assert record.status == 504
    assert record.endpoint == "/seasons/{year}/{season}"
    assert 0 < record.wait <= 0.05
    assert "retry 1 of 4" in record.getMessage()


# Circuit breaker -----------------------------------------------------------------------------------


def test_breaker_opens_then_half_opens_for_one_trial(fake_jikan, make_client):
    clock = FakeClock()
    client = make_client(breaker_threshold=3, breaker_cooldown=60.0, clock=clock)
    fake_jikan.inject("500", times=10)

    with pytest.raises(JikanUnavailable):
        client.get_page("/top/anime", page=1)
    # The breaker opened on the 3rd failure, so the 4th and 5th attempts were never sent.
    assert fake_jikan.request_count() == 3
    assert metric("jikan_circuit_open") == 1

    clock.now += 59
    with pytest.raises(CircuitOpen) as raised:
        client.get_page("/top/anime", page=1)
    assert raised.value.remaining == pytest.approx(1.0)
    assert "after 3 consecutive failed requests" in str(raised.value)
    assert fake_jikan.request_count() == 3

    fake_jikan.reset()
    clock.now += 1
    assert client.get_page("/top/anime", page=1).items
    assert client.get_page("/top/anime", page=2).items
    assert fake_jikan.request_count() == 2
    assert metric("jikan_circuit_open") == 0


def test_a_failed_trial_reopens_the_breaker(fake_jikan, make_client):
    clock = FakeClock()
    client = make_client(breaker_threshold=2, breaker_cooldown=10.0, clock=clock)
    fake_jikan.inject("504", times=10)
    with pytest.raises(JikanUnavailable):
        client.get_page("/top/anime", page=1)

    clock.now += 10
    with pytest.raises(JikanUnavailable):
        client.get_page("/top/anime", page=1)
    with pytest.raises(CircuitOpen):
        client.get_page("/top/anime", page=1)

    # Only one trial request went out: 2 failures to open, 1 trial.
    assert fake_jikan.request_count() == 3


def test_a_trial_interrupted_without_an_answer_lets_the_next_request_try(fake_jikan, make_client, monkeypatch):
    clock = FakeClock()
    client = make_client(breaker_threshold=1, clock=clock)
    fake_jikan.inject("500")
    with pytest.raises(JikanUnavailable):
        client.get_page("/top/anime", page=1)
    clock.now += 60

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(client._http, "get", interrupted)
        with pytest.raises(KeyboardInterrupt):
            client.get_page("/top/anime", page=1)

    assert client.get_page("/top/anime", page=1).items


# Rate limiter, metrics, endpoint labels -----------------------------------------------------------


@pytest.fixture
def limiter_redis_url(settings) -> str:
    # Not the cache database: the autouse cache fixture FLUSHDBs it whenever any test starts.
    assert settings.REDIS_URL, "these tests need real Redis: run them through `make test`"
    return urlunsplit(urlsplit(settings.REDIS_URL)._replace(path="/15"))


def test_requests_and_retries_are_spaced_by_the_shared_limiter(fake_jikan, make_client, limiter_redis_url):
    limiter = RateLimiter(per_second=5, per_minute=60, redis_url=limiter_redis_url, key=f"test-{uuid.uuid4().hex}")
    client = make_client(limiter=limiter, backoff_base=0.0, backoff_max=0.0)
    fake_jikan.inject("500")

    client.get_page("/top/anime", page=1)
    client.get_page("/top/anime", page=2)

    assert fake_jikan.request_count() == 3
    assert min(gaps(fake_jikan)) >= 0.2 - JITTER


def test_requests_are_counted_by_endpoint_template_and_status(fake_jikan, make_client):
    labels = {"endpoint": "/seasons/{year}/{season}"}
    before_500 = metric("jikan_requests_total", status="500", **labels)
    before_200 = metric("jikan_requests_total", status="200", **labels)
    before_retries = metric("jikan_retries_total", reason="500", **labels)
    before_seconds = metric("jikan_request_seconds_count", **labels)
    fake_jikan.inject("500")

    make_client().get_page("/seasons/2019/fall", page=1)

    assert metric("jikan_requests_total", status="500", **labels) - before_500 == 1
    assert metric("jikan_requests_total", status="200", **labels) - before_200 == 1
    assert metric("jikan_retries_total", reason="500", **labels) - before_retries == 1
    assert metric("jikan_request_seconds_count", **labels) - before_seconds == 2


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/top/anime", "/top/anime"),
        ("top/anime/", "/top/anime"),
        ("/seasons/now", "/seasons/now"),
        ("/seasons/2018/winter", "/seasons/{year}/{season}"),
        ("/seasons/-1/winter", "/seasons/{year}/{season}"),
        ("/anime/457", "/anime/{id}"),
        ("/anime/457/episodes?page=2", "/anime/{id}/episodes"),
        ("/genres/anime", "/genres/anime"),
    ],
)
def test_endpoint_template_keeps_labels_low_cardinality(path, template):
    assert endpoint_template(path) == template


# Exceptions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        JikanUnavailable("down", status=503),
        JikanRateLimited("slow", origin="mal", retry_after=2.0),
        JikanBadPayload("bad", status=200),
        JikanClientError("Jikan answered 404", status=404, message="Not Found", url="http://x"),
        CircuitOpen("open", until=datetime(2024, 1, 1, tzinfo=UTC), remaining=5.0),
    ],
)
def test_errors_survive_pickling_for_celery(error):
    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__
