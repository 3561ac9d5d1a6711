"""/api/v1/me/alerts: a person's rules, preview, webhooks, delivery log and private feed over the API, by
session (with CSRF) or personal token; bad input is a 400 naming the field; and the matrix of who reaches
what: anonymous, the owner, another person, staff."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client, override_settings
from django.urls import reverse
from standardwebhooks import Webhook

from alerts import services
from alerts.models import AlertEvent, AlertRule, Delivery, FeedKey, WebhookEndpoint
from alerts.tests.factories import AlertRuleFactory, WebhookEndpointFactory, day
from snapshots.tests.factories import AnimeFactory, SnapshotFactory
from tracking import services as tracking_services
from tracking.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

RULES = reverse("me-alerts:rules")
PREVIEW = reverse("me-alerts:preview")
WEBHOOKS = reverse("me-alerts:webhooks")
DELIVERIES = reverse("me-alerts:deliveries")
FEED = reverse("me-alerts:feed")


def _rule_url(rule_id: int) -> str:
    return reverse("me-alerts:rule", args=[rule_id])


def _webhook_url(endpoint_id: int, action: str = "") -> str:
    return reverse(f"me-alerts:webhook{'-' + action if action else ''}", args=[endpoint_id])


@pytest.fixture
def owner():
    return UserFactory(username="owner")


@pytest.fixture
def frieren():
    return AnimeFactory(mal_id=52991, title="Sousou no Frieren")


@pytest.fixture
def endpoint(owner):
    return WebhookEndpointFactory(user=owner, name="Discord", url="https://hooks.example.com/a", preset="discord")


@pytest.fixture
def rule(owner, frieren, endpoint):
    rule = AlertRuleFactory(
        user=owner, kind="climbed", threshold=5, window=7, scope="title", anime=frieren, email="digest"
    )
    rule.webhooks.set([endpoint])
    return rule


def _as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _token_client(user) -> Client:
    _token, raw = tracking_services.api_token_create(user=user, name="script")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def _send(client: Client, method: str, url: str, body: Any = None):
    return getattr(client, method)(url, json.dumps(body) if body is not None else None, content_type="application/json")


# Rules


def test_the_owner_lists_reads_changes_and_deletes_their_rules(owner, rule, endpoint):
    client = _as(owner)
    listed = client.get(RULES).json()
    assert listed["count"] == 1
    assert listed["results"][0] | {"created_at": None} == {
        "id": rule.pk,
        "kind": "climbed",
        "feed": "top",
        "threshold": "5.00",
        "window": 7,
        "scope": "title",
        "anime": 52991,
        "statuses": [],
        "email": "digest",
        "webhooks": [endpoint.pk],
        "atom": True,
        "active": True,
        "evaluated_on": None,
        "description": "Sousou no Frieren climbs at least 5 places in 7 days in top",
        "created_at": None,
    }
    assert client.get(_rule_url(rule.pk)).json()["id"] == rule.pk
    changed = _send(client, "patch", _rule_url(rule.pk), {"threshold": "12", "webhooks": [], "active": False})
    assert changed.status_code == 200
    assert (changed.json()["threshold"], changed.json()["webhooks"], changed.json()["active"]) == ("12.00", [], False)
    rule.refresh_from_db()
    assert (rule.threshold, rule.active, list(rule.webhooks.all())) == (12, False, [])
    assert client.delete(_rule_url(rule.pk)).status_code == 204
    assert not AlertRule.objects.exists()
    assert client.delete(_rule_url(rule.pk)).status_code == 404


def test_creating_a_rule_on_my_list_with_statuses_and_webhooks(owner, endpoint):
    body = {"kind": "entered_top", "threshold": 10, "scope": "list", "statuses": ["completed", "watching"],
            "webhooks": [endpoint.pk], "email": "off", "atom": False}  # fmt: skip
    response = _send(_as(owner), "post", RULES, body)
    assert response.status_code == 201, response.content
    created = response.json()
    # The service keeps the statuses in the list's order.
    assert (created["statuses"], created["webhooks"], created["anime"]) == (
        ["watching", "completed"],
        [endpoint.pk],
        None,
    )
    assert created["description"] == "A title on my list (watching, completed) enters the top 10 in top"
    assert AlertRule.objects.get().user == owner


def test_rules_are_paged_newest_first(owner):
    rules = [AlertRuleFactory(user=owner, threshold=n) for n in range(1, 4)]
    page = _as(owner).get(RULES, {"limit": 1, "offset": 1}).json()
    assert (page["count"], [row["id"] for row in page["results"]]) == (3, [rules[1].pk])
    assert page["next"]
    assert page["previous"]


@pytest.fixture
def strangers_endpoint():
    return WebhookEndpointFactory(user=UserFactory(username="stranger"))


BAD_RULES = [
    ({"kind": "x"}, "kind"),
    ({}, "kind"),
    ({"kind": None}, "kind"),
    ({"kind": "climbed", "threshold": "abc"}, "threshold"),
    ({"kind": "climbed", "threshold": "NaN"}, "threshold"),
    ({"kind": "climbed", "threshold": 0}, "threshold"),
    ({"kind": "climbed", "threshold": -3}, "threshold"),
    ({"kind": "climbed", "threshold": 2.5}, "threshold"),
    ({"kind": "climbed", "threshold": 10000}, "threshold"),
    ({"kind": "climbed", "threshold": "1.234"}, "threshold"),
    ({"kind": "score_moved", "threshold": 11}, "threshold"),
    ({"kind": "climbed", "window": 14}, "window"),
    ({"kind": "climbed", "window": "week"}, "window"),
    ({"kind": "climbed", "feed": "nope"}, "feed"),
    ({"kind": "climbed", "scope": "x"}, "scope"),
    ({"kind": "climbed", "scope": "title"}, "anime"),
    ({"kind": "climbed", "scope": "title", "anime": 999}, "anime"),
    ({"kind": "climbed", "scope": "title", "anime": "one"}, "anime"),
    ({"kind": "climbed", "scope": "title", "anime": 2**40}, "anime"),
    ({"kind": "climbed", "scope": "list", "statuses": "watching"}, "statuses"),
    ({"kind": "climbed", "scope": "list", "statuses": ["binging"]}, "statuses"),
    ({"kind": "climbed", "scope": "list", "statuses": [["watching"]]}, "statuses"),
    ({"kind": "climbed", "email": "loud"}, "email"),
    ({"kind": "climbed", "webhooks": "STRANGER"}, "webhooks"),
    ({"kind": "climbed", "webhooks": [999_999]}, "webhooks"),
    ({"kind": "climbed", "webhooks": ["a"]}, "webhooks"),
    ({"kind": "climbed", "webhooks": 5}, "webhooks"),
    ({"kind": "climbed", "atom": "maybe"}, "atom"),
    ({"kind": "climbed", "active": None}, "active"),
]


@pytest.mark.parametrize(("body", "field"), BAD_RULES)
def test_a_bad_rule_is_a_400_naming_the_field_and_writes_nothing(owner, frieren, strangers_endpoint, body, field):
    if body.get("webhooks") == "STRANGER":
        body = {**body, "webhooks": [strangers_endpoint.pk]}
    response = _send(_as(owner), "post", RULES, body)
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not AlertRule.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "x"}, "kind"),
        ({"kind": None}, "kind"),
        ({"threshold": "abc"}, "threshold"),
        ({"threshold": 0}, "threshold"),
        ({"threshold": 10000}, "threshold"),
        ({"kind": "score_moved", "threshold": 11}, "threshold"),
        ({"window": 14}, "window"),
        ({"feed": "nope"}, "feed"),
        ({"scope": "x"}, "scope"),
        ({"anime": None}, "anime"),
        ({"anime": 999}, "anime"),
        ({"anime": "one"}, "anime"),
        ({"scope": "list", "statuses": "watching"}, "statuses"),
        ({"scope": "list", "statuses": ["binging"]}, "statuses"),
        ({"email": "loud"}, "email"),
        ({"webhooks": "STRANGER"}, "webhooks"),
        ({"webhooks": [999_999]}, "webhooks"),
        ({"webhooks": 5}, "webhooks"),
        ({"atom": "maybe"}, "atom"),
        ({"active": None}, "active"),
    ],
)
def test_a_bad_change_is_a_400_naming_the_field_and_changes_nothing(owner, rule, strangers_endpoint, body, field):
    if body.get("webhooks") == "STRANGER":
        body = {**body, "webhooks": [strangers_endpoint.pk]}
    client = _as(owner)
    before = client.get(_rule_url(rule.pk)).json()
    response = _send(client, "patch", _rule_url(rule.pk), body)
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert client.get(_rule_url(rule.pk)).json() == before


def test_the_most_places_a_rule_takes_is_saved(owner):
    response = _send(_as(owner), "post", RULES, {"kind": "entered_top", "threshold": 9999, "scope": "feed"})
    assert response.status_code == 201, response.content
    assert response.json()["threshold"] == "9999.00"
    # One more does not fit the column (numeric(6, 2)): the service says so, rather than the database failing.
    with pytest.raises(ValidationError) as refused:
        services.rule_save(user=owner, changes={"kind": "entered_top", "threshold": 10000, "scope": "feed"})
    assert "threshold" in refused.value.message_dict


def test_read_only_fields_in_a_body_are_ignored(owner, rule):
    body = _as(owner).get(_rule_url(rule.pk)).json() | {"id": 1, "evaluated_on": "2024-01-01", "description": "x"}
    response = _send(_as(owner), "patch", _rule_url(rule.pk), body)
    assert response.status_code == 200, response.content
    assert (response.json()["id"], response.json()["evaluated_on"]) == (rule.pk, None)


def test_a_malformed_or_form_encoded_body_is_a_4xx_not_a_500(owner, rule):
    client = _as(owner)
    assert client.generic("PATCH", _rule_url(rule.pk), "{not json", content_type="application/json").status_code == 400
    assert client.generic("POST", RULES, "[1, 2]", content_type="application/json").status_code == 400
    assert client.post(RULES, {"kind": "climbed"}).status_code == 415


# Preview


def test_the_preview_answers_what_the_rule_would_have_sent_and_saves_nothing(owner):
    # Title 1 enters the top 3 on days 1 and 4; title 2 holds it from the start (day 0 fires it).
    for mal_id, ranks in {1: [5, 3, 2, 4, 3], 2: [1, 1, 1, 1, 1]}.items():
        anime = AnimeFactory(mal_id=mal_id, title=f"Title {mal_id}")
        for n, rank in enumerate(ranks):
            SnapshotFactory(anime=anime, feed="top", taken_on=day(n), position=rank, rank=rank, run=None)
    response = _send(_as(owner), "post", PREVIEW, {"kind": "entered_top", "threshold": 3, "scope": "feed"})
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [(row["date"], row["mal_id"]) for row in results] == [
        (day(4).isoformat(), 1),
        (day(1).isoformat(), 1),
        (day(0).isoformat(), 2),
    ]
    assert results[0]["title"] == "Title 1"
    assert "Title 1" in results[0]["message"]
    assert not AlertRule.objects.exists()
    assert not AlertEvent.objects.exists()


def test_a_preview_of_a_feed_with_no_history_is_empty_and_a_bad_rule_is_a_400(owner):
    client = _as(owner)
    assert _send(client, "post", PREVIEW, {"kind": "new_best", "scope": "feed"}).json() == {"results": []}
    for body, field in [
        ({"kind": "climbed", "threshold": "abc"}, "threshold"),
        ({"kind": "climbed", "scope": "title"}, "anime"),
        ({"kind": "climbed", "scope": "title", "anime": 12345}, "anime"),
        ({"kind": "score_moved", "threshold": 50}, "threshold"),
    ]:
        response = _send(client, "post", PREVIEW, body)
        assert response.status_code == 400, (body, response.content)
        assert field in response.json()


# Webhooks


def test_the_secret_is_shown_when_a_webhook_is_created_or_rotated_and_never_else(owner):
    client = _as(owner)
    created = _send(
        client, "post", WEBHOOKS, {"name": "Slack", "url": "https://hooks.example.com/s", "preset": "slack"}
    )
    assert created.status_code == 201, created.content
    body = created.json()
    endpoint = WebhookEndpoint.objects.get()
    assert body | {"created_at": None} == {
        "id": endpoint.pk,
        "name": "Slack",
        "url": "https://hooks.example.com/s",
        "preset": "slack",
        "active": True,
        "disabled_reason": "",
        "secret": endpoint.secret,
        "created_at": None,
    }
    assert body["secret"].startswith("whsec_")
    shown = [client.get(WEBHOOKS).content, client.get(_webhook_url(endpoint.pk)).content]
    shown.append(_send(client, "patch", _webhook_url(endpoint.pk), {"name": "Team"}).content)
    assert not any(endpoint.secret.encode() in answer or b"secret" in answer for answer in shown)
    rotated = client.post(_webhook_url(endpoint.pk, "rotate")).json()
    endpoint.refresh_from_db()
    assert rotated["secret"] == endpoint.secret != body["secret"]
    assert rotated["name"] == "Team"


def test_the_owner_changes_re_enables_and_deletes_a_webhook(owner, rule, endpoint):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False, disabled_reason="410 Gone")
    client = _as(owner)
    assert client.get(WEBHOOKS).json()["results"][0]["disabled_reason"] == "410 Gone"
    changed = _send(client, "patch", _webhook_url(endpoint.pk), {"active": True, "url": "https://example.org/h"})
    assert changed.status_code == 200, changed.content
    assert (changed.json()["active"], changed.json()["disabled_reason"], changed.json()["url"]) == (
        True,
        "",
        "https://example.org/h",
    )
    assert client.delete(_webhook_url(endpoint.pk)).status_code == 204
    assert not WebhookEndpoint.objects.exists()
    assert client.get(_rule_url(rule.pk)).json()["webhooks"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "https://example.org/h"}, "name"),
        ({"name": "", "url": "https://example.org/h"}, "name"),
        ({"name": "x" * 101, "url": "https://example.org/h"}, "name"),
        ({"name": "A"}, "url"),
        ({"name": "A", "url": "not a url"}, "url"),
        ({"name": "A", "url": "ftp://example.org/h"}, "url"),
        ({"name": "A", "url": "https://user:pw@example.org/h"}, "url"),
        ({"name": "A", "url": "https://example.org/" + "x" * 500}, "url"),
        ({"name": "A", "url": "https://example.org/h", "preset": "teams"}, "preset"),
        ({"name": "A", "url": "https://example.org/h", "active": "sometimes"}, "active"),
    ],
)
def test_a_bad_webhook_is_a_400_naming_the_field_and_writes_nothing(owner, body, field):
    response = _send(_as(owner), "post", WEBHOOKS, body)
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not WebhookEndpoint.objects.exists()


def test_a_person_keeps_at_most_twenty_webhooks(owner):
    WebhookEndpointFactory.create_batch(20, user=owner)
    response = _send(_as(owner), "post", WEBHOOKS, {"name": "One more", "url": "https://example.org/h"})
    assert response.status_code == 400
    assert "url" in response.json()


class Receiver:
    """A webhook receiver on loopback: records each request and answers with `code`."""

    def __init__(self, code: int = 200) -> None:
        self.code = code
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.code)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


@override_settings(ALERTS_ALLOW_PRIVATE_WEBHOOKS=True)
def test_a_test_send_reaches_the_receiver_signed_and_is_logged(owner, receiver):
    endpoint = WebhookEndpointFactory(user=owner, url=receiver.url)
    client = _as(owner)
    response = client.post(_webhook_url(endpoint.pk, "test"))
    assert response.status_code == 200, response.content
    sent = response.json()
    assert (sent["status"], sent["response_code"], sent["error"], sent["attempts"]) == ("sent", 200, "", 1)
    assert (sent["channel"], sent["endpoint"], sent["event"], sent["message"]) == ("webhook", endpoint.pk, None, None)
    [(headers, body)] = receiver.requests
    payload = Webhook(endpoint.secret).verify(body, headers)
    assert payload["type"] == "alert.test"
    assert client.get(DELIVERIES).json()["results"][0]["id"] == sent["id"]


@override_settings(ALERTS_ALLOW_PRIVATE_WEBHOOKS=True)
def test_a_test_send_to_a_failing_receiver_is_a_failed_delivery_tried_once(owner):
    with Receiver(code=500) as failing:
        endpoint = WebhookEndpointFactory(user=owner, url=failing.url)
        sent = _as(owner).post(_webhook_url(endpoint.pk, "test")).json()
    assert (sent["status"], sent["response_code"], sent["next_try_at"]) == ("failed", 500, None)
    assert "500" in sent["error"]


@override_settings(ALERTS_ALLOW_PRIVATE_WEBHOOKS=False)
def test_a_test_send_to_a_loopback_address_fails_naming_it_when_private_webhooks_are_off(owner, receiver):
    endpoint = WebhookEndpointFactory(user=owner, url=receiver.url)
    sent = _as(owner).post(_webhook_url(endpoint.pk, "test")).json()
    assert (sent["status"], sent["response_code"]) == ("failed", None)
    assert "127.0.0.1" in sent["error"]
    assert "not a public address" in sent["error"]
    assert receiver.requests == []


# Deliveries and the private feed


def test_the_delivery_log_is_the_persons_own_newest_first_with_each_events_message(owner, rule, endpoint, frieren):
    event = AlertEvent.objects.create(rule=rule, anime=frieren, day=day(3), message="Frieren climbed 6 places")
    older = Delivery.objects.create(user=owner, event=event, channel="digest")
    newer = Delivery.objects.create(user=owner, event=event, channel="webhook", endpoint=endpoint, status="sent")
    test = Delivery.objects.create(user=owner, channel="webhook", endpoint=endpoint, status="failed", error="No")
    stranger = UserFactory(username="stranger")
    Delivery.objects.create(user=stranger, channel="webhook", endpoint=WebhookEndpointFactory(user=stranger))
    client = _as(owner)
    log = client.get(DELIVERIES).json()
    assert [row["id"] for row in log["results"]] == [test.pk, newer.pk, older.pk]
    assert log["results"][1] | {"created_at": None, "sent_at": None} == {
        "id": newer.pk,
        "created_at": None,
        "channel": "webhook",
        "endpoint": endpoint.pk,
        "event": event.pk,
        "message": "Frieren climbed 6 places",
        "status": "sent",
        "attempts": 0,
        "response_code": None,
        "error": "",
        "next_try_at": None,
        "sent_at": None,
    }
    assert log["results"][0]["message"] is None
    assert [row["id"] for row in client.get(DELIVERIES, {"status": "failed"}).json()["results"]] == [test.pk]
    assert client.get(DELIVERIES, {"endpoint": endpoint.pk}).json()["count"] == 2
    page = client.get(DELIVERIES, {"limit": 1, "offset": 2}).json()
    assert (page["count"], [row["id"] for row in page["results"]]) == (3, [older.pk])
    assert client.get(DELIVERIES, {"status": "lost"}).status_code == 400


def test_the_private_feed_url_works_and_a_reset_replaces_it(owner, rule, frieren):
    AlertEvent.objects.create(rule=rule, anime=frieren, day=day(3), message="Frieren climbed 6 places")
    client = _as(owner)
    url = client.get(FEED).json()["url"]
    assert url == f"http://testserver/feeds/me/{FeedKey.objects.get(user=owner).key}.atom"
    assert client.get(FEED).json()["url"] == url
    assert b"Frieren climbed 6 places" in Client().get(url).content
    reset = client.post(FEED)
    assert reset.status_code == 200
    assert reset.json()["url"] != url
    assert Client().get(url).status_code == 404
    assert Client().get(reset.json()["url"]).status_code == 200


# Who reaches what


def test_a_personal_token_works_without_csrf_and_a_wrong_one_is_a_401(owner, rule):
    client = _token_client(owner)
    assert client.get(RULES).json()["count"] == 1
    assert _send(client, "patch", _rule_url(rule.pk), {"threshold": 7}).status_code == 200
    assert _send(client, "post", WEBHOOKS, {"name": "A", "url": "https://example.org/h"}).status_code == 201
    assert Client(HTTP_AUTHORIZATION="Bearer ad_wrong").get(RULES).status_code == 401


# Every endpoint and method, with a body the owner could send.
OPERATIONS = [
    ("get", "rules", None),
    ("post", "rules", {"kind": "entered_top", "threshold": 5, "scope": "feed"}),
    ("get", "rule", None),
    ("patch", "rule", {"threshold": 1}),
    ("delete", "rule", None),
    ("post", "preview", {"kind": "entered_top", "threshold": 5, "scope": "feed"}),
    ("get", "webhooks", None),
    ("post", "webhooks", {"name": "Mine", "url": "https://example.org/h"}),
    ("get", "webhook", None),
    ("patch", "webhook", {"url": "https://evil.example.com/"}),
    ("delete", "webhook", None),
    ("post", "webhook-test", None),
    ("post", "webhook-rotate", None),
    ("get", "deliveries", None),
    ("get", "feed", None),
    ("post", "feed", None),
]


def _target(name: str, rule: AlertRule, endpoint: WebhookEndpoint) -> str:
    if name == "rule":
        return _rule_url(rule.pk)
    if name.startswith("webhook-"):
        return _webhook_url(endpoint.pk, name.removeprefix("webhook-"))
    if name == "webhook":
        return _webhook_url(endpoint.pk)
    return reverse(f"me-alerts:{name}")


@pytest.mark.parametrize("who", ["anonymous", "other", "staff"])
@pytest.mark.parametrize(("method", "name", "body"), OPERATIONS)
def test_nobody_but_the_owner_reads_or_changes_their_alerts(
    owner, rule, endpoint, django_user_model, who, method, name, body
):
    owners_key = FeedKey.objects.create(user=owner).key
    Delivery.objects.create(user=owner, channel="webhook", endpoint=endpoint, status="failed")
    if who == "anonymous":
        client = Client()
    elif who == "staff":
        client = _as(django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-boss-123456"))
    else:
        client = _as(UserFactory(username="other"))
    response = _send(client, method, _target(name, rule, endpoint), body)
    if who == "anonymous":
        assert response.status_code in (401, 403)
    elif name in ("rule", "webhook", "webhook-test", "webhook-rotate"):
        assert response.status_code == 404
    elif method == "get" and name in ("rules", "webhooks", "deliveries"):
        assert response.json()["count"] == 0  # their own, empty
    elif method == "post" and name in ("rules", "webhooks"):
        assert response.status_code == 201  # their own
    else:
        assert response.status_code == 200
        assert owners_key not in response.content.decode()
    mine = AlertRule.objects.get(user=owner)
    assert (mine.threshold, mine.kind, list(mine.webhooks.all())) == (5, "climbed", [endpoint])
    saved = WebhookEndpoint.objects.get(user=owner)
    assert (saved.url, saved.secret) == (endpoint.url, endpoint.secret)
    assert FeedKey.objects.get(user=owner).key == owners_key
    assert Delivery.objects.filter(user=owner).count() == 1


@pytest.mark.parametrize(("method", "name", "body"), [op for op in OPERATIONS if op[0] != "get"])
def test_session_writes_need_the_csrf_token(owner, rule, endpoint, method, name, body):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)
    assert strict.get(RULES).status_code == 200
    assert _send(strict, method, _target(name, rule, endpoint), body).status_code == 403
    assert AlertRule.objects.get().threshold == 5
    assert WebhookEndpoint.objects.get().secret == endpoint.secret
    assert not Delivery.objects.exists()
    assert not FeedKey.objects.exists()


def test_every_alerts_endpoint_is_in_the_schema_signed_in_by_token_or_session(client):
    schema = client.get(reverse("api-schema"), {"format": "json"}).json()
    paths = {path: ops for path, ops in schema["paths"].items() if path.startswith("/api/v1/me/alerts")}
    assert {(path, method) for path, ops in paths.items() for method in ops} == {
        ("/api/v1/me/alerts", "get"),
        ("/api/v1/me/alerts", "post"),
        ("/api/v1/me/alerts/{rule_id}", "get"),
        ("/api/v1/me/alerts/{rule_id}", "patch"),
        ("/api/v1/me/alerts/{rule_id}", "delete"),
        ("/api/v1/me/alerts/preview", "post"),
        ("/api/v1/me/alerts/webhooks", "get"),
        ("/api/v1/me/alerts/webhooks", "post"),
        ("/api/v1/me/alerts/webhooks/{endpoint_id}", "get"),
        ("/api/v1/me/alerts/webhooks/{endpoint_id}", "patch"),
        ("/api/v1/me/alerts/webhooks/{endpoint_id}", "delete"),
        ("/api/v1/me/alerts/webhooks/{endpoint_id}/test", "post"),
        ("/api/v1/me/alerts/webhooks/{endpoint_id}/rotate", "post"),
        ("/api/v1/me/alerts/deliveries", "get"),
        ("/api/v1/me/alerts/feed", "get"),
        ("/api/v1/me/alerts/feed", "post"),
    }
    assert all(
        op["security"] == [{"tokenAuth": []}, {"cookieAuth": []}] for ops in paths.values() for op in ops.values()
    )
    components = schema["components"]["schemas"]
    assert "secret" in components["EndpointSecret"]["properties"]
    assert "secret" not in components["Endpoint"]["properties"]
    assert components["Rule"]["properties"]["threshold"]["type"] == "string"
