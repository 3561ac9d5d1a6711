"""Fixtures shared by every app's tests."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Callable, Iterator

import pytest
from django.core.cache import cache

from analytics import wire
from analytics.api.throttling import forget_leases
from devtools.fakejikan import FakeJikan
from devtools.testing import RedisServer


def pytest_configure(config: pytest.Config) -> None:
    from django.conf import settings

    # Each xdist worker gets its own Redis database, so one worker's cache.clear() (a FLUSHDB)
    # never wipes what another worker's test is using. Databases 1..8; 14 and 15 are left to tests.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    if settings.REDIS_URL:
        base, _, _ = settings.REDIS_URL.rpartition("/")
        settings.REDIS_URL = f"{base}/{1 + int(worker.removeprefix('gw')) % 8}"
        settings.CACHES["default"]["LOCATION"] = settings.REDIS_URL

    # Serve static files straight from static/ so tests need no collectstatic; production keeps the
    # hashed, compressed manifest (checked by its own test).
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.WHITENOISE_USE_FINDERS = True
    # Test clients speak plain HTTP; the production redirect is covered by `check --deploy`.
    settings.SECURE_SSL_REDIRECT = False
    settings.WHITENOISE_AUTOREFRESH = True


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    """Each test starts with empty caches (Redis in the suite, this process's kept answers and throttle
    leases), so state never leaks from one test into the next."""
    cache.clear()
    wire.forget()
    forget_leases()
    yield
    cache.clear()
    wire.forget()
    forget_leases()


@pytest.fixture
def json_logs() -> Iterator[Callable[[], list[dict]]]:
    """Capture log lines exactly as the configured console handler formats them, parsed."""
    console = logging.getLogger().handlers[0]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(console.formatter)
    for log_filter in console.filters:
        handler.addFilter(log_filter)
    logging.getLogger().addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logging.getLogger().removeHandler(handler)


@pytest.fixture
def fake_jikan(settings) -> Iterator[FakeJikan]:
    """A fake Jikan v4 on a free loopback port, with JIKAN_BASE_URL pointing at it."""
    with FakeJikan() as fake:
        settings.JIKAN_BASE_URL = fake.base_url
        yield fake


@pytest.fixture
def etl(settings, fake_jikan: FakeJikan) -> FakeJikan:
    """The ETL pointed at a fake Jikan, with no rate limit and millisecond backoffs, so tests stay fast."""
    settings.JIKAN_RATE_PER_SECOND = 0
    settings.JIKAN_RATE_PER_MINUTE = 0
    settings.JIKAN_BACKOFF_BASE = 0.001
    settings.JIKAN_BACKOFF_MAX = 0.01
    return fake_jikan


@pytest.fixture
def dedicated_redis() -> Iterator[RedisServer]:
    """A redis-server started for this test alone (kill() and restart() it); stopped afterwards."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.kill()
