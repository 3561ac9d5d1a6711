"""Chaos experiments on the ETL: real processes on loopback (fake Jikan, a redis-server of the test's own,
PostgreSQL, a Celery worker), faults injected, then assertions on the data. deploy/docs/chaos.md has the
hypotheses and the numbers observed.

Each test records its numbers with `record_property` (`pytest --junitxml=...` collects them).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import signal
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from celery import Celery
from django.db import connection
from django.utils import timezone

from devtools.fakejikan import FakeJikan
from devtools.testing import RedisServer, start_celery_worker, wait_until
from snapshots import services, tasks
from snapshots.models import Anime, EtlRun, RawPage, Rejection, Snapshot, SnapshotDay
from snapshots.staging import Staging

DAY = dt.date(2024, 5, 1)
YESTERDAY = DAY - dt.timedelta(days=1)
Status = EtlRun.Status


@pytest.fixture
def chaos_etl(settings, etl: FakeJikan, dedicated_redis: RedisServer) -> FakeJikan:
    """The ETL against the fake Jikan, with its lock and rate limiter on the test's own redis-server."""
    settings.REDIS_URL = dedicated_redis.url(1)
    return etl


def _bodies(run: EtlRun) -> dict[int, Any]:
    """The run's stored pages, decoded: {page: body}."""
    return {page: json.loads(body) for page, body in RawPage.objects.filter(run=run).values_list("page", "body")}


def _rows(feed: str, day: dt.date) -> list[tuple[Any, ...]]:
    return list(
        Snapshot.objects.filter(feed=feed, taken_on=day)
        .order_by("position")
        .values_list("anime", "position", "rank", "score", "members", "run")
    )


def _assert_one_clean_day(feed: str, day: dt.date, run: EtlRun) -> None:
    """The day holds exactly the run's rows: positions 1..n, each title once."""
    rows = _rows(feed, day)
    assert len(rows) == run.items_loaded > 0
    assert [position for _, position, *_ in rows] == list(range(1, len(rows) + 1))
    assert len({anime for anime, *_ in rows}) == len(rows)
    assert {row[-1] for row in rows} == {run.pk}
    assert SnapshotDay.objects.get(feed=feed, taken_on=day).rows == len(rows)


def _timed(call: Callable[[], EtlRun]) -> tuple[EtlRun, float]:
    started = time.monotonic()
    run = call()
    return run, time.monotonic() - started


