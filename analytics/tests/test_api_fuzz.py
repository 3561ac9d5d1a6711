"""schemathesis over the OpenAPI schema: generated requests to every operation, zero server errors."""

from __future__ import annotations

import datetime as dt

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from animedash.wsgi import application
from snapshots.tests.factories import AnimeFactory, GenreFactory, SnapshotFactory

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture
def wsgi_in_test_transaction():
    """Keep Django from closing the test's database connection after each WSGI request.

    Django's test client does the same; schemathesis calls the WSGI application directly.
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def small_history(db, wsgi_in_test_transaction):
    genre = GenreFactory(mal_id=1, name="Action")
    for offset in range(0, 40, 5):
        day = dt.date(2024, 5, 31) - dt.timedelta(days=offset)
        for position in range(1, 6):
            anime = AnimeFactory(mal_id=position, title=f"Title {position}", genres=[genre])
            SnapshotFactory(anime=anime, feed="top", taken_on=day, position=position, rank=(position + offset) % 7 + 1)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error(case, small_history):
    # POST /etl/runs is staff-only: anonymous fuzzing meets 403, which must not be a 5xx either.
    case.call_and_validate(checks=[not_a_server_error])
