"""Chaos experiments on the read side: the API and pages while Redis dies, and while the database is away.

deploy/docs/chaos.md has the hypotheses and the numbers observed; each test records its numbers with
`record_property` (`pytest --junitxml=...` collects them).
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from prometheus_client import REGISTRY

from analytics import cache as analytics_cache
from analytics import wire
from analytics.tests.seed import seed_history
from devtools.testing import RedisServer, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
API = [
    "/api/v1/overview",
    "/api/v1/top-rated?limit=10",
    "/api/v1/genres",
    "/api/v1/trending/climbers?window=7",
    "/api/v1/trending/streaks",
    "/api/v1/anime/1000/history",
]
PAGES = ["/", "/trending/", "/anime/1000/"]


@dataclass(frozen=True)
class Answer:
    phase: str
    path: str
    status: int  # 0: no HTTP answer at all
    same_as_database: bool
    seconds: float


def _body(response: httpx.Response) -> object:
    return response.json() if response.headers.get("Content-Type", "").startswith("application/json") else response.text


class Load:
    """Threads that GET every path in turn until stopped, checking each answer against `expected`."""

    def __init__(self, base_url: str, expected: dict[str, object], *, threads: int) -> None:
        self.base_url = base_url
        self.expected = expected
        self.phase = "redis up"
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._hammer, args=(n,), daemon=True) for n in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def count(self, phase: str) -> int:
        with self._lock:
            return sum(1 for answer in self.answers if answer.phase == phase)

    def _hammer(self, offset: int) -> None:
        paths = itertools.islice(itertools.cycle(self.expected), offset, None)
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            for path in paths:
                if self._stop.is_set():
                    return
                phase, started = self.phase, time.perf_counter()
                try:
                    response = client.get(path)
                    status, same = response.status_code, _body(response) == self.expected[path]
                except httpx.HTTPError:
                    status, same = 0, False
                answer = Answer(phase, path, status, same, time.perf_counter() - started)
                with self._lock:
                    self.answers.append(answer)


def _cached_answers(client: redis.Redis) -> list[Any]:
    return client.keys("*:analytics:*")


def _cache_count(metric: str, **labels: str) -> float:
    """The process's counter (analytics cache hits or errors, wire answers), summed over the other labels."""
    return sum(
        sample.value
        for family in REGISTRY.collect()
        if family.name == metric
        for sample in family.samples
        if sample.name.endswith("_total") and labels.items() <= sample.labels.items()
    )


def _answers_from_redis() -> float:
    """Answers the short path took from Redis, and answers the views took from the analytics cache."""
    return _cache_count("analytics_wire_answers", source="redis") + _cache_count("analytics_cache_hits")


# 5. Redis killed (or hung) while the API is under load ---------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("failure", ["killed", "frozen"])
def test_redis_failing_under_load_costs_no_5xx_and_every_answer_matches_the_database(
    settings, live_server, dedicated_redis: RedisServer, monkeypatch, failure, record_property
):
    seed_history(days=40, titles=12)
    settings.REDIS_URL = dedicated_redis.url(0)
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": dedicated_redis.url(0)}}
    monkeypatch.setattr(analytics_cache, "_skip_until", 0.0)
    # Retry the cache sooner after a failure than in production (5 s), so the recovery shows in seconds.
    monkeypatch.setattr(analytics_cache, "RETRY_AFTER_FAILURE", 0.5)
    redis_client = dedicated_redis.client(0)
    # This process's memory tier would answer everything without asking Redis: keep nothing in it.
    monkeypatch.setattr(wire, "memory", wire.MemoryTier(max_entries=1, max_bytes=0))

    # The database's answers: the same server with the cache off.
    settings.ANALYTICS_CACHE_ENABLED = False
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        responses = {path: client.get(path) for path in API + PAGES}
    assert {path: response.status_code for path, response in responses.items()} == dict.fromkeys(API + PAGES, 200)
    expected = {path: _body(response) for path, response in responses.items()}
    assert not _cached_answers(redis_client), "nothing cached yet"
    settings.ANALYTICS_CACHE_ENABLED = True

    # A hung Redis costs each API request the 0.5 s socket timeout (see chaos.md), so fewer answers.
    per_phase = 60 if failure == "killed" else 24
    down, back = f"redis {failure}", "redis back"
    with Load(live_server.url, expected, threads=6) as load:
        wait_until(
            lambda: load.count("redis up") >= per_phase and _cached_answers(redis_client),
            timeout=20,
            message="answers served through the Redis cache",
        )
        errors_before = _cache_count("analytics_cache_errors")
        load.phase = down
        dedicated_redis.kill() if failure == "killed" else dedicated_redis.freeze()
        wait_until(lambda: load.count(down) >= per_phase, timeout=30, message="answers with Redis gone")
        assert _cache_count("analytics_cache_errors") > errors_before, "the cache really failed"
        load.phase = back
        dedicated_redis.start() if failure == "killed" else dedicated_redis.thaw()
        hits_back = _answers_from_redis()
        wait_until(
            lambda: load.count(back) >= per_phase and _answers_from_redis() > hits_back,
            timeout=20,
            message="answers from the cache again",
        )

    answers = load.answers
    assert [a for a in answers if a.status >= 500 or a.status == 0] == [], "no 5xx, no dropped connection"
    assert [a for a in answers if a.status != 200] == []
    assert [a for a in answers if not a.same_as_database] == [], "every answer equals the database's"
    for phase in ("redis up", down, back):
        record_property(f"{phase}: requests", sum(1 for a in answers if a.phase == phase))
        for kind, paths in (("api", API), ("pages", PAGES)):
            seconds = sorted(a.seconds for a in answers if a.phase == phase and a.path in paths)
            record_property(f"{phase}: {kind} median ms", round(statistics.median(seconds) * 1000, 1))
            record_property(f"{phase}: {kind} max ms", round(seconds[-1] * 1000, 1))
    record_property("5xx", sum(1 for a in answers if a.status >= 500))