def _in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run `target` in a thread with its own database connection; its answer or error lands in the dict."""
    outcome: dict[str, Any] = {}

    def body() -> None:
        try:
            outcome["value"] = target()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=body, name="chaos-run", daemon=True)
    thread.start()
    return thread, outcome


def _request_gaps(fake: FakeJikan) -> list[float]:
    times = [request.at for request in fake.requests]
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def _most_in_one_second(fake: FakeJikan, *, slack: float) -> int:
    """The most requests that arrived within any window of (1 s - slack)."""
    times = [request.at for request in fake.requests]
    return max((sum(1 for t in times if start <= t < start + 1.0 - slack) for start in times), default=0)


# 1. Jikan slower than the timeout ------------------------------------------------------------------


@pytest.mark.django_db
def test_jikan_slower_than_the_timeout_fails_the_run_after_retries_and_keeps_yesterday(
    settings, chaos_etl, record_property
):
    settings.JIKAN_TIMEOUT = 0.2
    services.feed_snapshot(feed="airing", taken_on=YESTERDAY)
    before = _rows("airing", YESTERDAY)
    chaos_etl.reset()
    chaos_etl.inject("latency", seconds=1.0, times=20)  # every attempt, five times the timeout

    run, elapsed = _timed(lambda: services.feed_snapshot(feed="airing", taken_on=DAY))

    assert run.status == Status.FAILED
    assert run.error.startswith("Jikan did not answer http://127.0.0.1:")
    assert run.error.endswith("/v4/top/anime in time (ReadTimeout)")
    assert (run.requests, run.retries) == (5, 4)
    assert chaos_etl.request_count() == 5
    # Five attempts of 0.2 s and millisecond backoffs: the run does not hang on a slow Jikan.
    assert 1.0 <= elapsed < 5.0
    assert _rows("airing", YESTERDAY) == before
    assert not Snapshot.objects.filter(taken_on=DAY).exists()
    assert list(SnapshotDay.objects.values_list("taken_on", flat=True)) == [YESTERDAY]
    record_property("requests", run.requests)
    record_property("retries", run.retries)
    record_property("seconds", round(elapsed, 2))


# 2. 5xx bursts and the circuit breaker -------------------------------------------------------------


@pytest.mark.django_db
def test_a_short_5xx_burst_is_retried_and_the_run_recovers(chaos_etl, record_property):
    chaos_etl.inject("500", times=2, path="/top/anime")
    chaos_etl.inject("504", times=1, path="/top/anime")

    run = services.feed_snapshot(feed="top", taken_on=DAY)

    assert run.status == Status.SUCCESS
    assert (run.pages, run.requests, run.retries) == (4, 7, 3)
    assert [request.status for request in chaos_etl.requests[:4]] == [500, 500, 504, 200]
    _assert_one_clean_day("top", DAY, run)
    record_property("requests", run.requests)
    record_property("retries", run.retries)


@pytest.mark.django_db
def test_five_consecutive_5xx_open_the_breaker_so_the_next_run_fails_fast_then_it_closes(
    settings, chaos_etl, record_property
):
    cooldown = 2.0
    settings.JIKAN_BREAKER_COOLDOWN = cooldown
    chaos_etl.inject("500", times=5)

    first = services.feed_snapshot(feed="airing", taken_on=DAY)
    half_open_at = time.monotonic() + cooldown
    assert first.status == Status.FAILED
    assert first.error.startswith("Jikan answered 500 for http://127.0.0.1:")
    assert (first.requests, first.retries) == (5, 4)

    # Jikan is healthy again, but the breaker does not know yet: the next run must not call it.
    chaos_etl.reset()
    second, fail_fast = _timed(lambda: services.feed_snapshot(feed="airing", taken_on=DAY))
    assert second.status == Status.FAILED
    assert second.error.startswith("Jikan circuit breaker is open after 5 consecutive failed requests; not calling")
    assert second.requests == 0
    assert chaos_etl.request_count() == 0
    assert fail_fast < 1.0

    # After the cooldown one trial request goes through; it succeeds, so the breaker closes.
    wait_until(lambda: time.monotonic() >= half_open_at, timeout=cooldown + 1, message="the breaker's cooldown")
    third = services.feed_snapshot(feed="airing", taken_on=DAY)
    assert third.status == Status.SUCCESS
    assert third.requests == chaos_etl.request_count() >= 1
    _assert_one_clean_day("airing", DAY, third)
    record_property("requests_first_run", first.requests)
    record_property("requests_second_run", second.requests)
    record_property("fail_fast_seconds", round(fail_fast, 3))


# 3. A 429 storm ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_429_storm_never_pushes_the_client_above_its_rate_and_the_run_recovers(
    settings, chaos_etl, dedicated_redis, record_property
):
    rate = 5
    settings.JIKAN_RATE_PER_SECOND = rate
    settings.JIKAN_RATE_PER_MINUTE = 60
    # Page 1: four 429s in a row (one short of the breaker). Page 2: two 429s saying "Retry-After: 0",
    # so only the limiter stands between the retries and Jikan. Then the storm is over.
    chaos_etl.inject("429", times=4, path="/top/anime")
    chaos_etl.inject("latency", seconds=0, path="/top/anime")  # a normal answer
    chaos_etl.inject("429", times=2, path="/top/anime", retry_after=0)

    run, elapsed = _timed(lambda: services.feed_snapshot(feed="top", taken_on=DAY))

    assert run.status == Status.SUCCESS
    assert (run.requests, run.retries, run.rate_limited) == (10, 6, 6)
    assert [request.status for request in chaos_etl.requests] == [429] * 4 + [200] + [429] * 2 + [200] * 3
    # The grants, as the limiter shared through Redis recorded them: exactly 1/rate apart or more.
    grants = [at for _, at in dedicated_redis.client(1).zrange("ratelimit:jikan", 0, -1, withscores=True)]
    assert len(grants) == run.requests
    grant_gaps = [later - earlier for earlier, later in itertools.pairwise(grants)]
    assert min(grant_gaps) >= 1 / rate - 0.001
    # What Jikan saw: arrival times carry scheduling jitter (tens of ms on a loaded 2-CPU box) on top
    # of the spacing, but no window of about a second ever holds more than `rate` requests.
    gaps = _request_gaps(chaos_etl)
    assert min(gaps) >= 1 / rate - 0.05, gaps
    assert _most_in_one_second(chaos_etl, slack=0.05) <= rate
    assert (chaos_etl.requests[-1].at - chaos_etl.requests[0].at) >= (run.requests - 1) / rate - 0.05
    _assert_one_clean_day("top", DAY, run)
    record_property("requests", run.requests)
    record_property("rate_limited", run.rate_limited)
    record_property("min_grant_gap_seconds", round(min(grant_gaps), 3))
    record_property("min_arrival_gap_seconds", round(min(gaps), 3))
    record_property("seconds", round(elapsed, 2))


# 4. Malformed, truncated and drifted payloads ------------------------------------------------------


@pytest.mark.django_db
def test_bad_payloads_are_retried_bad_items_rejected_and_nothing_else_is_lost(chaos_etl, record_property):
    services.feed_snapshot(feed="top", taken_on=YESTERDAY, pages=2)
    services.feed_snapshot(feed="airing", taken_on=DAY)
    others = {("top", YESTERDAY): _rows("top", YESTERDAY), ("airing", DAY): _rows("airing", DAY)}
    anime_before = Anime.objects.count()
    chaos_etl.reset()
    for fault in ("malformed", "truncated", "latency", "no_data", "drift", "bad_items"):
        # Page 1: HTML, then half a body, then good. Page 2: no `data`, then the early-v4 shape.
        # Page 3: three broken items. Page 4: good.
        chaos_etl.inject(fault, path="/top/anime", **({"seconds": 0} if fault == "latency" else {}))

    run = services.feed_snapshot(feed="top", taken_on=DAY)

    assert run.status == Status.PARTIAL
    assert (run.pages, run.requests, run.retries) == (4, 7, 3)
    assert [request.status for request in chaos_etl.requests] == [200] * 7, "bad bodies come with a 200"
    served = sum(len(body["data"]) for body in _bodies(run).values())
    assert (run.items_received, run.items_rejected, run.items_loaded) == (served, 3, served - 3)
    assert set(Rejection.objects.filter(run=run).values_list("page", "field")) == {
        (3, "mal_id"),
        (3, "members"),
        (3, "score"),
    }
    # Only good bodies are stored; the drifted page is kept as it came (no current_page).
    pages = {page: body["pagination"] for page, body in _bodies(run).items()}
    assert sorted(pages) == [1, 2, 3, 4]
    assert "current_page" not in pages[2]
    assert "current_page" in pages[1]
    _assert_one_clean_day("top", DAY, run)
    assert Anime.objects.count() >= anime_before
    for (feed, day), rows in others.items():
        assert _rows(feed, day) == rows, f"{feed} {day} changed"

    # A page that stays bad through every attempt fails the run; the day keeps what it had.
    today = _rows("top", DAY)
    chaos_etl.reset()
    chaos_etl.inject("truncated", times=5, path="/top/anime")
    failed = services.feed_snapshot(feed="top", taken_on=DAY, fresh=True)
    assert failed.status == Status.FAILED
    assert failed.error.startswith("Jikan answered http://127.0.0.1:")
    assert failed.error.endswith("with a body that is not JSON")
    assert failed.requests == 5
    assert _rows("top", DAY) == today
    for (feed, day), rows in others.items():
        assert _rows(feed, day) == rows, f"{feed} {day} changed"
    record_property("requests", run.requests)
    record_property("retries", run.retries)
    record_property("rejections", run.items_rejected)


# 6. Redis down during an ETL run -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_redis_killed_mid_run_the_limiter_and_lock_fall_back_and_the_run_completes_once(
    settings, chaos_etl, dedicated_redis, caplog, record_property
):
    rate = 5
    settings.JIKAN_RATE_PER_SECOND = rate
    settings.JIKAN_RATE_PER_MINUTE = 0
    # The first two pages are slow, so Redis dies while the run is fetching.
    chaos_etl.inject("latency", seconds=0.4, times=2, path="/top/anime")
    redis_client = dedicated_redis.client(1)

    thread, outcome = _in_thread(lambda: services.feed_snapshot(feed="top", taken_on=DAY))
    wait_until(
        lambda: chaos_etl.request_count() >= 1 and redis_client.exists("animedash:etl-lock:top"),
        timeout=10,
        message="the run to hold the Redis lock and fetch",
    )
    dedicated_redis.kill()
    # Beat and an operator trigger the same feed during the outage: the lock must still say no.
    duplicate = services.feed_snapshot(feed="top", taken_on=DAY)
    thread.join(timeout=30)

    assert not thread.is_alive()
    run = outcome.get("value")
    assert run is not None, outcome.get("error")
    assert run.status == Status.SUCCESS
    assert duplicate.status == Status.SKIPPED
    assert sorted(EtlRun.objects.values_list("status", flat=True)) == [Status.SKIPPED, Status.SUCCESS]
    _assert_one_clean_day("top", DAY, run)
    assert chaos_etl.request_count() == run.requests == 4, "one run's requests, no more"
    assert min(_request_gaps(chaos_etl)) >= 1 / rate - 0.05, "the in-process limiter still spaces requests"
    assert "falls back to an in-process limiter" in caplog.text
    assert "Redis unavailable for the top lock, using an in-process lock" in caplog.text

    # A run that starts while Redis is still down works on the in-process lock and limiter.
    other = services.feed_snapshot(feed="airing", taken_on=DAY)
    assert other.status == Status.SUCCESS
    _assert_one_clean_day("airing", DAY, other)
    record_property("requests", run.requests)
    record_property("duplicate_status", str(duplicate.status))


# 7. PostgreSQL connection killed mid-load ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_database_connection_killed_mid_load_fails_the_run_without_a_partial_day(
    chaos_etl, monkeypatch, record_property
):
    services.feed_snapshot(feed="top", taken_on=YESTERDAY, pages=2)
    yesterday = _rows("top", YESTERDAY)
    anime_before = set(Anime.objects.values_list("mal_id", flat=True))
    real_replace = Staging.snapshots_replace
    calls: list[int] = []

    def kill_then_replace(self: Staging, **kwargs: Any) -> None:
        # Titles are merged by now, inside the load's transaction: the kill must roll them back.
        calls.append(len(calls) + 1)
        assert connection.in_atomic_block, "the kill must land inside the load's transaction"
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        database = connection.settings_dict
        with psycopg.connect(
            host=database["HOST"], port=database["PORT"], user=database["USER"], dbname=database["NAME"]
        ) as killer:
            # The second argument waits (ms) until the backend is really gone.
            assert killer.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchone() == (True,)
        real_replace(self, **kwargs)

    monkeypatch.setattr(Staging, "snapshots_replace", kill_then_replace)
    run = services.feed_snapshot(feed="top", taken_on=DAY)

    assert calls == [1]
    assert (run.status, run.items_loaded) == (Status.FAILED, 0)
    assert run.error.startswith("Database error:")
    assert "terminat" in run.error or "closed" in run.error, run.error
    # Recorded on a fresh connection: another connection reads the same.
    assert EtlRun.objects.get(pk=run.pk).status == Status.FAILED
    assert not Snapshot.objects.filter(feed="top", taken_on=DAY).exists(), "no partial day"
    assert not SnapshotDay.objects.filter(feed="top", taken_on=DAY).exists()
    assert set(Anime.objects.values_list("mal_id", flat=True)) == anime_before, "the merged titles rolled back too"
    assert _rows("top", YESTERDAY) == yesterday
    assert RawPage.objects.filter(run=run).count() == 4, "fetched pages are kept for the rerun"

    monkeypatch.setattr(Staging, "snapshots_replace", real_replace)
    chaos_etl.reset()
    rerun = services.feed_snapshot(feed="top", taken_on=DAY)
    assert rerun.status == Status.SUCCESS
    assert rerun.requests == chaos_etl.request_count() == 0, "the rerun reuses the stored pages"
    _assert_one_clean_day("top", DAY, rerun)
    served = sum(len(body["data"]) for body in _bodies(run).values())
    assert Snapshot.objects.filter(feed="top", taken_on=DAY).count() == rerun.items_loaded == served
    assert _rows("top", YESTERDAY) == yesterday
    record_property("kills", len(calls))
    record_property("rerun_rows", rerun.items_loaded)


# 8. A worker killed with SIGKILL mid-run -----------------------------------------------------------


# A worker alone on its queue needs no cluster chatter; skipping it saves seconds of start-up.
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_run_frees_the_feed_after_the_lock_ttl_and_its_run_is_marked_abandoned(
    settings, chaos_etl, dedicated_redis, record_property
):
    # The smallest TTL the settings accept (ETL_LOCK_TTL has a minimum of 10 s).
    lock_ttl = 10
    settings.ETL_LOCK_TTL = lock_ttl
    queue = f"chaos-{uuid.uuid4().hex[:8]}"
    chaos_etl.inject("latency", seconds=60, path="/top/anime")  # the run hangs on its first page
    worker = start_celery_worker(
        queue,
        jikan=chaos_etl,
        CELERY_BROKER_URL=dedicated_redis.url(0),
        REDIS_URL=dedicated_redis.url(1),
        DATABASE_CONN_MAX_AGE="0",
        JIKAN_TIMEOUT="60",
        ETL_LOCK_TTL=str(lock_ttl),
    )
    lock = dedicated_redis.client(1)
    try:
        Celery(broker=dedicated_redis.url(0)).send_task(
            "snapshots.tasks.feed_snapshot", args=["airing", "beat"], queue=queue
        )
        wait_until(
            lambda: (
                worker.poll() is None and chaos_etl.request_count() >= 1 and lock.exists("animedash:etl-lock:airing")
            ),
            timeout=30,
            message="the worker to take the lock and call Jikan",
        )
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=10) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
    killed_at = time.monotonic()
    today = timezone.now().date()
    killed = EtlRun.objects.get()
    assert killed.status == Status.RUNNING, "nobody could record the end of a SIGKILLed run"

    # The dead worker's lock still stands: a run now is skipped, and leaves the killed run alone.
    early = services.feed_snapshot(feed="airing", taken_on=today, trigger=EtlRun.Trigger.BEAT)
    assert early.status == Status.SKIPPED
    assert EtlRun.objects.get(pk=killed.pk).status == Status.RUNNING

    wait_until(lambda: not lock.exists("animedash:etl-lock:airing"), timeout=lock_ttl + 5, message="the lock's TTL")
    freed_after = time.monotonic() - killed_at
    chaos_etl.reset()
    run = services.feed_snapshot(feed="airing", taken_on=today, trigger=EtlRun.Trigger.BEAT)

    assert run.status == Status.SUCCESS
    _assert_one_clean_day("airing", today, run)
    killed.refresh_from_db()
    assert killed.status == Status.FAILED
    assert killed.error == "abandoned: the worker stopped before finishing"
    assert killed.finished_at is not None
    assert EtlRun.objects.filter(status=Status.RUNNING).count() == 0
    record_property("lock_freed_after_kill_seconds", round(freed_after, 2))


# 9. Beat fires the same feed twice at once ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("redis_state", ["up", "down"])
def test_two_simultaneous_runs_of_a_feed_give_one_success_and_one_skip(
    chaos_etl, dedicated_redis, redis_state, record_property
):
    if redis_state == "down":
        dedicated_redis.kill()  # both runs fall back to the in-process lock
    chaos_etl.inject("latency", seconds=0.3, path="/top/anime")  # the winner holds the lock a while
    barrier = threading.Barrier(2)

    def fire() -> int:
        barrier.wait(timeout=10)
        return tasks.feed_snapshot.apply(args=("airing",)).get()

    runs = [_in_thread(fire) for _ in range(2)]
    for thread, _ in runs:
        thread.join(timeout=30)
    errors = [outcome["error"] for _, outcome in runs if "error" in outcome]
    assert not errors, errors

    by_status = {run.status: run for run in EtlRun.objects.all()}
    assert sorted(by_status) == [Status.SKIPPED, Status.SUCCESS]
    assert by_status[Status.SKIPPED].error == "Another run of this feed is in progress."
    assert by_status[Status.SKIPPED].requests == 0
    winner = by_status[Status.SUCCESS]
    _assert_one_clean_day("airing", timezone.now().date(), winner)
    assert chaos_etl.request_count() == winner.requests
    record_property("requests", chaos_etl.request_count())
