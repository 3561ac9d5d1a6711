"""The anonymous API throttle: GCRA verdicts, leases, at most one Redis round trip, one budget across processes,
fail-open."""

from __future__ import annotations

import bisect
import os
import subprocess
import sys
import time

import pytest
import redis
from django.core.cache import caches
from django.test import RequestFactory
from django.urls import reverse
from django_redis import get_redis_connection
from rest_framework.request import Request

from analytics import cache as analytics_cache
from analytics.api import throttling
from analytics.api.throttling import LEASE_MAX, AnonThrottle, anonymous_wait, gcra

pytestmark = pytest.mark.django_db

# 20/min: one request every 3 s and a burst allowance of 3 s (5% of the minute), so two go on at once and the
# 3rd waits 3 s.
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
    monkeypatch.setattr(AnonThrottle, "THROTTLE_RATES", {"anon": BURST_RATE})
    url = reverse("api:feeds")
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 429]
    refused = client.get(url)
    assert "throttled" in refused.json()["detail"].lower()
    assert 1 <= int(refused["Retry-After"]) <= 3


def test_signed_in_users_are_not_throttled(admin_client, monkeypatch):
    monkeypatch.setattr(AnonThrottle, "THROTTLE_RATES", {"anon": "1/min"})
    assert [admin_client.get(reverse("api:feeds")).status_code for _ in range(3)] == [200, 200, 200]


def test_a_burst_gets_a_twentieth_of_the_period_and_each_client_has_its_own_budget(settings, rf):
    _use_rate(settings, BURST_RATE)
    assert _burst(rf, 5) == [None, None, 3, 3, 3]
    assert _burst(rf, 1, client="198.51.100.1") == [None]


def test_no_anonymous_rate_means_no_throttling(settings, rf):
    _use_rate(settings, None)
    assert _burst(rf, 5) == [None] * 5


def test_a_request_is_counted_once_however_often_it_is_asked(settings, rf):
    _use_rate(settings, BURST_RATE)
    first = rf.get("/api/v1/feeds", REMOTE_ADDR=CLIENT)
    assert anonymous_wait(first) is None
    assert anonymous_wait(first) is None
    assert _burst(rf, 1) == [None]  # the 2nd of the burst: the first counted once
    refused = rf.get("/api/v1/feeds", REMOTE_ADDR=CLIENT)
    wait = anonymous_wait(refused)
    assert wait is not None
    # DRF's throttle, after the short path asked about the same request, gives the same verdict.
    throttle = AnonThrottle()
    assert throttle.allow_request(Request(refused), view=None) is False
    assert throttle.wait() == wait


@pytest.fixture
def redis_commands(monkeypatch) -> list[str]:
    """The commands sent to Redis after this process connected and Redis loaded the script."""
    anonymous_wait(RequestFactory().get("/", REMOTE_ADDR="198.51.100.1"))
    sent: list[str] = []
    send_command = redis.connection.AbstractConnection.send_command

    def recording(connection, *args, **kwargs):
        sent.append(str(args[0]))
        return send_command(connection, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_command", recording)
    return sent


def test_a_request_costs_at_most_one_redis_round_trip_and_a_refused_client_none_until_its_wait_is_over(
    settings, rf, redis_commands
):
    _use_rate(settings, BURST_RATE)
    assert _burst(rf, 5) == [None, None, 3, 3, 3]  # both ways through the script: allowed and refused
    assert redis_commands == ["EVALSHA"] * 3  # the last two are refused on the first refusal's word


def test_a_busy_client_takes_leases_and_costs_a_round_trip_for_many_requests(settings, rf, redis_commands):
    _use_rate(settings, "100000/min")
    assert _burst(rf, 1000) == [None] * 1000
    # Leases of 1, 2, 4 ... 64 (127 requests), then LEASE_MAX each.
    assert len(redis_commands) == 7 + -(-(1000 - 127) // LEASE_MAX)


def test_a_client_that_asks_rarely_is_charged_only_for_its_requests(settings, rf, redis_commands):
    _use_rate(settings, "100000/min")  # 600 us apart
    for _ in range(3):
        assert _burst(rf, 1) == [None]
        for lease in throttling._leases.values():
            lease.expires = 0.0  # as if the next request came long after
    client = get_redis_connection("default")
    seconds, microseconds = client.time()
    ahead = int(client.get(caches["default"].make_key(f"throttle:anon:{CLIENT}"))) - (
        seconds * 1_000_000 + microseconds
    )
    assert ahead <= 3 * 600
    assert redis_commands.count("EVALSHA") == 3


def test_the_python_path_gives_the_same_verdicts_as_redis(settings, rf):
    _use_rate(settings, BURST_RATE)
    in_redis = _burst(rf, 5)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"}}
    caches["default"].clear()  # local memory outlives the test's settings; start it empty
    assert _burst(rf, 5) == in_redis == [None, None, 3, 3, 3]


def test_leases_spent_as_late_as_allowed_give_at_most_ten_percent_over_the_rate_in_any_window_of_one_period():
    # 6000 per minute, in microseconds. A greedy client behind many processes takes a lease of LEASE_MAX every
    # millisecond for five minutes. In even minutes each lease is spent as late as it may be (when it lapses),
    # in odd minutes at once: so a window can hold both an even minute's late tail and a whole odd minute.
    period, rate = 60_000_000, 6000
    interval, burst = period // rate, period // 20
    tat, spent = None, []
    for now in range(0, 5 * period, 1000):
        tat, granted, _wait = gcra(tat=tat, now=now, interval=interval, burst=burst, wanted=LEASE_MAX)
        spent += [now + burst if (now // period) % 2 == 0 else now] * granted
    spent.sort()
    busiest = max(bisect.bisect_left(spent, start + period) - first for first, start in enumerate(spent))
    assert busiest <= rate * 1.1 + 1
    assert len(spent) >= 5 * rate  # and it does get the rate


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
    assert _burst(rf, 3) == [None, None, 3]
    dedicated_redis.kill()
    before = _throttle_errors()
    other = "198.51.100.2"  # CLIENT's refusal stands on this process's word until its wait is over
    assert _burst(rf, 1, client=other) == [None]
    assert _throttle_errors() == before + 1
    # Then the cache is skipped for a while instead of timing out on every request.
    assert _burst(rf, 3, client=other) == [None] * 3
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


# 50/s: 20 ms apart, a burst of 3 and leases of one; 2000/s: 500 us apart, a burst of 101 and leases of 12.
@pytest.mark.parametrize("rate", [50, 2000])
def test_two_processes_share_one_budget(settings, rate):
    seconds = 2.5
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
    burst = rate // 20 + 1
    assert 0.9 * rate * seconds <= sum(counts) <= 1.1 * rate * seconds + burst, counts
