from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from snapshots import ratelimit
from snapshots.ratelimit import RateLimiter, wait_needed

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
# Scheduling noise between a grant and the moment a test thread reads the clock.
# Generous, since CI runs two xdist workers on two cores; a broken limiter gives gaps near 0 s.
JITTER = 0.08


@pytest.fixture
def redis_url(settings) -> str:
    """A Redis database other than the cache's.

    The autouse cache fixture FLUSHDBs the cache database when any test starts, on either xdist
    worker, which would wipe a limiter's history in the middle of a spacing test.
    """
    assert settings.REDIS_URL, "these tests need real Redis: run them through `make test`"
    parts = urlsplit(settings.REDIS_URL)
    return urlunsplit(parts._replace(path="/15"))


@pytest.fixture
def key() -> str:
    return f"test-{uuid.uuid4().hex}"


class FakeTime:
    """A clock that only moves when something sleeps on it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def grant_times(limiter: RateLimiter, *, threads: int, each: int) -> list[float]:
    times: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(each):
            limiter.acquire()
            with lock:
                times.append(time.monotonic())

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=10)
    return sorted(times)


def assert_spaced(times: list[float], *, interval: float) -> None:
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= interval - JITTER, gaps
    # n grants at rate r take at least (n - 1) / r; a late reading of the first grant's clock (scheduling
    # noise, as above) shortens the measured run by up to JITTER, a limiter that lets grants through early by more.
    assert times[-1] - times[0] >= (len(times) - 1) * interval - JITTER


def test_limiter_spaces_requests_at_per_second(redis_url, key):
    limiter = RateLimiter(per_second=5, per_minute=60, redis_url=redis_url, key=key)

    times = grant_times(limiter, threads=1, each=5)

    assert_spaced(times, interval=0.2)


def test_limiter_spaces_requests_of_two_threads(redis_url, key):
    limiter = RateLimiter(per_second=5, per_minute=60, redis_url=redis_url, key=key)

    times = grant_times(limiter, threads=2, each=3)

    assert len(times) == 6
    assert_spaced(times, interval=0.2)


def test_two_limiters_sharing_redis_share_the_limit(redis_url, key):
    """Two instances stand for two worker processes: each alone would allow 5/s, together still 5/s."""
    first = RateLimiter(per_second=5, per_minute=60, redis_url=redis_url, key=key)
    second = RateLimiter(per_second=5, per_minute=60, redis_url=redis_url, key=key)
    times: list[float] = []
    lock = threading.Lock()

    def worker(limiter: RateLimiter) -> None:
        for _ in range(3):
            limiter.acquire()
            with lock:
                times.append(time.monotonic())

    threads = [threading.Thread(target=worker, args=(limiter,)) for limiter in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert len(times) == 6
    assert_spaced(sorted(times), interval=0.2)


def test_limiters_with_different_keys_do_not_wait_for_each_other(redis_url, key):
    fake = FakeTime()
    first = RateLimiter(per_second=1, per_minute=60, redis_url=redis_url, key=key, sleep=fake.sleep, clock=fake.clock)
    other = RateLimiter(
        per_second=1, per_minute=60, redis_url=redis_url, key=f"{key}-other", sleep=fake.sleep, clock=fake.clock
    )

    assert first.acquire() == 0
    assert other.acquire() == 0
    assert fake.sleeps == []


def test_limiter_holds_the_per_minute_window_in_redis(redis_url, key):
    fake = FakeTime()
    limiter = RateLimiter(
        per_second=100, per_minute=3, redis_url=redis_url, key=key, sleep=fake.sleep, clock=fake.clock
    )

    waits = [limiter.acquire() for _ in range(4)]

    assert waits[:3] == [0, pytest.approx(0.01), pytest.approx(0.01)]
    # The 4th may only start once the 1st has left the 60 s window.
    assert fake.now == pytest.approx(1060.0)
    assert sum(waits) == pytest.approx(60.0)


def test_limiter_keeps_its_history_in_redis_with_an_expiry(redis_url, key):
    limiter = RateLimiter(per_second=1000, per_minute=60, redis_url=redis_url, key=key)
    limiter.acquire()
    limiter.acquire()

    client = redis.Redis.from_url(redis_url)
    assert client.zcard(f"ratelimit:{key}") == 2
    assert 0 < client.pttl(f"ratelimit:{key}") <= 61_000


def test_limiter_with_no_per_second_does_not_limit_or_touch_redis():
    fake = FakeTime()
    limiter = RateLimiter(per_second=0, per_minute=60, redis_url=UNREACHABLE_REDIS, sleep=fake.sleep, clock=fake.clock)

    assert [limiter.acquire() for _ in range(100)] == [0.0] * 100
    assert fake.sleeps == []


def test_limiter_falls_back_in_process_when_redis_is_unreachable(caplog, key):
    fake = FakeTime()
    limiter = RateLimiter(
        per_second=2, per_minute=60, redis_url=UNREACHABLE_REDIS, key=key, sleep=fake.sleep, clock=fake.clock
    )

    with caplog.at_level(logging.INFO, logger="snapshots.ratelimit"):
        waits = [limiter.acquire() for _ in range(4)]

    assert waits == [0, pytest.approx(0.5), pytest.approx(0.5), pytest.approx(0.5)]
    fallbacks = [record for record in caplog.records if "falls back" in record.getMessage()]
    assert len(fallbacks) == 1
    assert fallbacks[0].levelno == logging.WARNING
    assert "ConnectionError" in fallbacks[0].getMessage()


def test_limiter_without_redis_url_limits_threads_in_process(caplog):
    limiter = RateLimiter(per_second=5, per_minute=60, redis_url="")

    with caplog.at_level(logging.INFO, logger="snapshots.ratelimit"):
        times = grant_times(limiter, threads=2, each=3)

    assert_spaced(times, interval=0.2)
    fallbacks = [record for record in caplog.records if "falls back" in record.getMessage()]
    assert [record.levelno for record in fallbacks] == [logging.INFO]


def test_in_process_limiter_holds_the_per_minute_window():
    fake = FakeTime()
    limiter = RateLimiter(per_second=100, per_minute=2, sleep=fake.sleep, clock=fake.clock)

    limiter.acquire()
    fake.now += 30
    limiter.acquire()
    waited = limiter.acquire()

    assert waited == pytest.approx(30.0)


def test_limiter_returns_to_redis_after_an_outage(redis_url, key, caplog, monkeypatch):
    fake = FakeTime()
    limiter = RateLimiter(per_second=1, per_minute=60, redis_url=redis_url, key=key, sleep=fake.sleep, clock=fake.clock)
    working_script = limiter._script

    def broken(**kwargs: object) -> None:
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(limiter, "_script", broken)
    with caplog.at_level(logging.INFO, logger="snapshots.ratelimit"):
        limiter.acquire()  # in process; history kept locally
        assert limiter.acquire() == pytest.approx(1.0)
        monkeypatch.setattr(limiter, "_script", working_script)
        fake.now += ratelimit.REDIS_RETRY_AFTER
        limiter.acquire()

    assert redis.Redis.from_url(redis_url).zcard(f"ratelimit:{key}") == 1
    assert "shared through Redis again" in caplog.text


def test_redis_grants_are_remembered_for_a_later_fallback(redis_url, key, monkeypatch):
    fake = FakeTime()
    limiter = RateLimiter(per_second=1, per_minute=60, redis_url=redis_url, key=key, sleep=fake.sleep, clock=fake.clock)
    limiter.acquire()

    def broken(**kwargs: object) -> None:
        raise redis.TimeoutError("Redis is slow")

    monkeypatch.setattr(limiter, "_script", broken)

    # Falling back must not grant a burst right after a Redis grant.
    assert limiter.acquire() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("grants", "now", "expected"),
    [
        ([], 100.0, 0.0),
        ([99.0], 100.0, 0.0),
        ([99.5], 100.0, 0.5),
        ([41.0, 50.0, 99.0], 100.0, 1.0),  # 3 within the minute: the oldest leaves at 101
        ([40.0, 50.0, 99.0], 100.0, 0.0),  # 40 left the window at exactly 100
    ],
)
def test_wait_needed_applies_both_windows(grants, now, expected):
    assert wait_needed(grants, now=now, interval=1.0, per_minute=3) == pytest.approx(expected)


def test_wait_needed_ignores_the_minute_window_when_per_minute_is_zero():
    assert wait_needed([10.0, 20.0, 30.0], now=40.0, interval=1.0, per_minute=0) == 0.0
