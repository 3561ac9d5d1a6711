"""schemathesis over the OpenAPI schema: generated requests to every operation, valid and invalid ones
(wrong types, out-of-range values, unknown parameters, other methods), get no server error and an answer
that matches the schema; and hand-written hostile requests that a generator is unlikely to find."""

from __future__ import annotations

import datetime as dt

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance
from schemathesis.generation.modes import GenerationMode

from animedash.wsgi import application
from snapshots.tests.factories import AnimeFactory, GenreFactory, SnapshotFactory

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


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
    # POST /etl/runs is staff-only: anonymous fuzzing meets 403, which must not be a 5xx either. The WSGI
    # transport does not unzip, so ask for the answer as it is.
    case.call_and_validate(
        headers={"Accept-Encoding": "identity"},
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )


HOSTILE = [
    # A window reaching back past the calendar's first day.
    "/api/v1/anime/1/history?as_of=0001-01-01&days=5",
    "/api/v1/anime/1/history?as_of=0001-01-02&days=3650",
    "/api/v1/anime/1/history?as_of=9999-12-31&days=3650",
    # Unicode digits: str.isdigit() is True for them, int() refuses them.
    "/api/v1/anime?genre=%C2%B2",
    "/api/v1/anime?genre=%E2%91%A0",
    "/api/v1/top-rated?genre=%C2%B2",
    "/api/v1/top-rated?genre=%D9%A3",
    "/api/v1/top-rated?genre=99999999999999999999999999",
    "/api/v1/anime?genre=-1",
    "/api/v1/anime?q=%00",
    "/api/v1/anime?q=%F0%9F%98%80%27%22%3C%3E",
    "/api/v1/anime?page=99999999999999999999",
    "/api/v1/anime?page=-1&page_size=-1",
    "/api/v1/anime/99999999999999999999999999/history",
    "/api/v1/top-rated?as_of=0001-01-01",
    "/api/v1/top-rated?as_of=9999-12-31",
    "/api/v1/top-rated?as_of=2024-02-30",
    "/api/v1/top-rated?limit=1e3",
    "/api/v1/top-rated?min_score=NaN",
    "/api/v1/top-rated?min_score=Infinity",
    "/api/v1/trending?as_of=0001-01-01",
    "/api/v1/trending?as_of=9999-12-31",
    "/api/v1/trending/climbers?as_of=0001-01-08&window=30",
    "/api/v1/trending/new-entries?as_of=0001-01-01&top=100",
    "/api/v1/trending/streaks?as_of=9999-12-31",
    "/api/v1/trending/momentum?min_change=-1",
    "/api/v1/overview?as_of=0001-01-01",
    "/api/v1/seasons?as_of=0001-01-01",
    "/api/v1/seasons?from_year=0&to_year=99999",
    "/api/v1/etl/runs?feed=%00",
    "/api/v1/top-rated?format=csv&feed=top&feed=airing",
    "/api/v1/top-rated?format=",
    "/api/v1/top-rated?format=csv%00",
]


@pytest.mark.parametrize("url", HOSTILE)
def test_hand_written_hostile_requests_get_a_json_answer_never_a_server_error(client, small_history, url):
    response = client.get(url)
    assert response.status_code < 500, response.content
    if response.status_code != 200 or "format=csv" not in url:
        assert response["Content-Type"] == "application/json", response.content
