"""Fixtures for the snapshots app's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from snapshots.fakejikan import FakeJikan


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
