"""The anonymous API throttle: GCRA verdicts, one Redis round trip, one budget across processes, fail-open."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import redis
from django.core.cache import caches
from django.urls import reverse
from rest_framework.request import Request

from analytics import cache as analytics_cache
from analytics.api.throttling import AnonThrottle, anonymous_wait, gcra

pytestmark = pytest.mark.django_db

# 20/min: one request every 3 s and a tolerance of 6 s (10% of the minute), so a burst of 3 goes on and the
# 4th waits 3 s.
BURST_RATE = "20/min"
CLIENT = "203.0.113.7"


def _use_rate(settings, rate: str | None) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"anon": rate}}


def _burst(rf, count: int, client: str = CLIENT) -> list[int | None]:
    """The verdicts of `count` requests at once: None when one went on, else the wait in whole seconds."""
    waits = [anonymous_wait(rf.get("/api/v1/feeds", REMOTE_ADDR=client)) for _ in range(count)]
    return [None if wait is None else round(wait) for wait in waits]


def _throttle_errors() -> float:
    return analytics_cache.ERRORS.labels(endpoint="throttle")._value.get()


def test_anonymous_clients_over_the_rate_get_a_json_429_with_retry_after(client, monkeypatch):
    # 10/min: one request every 6 s, and 6 s of tolerance, so two go on at once.
    monkeypatch.setattr(AnonThrottle, "THROTTLE_RATES", {"anon": "10/min"})
    url = reverse("api:feeds")
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 429]
    refused = client.get(url)
    assert "throttled" in refused.json()["detail"].lower()
    assert 1 <= int(refused["Retry-After"]) <= 6


def test_signed_in_users_are_not_throttled(admin_client, monkeypatch):
    monkeypatch.setattr(AnonThrottle, "THROTTLE_RATES", {"anon": "1/min"})
    assert [admin_client.get(reverse("api:feeds")).status_code for _ in range(3)] == [200, 200, 200]


def test_a_burst_gets_a_tenth_of_the_period_and_each_client_has_its_own_budget(settings, rf):
    _use_rate(settings, BURST_RATE)
    assert _burst(rf, 5) == [None, None, None, 3, 3]
    assert _burst(rf, 1, client="198.51.100.1") == [None]


def test_no_anonymous_rate_means_no_throttling(settings, rf):
    _use_rate(settings, None)
    assert _burst(rf, 5) == [None] * 5


def test_a_request_is_counted_once_however_often_it_is_asked(settings, rf):
    _use_rate(settings, BURST_RATE)
    first = rf.get("/api/v1/feeds", REMOTE_ADDR=CLIENT)
    assert anonymous_wait(first) is None
    assert anonymous_wait(first) is None
    assert _burst(rf, 2) == [None, None]  # the 2nd and 3rd of the burst: the first counted once
    refused = rf.get("/api/v1/feeds", REMOTE_ADDR=CLIENT)
    wait = anonymous_wait(refused)
    assert wait is not None
    # DRF's throttle, after the short path asked about the same request, gives the same verdict.
    throttle = AnonThrottle()
    assert throttle.allow_request(Request(refused), view=None) is False
    assert throttle.wait() == wait


def test_a_request_costs_one_redis_round_trip(settings, rf, monkeypatch):
    _use_rate(settings, BURST_RATE)
    anonymous_wait(rf.get("/", REMOTE_ADDR="198.51.100.1"))  # connects, and loads the script if Redis lacks it
    sent: list[str] = []
    send_command = redis.connection.AbstractConnection.send_command

    def recording(connection, *args, **kwargs):
        sent.append(str(args[0]))
        return send_command(connection, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_command", recording)
    verdicts = _burst(rf, 5)
    assert verdicts == [None, None, None, 3, 3]  # both paths through the script: allowed and refused
    assert sent == ["EVALSHA"] * 5


def test_the_python_path_gives_the_same_verdicts_as_redis(settings, rf):
    _use_rate(settings, BURST_RATE)
    in_redis = _burst(rf, 5)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"}}
    caches["default"].clear()  # local memory outlives the test's settings; start it empty
    assert _burst(rf, 5) == in_redis == [None, None, None, 3, 3]


def test_gcra_gives_at_most_ten_percent_over_the_rate_in_any_window_of_one_period():
    # 100 per minute, in microseconds; a greedy client asks every 10 ms for five minutes.
    period, rate = 60_000_000, 100
    interval, tolerance = period // rate, period // 10
    tat, allowed = None, []
    for now in range(0, 5 * period, 10_000):
        tat, wait = gcra(tat=tat, now=now, interval=interval, tolerance=tolerance)
        if not wait:
            allowed.append(now)
    busiest = max(sum(1 for at in allowed if start <= at < start + period) for start in allowed)
    assert busiest <= rate * 1.1 + 1
    assert len(allowed) >= 5 * rate  # and it does get the rate


def test_redis_down_lets_clients_through_and_counts_the_failure(settings, rf, dedicated_redis, monkeypatch):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": dedicated_redis.url(),
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    _use_rate(settings, BURST_RATE)
    monkeypatch.setattr(analytics_cache, "_skip_until", 0.0)
    assert _burst(rf, 4) == [None, None, None, 3]
    dedicated_redis.kill()
    before = _throttle_errors()
    assert _burst(rf, 1) == [None]
    assert _throttle_errors() == before + 1
    # Then the cache is skipped for a while instead of timing out on every request.
    assert _burst(rf, 3) == [None] * 3
    assert _throttle_errors() == before + 1


# Run by each process of the test below: the real settings, pointed at the test's Redis database.
SHARED_BUDGET_CHILD = """
import sys, time
import django
django.setup()
from django.test import RequestFactory
from analytics.api.throttling import anonymous_wait
print("ready", flush=True)
start, stop = map(float, sys.stdin.readline().split())
time.sleep(max(0.0, start - time.time()))
allowed = 0
while time.time() < stop:
    allowed += anonymous_wait(RequestFactory().get("/api/v1/feeds", REMOTE_ADDR="203.0.113.7")) is None
print(allowed, flush=True)
"""


def test_two_processes_share_one_budget(settings):
    rate, seconds = 50, 2.5  # 50/s: a 20 ms interval and 100 ms of tolerance, a burst of 6
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "animedash.settings",
        "REDIS_URL": settings.REDIS_URL,
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "API_ANON_RATE": f"{rate}/s",
    }
    children = [
        subprocess.Popen(
            [sys.executable, "-c", SHARED_BUDGET_CHILD],
            cwd=settings.BASE_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        # Both start and stop at the same wall-clock instants, so their loops overlap throughout.
        start = time.time() + 0.3
        for child in children:
            assert child.stdin is not None
            child.stdin.write(f"{start} {start + seconds}\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=60)[0] for child in children]
    finally:
        for child in children:
            child.kill()
            child.wait()
    counts = [int(output.split()[-1]) for output in outputs]
    assert all(count > 0 for count in counts), counts
    burst = 6
    assert 0.9 * rate * seconds <= sum(counts) <= 1.1 * rate * seconds + burst, counts