# 10. The database unreachable ----------------------------------------------------------------------


def _get_in_a_process(paths: list[str], **env: str) -> dict[str, tuple[int, str, str]]:
    """GET each path in a fresh production-mode Django process: {path: (status, content type, body)}."""
    code = (
        "import django, json, sys; django.setup(); from django.test import Client; "
        "client = Client(raise_request_exception=False); "
        "answers = {p: client.get(p) for p in json.loads(sys.argv[1])}; "
        "print(json.dumps({p: [r.status_code, r.get('Content-Type', ''), r.content.decode()] "
        "for p, r in answers.items()}))"
    )
    full_env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "test-only-secret-key-for-the-chaos-process-0123456789",
        "ALLOWED_HOSTS": "testserver",
        "SECURE_SSL_REDIRECT": "0",
        "CELERY_BROKER_URL": "",
        "LOG_LEVEL": "CRITICAL",
        "COVERAGE_PROCESS_START": "",
        **env,
    }
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(paths)], cwd=ROOT, env=full_env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    return {path: (status, content_type, body) for path, (status, content_type, body) in answers.items()}


def test_with_the_database_unreachable_the_api_answers_503_json_pages_an_html_503_and_readyz_names_the_database(
    dedicated_redis: RedisServer, record_property
):
    closed = free_port()
    api = [*API, "/api/v1/feeds", "/api/v1/etl/runs", "/api/v1/anime/1000", "/api/v1/anime?q=series"]
    pages = [*PAGES, "/status/"]
    started = time.monotonic()
    answers = _get_in_a_process(
        [*api, *pages, "/readyz", "/healthz"],
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed}/animedash",
        REDIS_URL=dedicated_redis.url(0),
    )
    elapsed = time.monotonic() - started

    unavailable = {"detail": "The database is unavailable. Try again shortly.", "code": "database_unavailable"}
    for path in api:
        status, content_type, body = answers[path]
        assert (path, status, content_type) == (path, 503, "application/json"), body[:300]
        assert json.loads(body) == unavailable
    for path in pages:
        status, content_type, body = answers[path]
        assert (path, status, content_type) == (path, 503, "text/html; charset=utf-8"), body[:300]
        assert "AnimeDash cannot reach its database" in body
    status, _, body = answers["/readyz"]
    assert status == 503
    readyz = json.loads(body)
    # The failed check is named; its error (host, port, driver text) goes only to the log.
    assert readyz == {"status": "unavailable", "checks": {"database": "failed", "cache": "ok"}}
    assert answers["/healthz"][:2] == (200, "application/json")
    record_property("paths answering 503", len(api) + len(pages))
    record_property("process seconds", round(elapsed, 2))
