"""schemathesis over /api/v1/me/ signed in with a personal token (titles new here come from the fake Jikan):
generated requests, valid and invalid, get no server error and an answer that matches the schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance
from schemathesis.generation.modes import GenerationMode

from analytics.tests.test_api_fuzz import wsgi_in_test_transaction  # noqa: F401 (a fixture)
from animedash.wsgi import application
from snapshots.tests.factories import AnimeFactory
from tracking import services
from tracking.tests.factories import ListEntryFactory, UserFactory

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application).include(path_regex="^/api/v1/me/")
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@pytest.fixture
def token(db, wsgi_in_test_transaction, etl):  # noqa: F811
    person = UserFactory(username="fuzzer")
    for mal_id in range(1, 4):
        ListEntryFactory(user=person, anime=AnimeFactory(mal_id=mal_id, episodes=12))
    _token, raw = services.api_token_create(user=person, name="fuzz")
    return raw


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_to_a_persons_own_api_gets_a_server_error(case, token):
    case.call_and_validate(
        headers={"Accept-Encoding": "identity", "Authorization": f"Bearer {token}"},
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )
