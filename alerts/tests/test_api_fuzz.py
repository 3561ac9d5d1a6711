"""schemathesis over /api/v1/me/alerts signed in with a personal token: generated requests, valid and invalid,
get no server error and an answer that matches the schema. Half the generated ids are the person's own, so
the requests reach real rules and webhooks too."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance
from schemathesis.generation.modes import GenerationMode

from alerts.tests.factories import AlertRuleFactory, WebhookEndpointFactory, day
from analytics.tests.test_api_fuzz import wsgi_in_test_transaction  # noqa: F401 (a fixture)
from animedash.wsgi import application
from snapshots.tests.factories import AnimeFactory, SnapshotFactory
from tracking import services
from tracking.tests.factories import ListEntryFactory, UserFactory

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application).include(
    path_regex="^/api/v1/me/alerts"
)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@pytest.fixture
def person(db, wsgi_in_test_transaction):  # noqa: F811
    person = UserFactory(username="fuzzer")
    for mal_id in range(1, 4):
        anime = AnimeFactory(mal_id=mal_id, episodes=12)
        ListEntryFactory(user=person, anime=anime)
        for n in range(10):
            SnapshotFactory(anime=anime, feed="top", taken_on=day(n), position=(mal_id + n) % 3 + 1, run=None)
    # A webhook whose host does not resolve here: a test send fails at once, without leaving the machine.
    endpoint = WebhookEndpointFactory(user=person, url="https://hooks.invalid/animedash")
    rule = AlertRuleFactory(user=person, scope="title", anime_id=1, kind="climbed", threshold=1)
    rule.webhooks.set([endpoint])
    _token, raw = services.api_token_create(user=person, name="fuzz")
    return {"token": raw, "rule_id": rule.pk, "endpoint_id": endpoint.pk}


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_to_a_persons_alerts_gets_a_server_error(case, person):
    for name in ("rule_id", "endpoint_id"):
        generated = (case.path_parameters or {}).get(name)
        if isinstance(generated, int) and generated % 2 == 0:
            case.path_parameters[name] = person[name]
    case.call_and_validate(
        headers={"Accept-Encoding": "identity", "Authorization": f"Bearer {person['token']}"},
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )
