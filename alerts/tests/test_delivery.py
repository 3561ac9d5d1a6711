from __future__ import annotations

import datetime as dt
import itertools
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone
from prometheus_client import REGISTRY
from standardwebhooks import Webhook

from alerts import delivery
from alerts.models import AlertEvent, AlertRule, Delivery, WebhookEndpoint
from alerts.tests.factories import AlertRuleFactory, WebhookEndpointFactory, day
from alerts.tests.receiver import Answer, Receiver
from snapshots.tests.factories import AnimeFactory
from tracking.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# A public-looking name and address for the address check; connections to it go to the loopback receiver.
PUBLIC_HOST = "hooks.example.com"
PUBLIC_ADDRESS = "93.184.215.14"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def private_ok(settings: Any) -> None:
    settings.ALERTS_ALLOW_PRIVATE_WEBHOOKS = True


@pytest.fixture
def public_name(monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> str:
    """A URL whose name resolves to a public address (so it passes the check) but reaches the receiver."""
    real_getaddrinfo = socket.getaddrinfo
    real_address = delivery._address

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == PUBLIC_HOST:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_ADDRESS, port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    def address(url: str) -> tuple[str, str]:
        host, checked = real_address(url)
        return host, "127.0.0.1" if checked == PUBLIC_ADDRESS else checked

    monkeypatch.setattr(delivery.socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(delivery, "_address", address)
    return f"http://{PUBLIC_HOST}:{receiver.port}/hook"


def event_for(
    user: Any, *, kind: str = AlertRule.Kind.ENTERED_TOP, message: str = "Title 1 entered the top 3"
) -> AlertEvent:
    rule: Any = AlertRuleFactory(user=user, kind=kind)
    anime: Any = AnimeFactory(mal_id=1, title="Title 1")
    data = {"feed": "top", "date": day(0).isoformat(), "rank": 2, "mal_id": 1, "title": "Title 1", "kind": kind}
    return AlertEvent.objects.create(rule=rule, anime=anime, day=day(0), data=data, message=message)


def webhook_delivery(endpoint: WebhookEndpoint, event: AlertEvent | None = None) -> Delivery:
    event = event or event_for(endpoint.user)
    return Delivery.objects.create(user=endpoint.user, event=event, channel=Delivery.Channel.WEBHOOK, endpoint=endpoint)


def attempt(row: Delivery) -> str:
    with delivery.webhook_client() as client:
        outcome = delivery.delivery_attempt(row, client=client)
    row.refresh_from_db()
    return outcome


def counter(channel: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("alert_deliveries_total", {"channel": channel, "outcome": outcome}) or 0.0


# The body and its signature


def test_a_webhook_is_signed_per_standard_webhooks_and_carries_type_timestamp_and_data(receiver, private_ok):
    endpoint = WebhookEndpointFactory(url=receiver.url())
    row = webhook_delivery(endpoint)
    assert attempt(row) == "sent"
    (request,) = receiver.requests
    body = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert set(body) == {"type", "timestamp", "data"}
    assert body["type"] == "alert.entered_top"
    assert dt.datetime.fromisoformat(body["timestamp"]).tzinfo is not None
    assert body["data"]["message"] == "Title 1 entered the top 3"
    assert body["data"]["mal_id"] == 1
    assert body["data"]["rule_id"] == row.event.rule_id
    assert body["data"]["url"].endswith("/anime/1/")
    assert request.headers["webhook-id"] == f"msg_{row.pk}"
    assert request.headers["content-type"] == "application/json"
    assert (row.status, row.response_code, row.attempts) == (Delivery.Status.SENT, 200, 1)
    assert row.sent_at is not None


def test_a_signature_with_another_secret_does_not_verify(receiver, private_ok):
    endpoint = WebhookEndpointFactory(url=receiver.url())
    attempt(webhook_delivery(endpoint))
    (request,) = receiver.requests
    with pytest.raises(Exception, match="signature"):
        Webhook(WebhookEndpointFactory().secret).verify(request.body, request.headers)


def test_a_rotated_secret_signs_with_both_secrets_for_a_day(receiver, private_ok):
    from alerts import services

    endpoint = WebhookEndpointFactory(url=receiver.url())
    old = endpoint.secret
    services.endpoint_rotate(endpoint=endpoint)
    attempt(webhook_delivery(endpoint))
    (request,) = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(request.body, request.headers)
    Webhook(endpoint.secret).verify(request.body, request.headers)


@pytest.mark.parametrize(
    ("preset", "key"),
    [pytest.param("discord", "content", id="discord"), pytest.param("slack", "text", id="slack")],
)
def test_discord_and_slack_presets_send_their_message_shape_signed(receiver, private_ok, preset, key):
    endpoint = WebhookEndpointFactory(url=receiver.url(), preset=preset)
    attempt(webhook_delivery(endpoint))
    (request,) = receiver.requests
    body = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert body[key].startswith("Title 1 entered the top 3 ")
    assert body[key].endswith("/anime/1/")
    assert "type" not in body


def test_a_test_send_is_an_alert_test_message_logged_as_a_delivery(receiver, private_ok):
    endpoint = WebhookEndpointFactory(url=receiver.url())
    row = delivery.test_send(endpoint=endpoint)
    (request,) = receiver.requests
    body = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert body["type"] == "alert.test"
    assert (row.status, row.event, row.attempts) == (Delivery.Status.SENT, None, 1)


# Retries


def test_a_5xx_is_retried_with_the_same_webhook_id_until_it_is_sent(receiver, private_ok):
    receiver.answer(500)
    endpoint = WebhookEndpointFactory(url=receiver.url())
    row = webhook_delivery(endpoint)
    assert delivery.deliveries_send() == {"retry": 1}
    row.refresh_from_db()
    assert (row.status, row.response_code, row.attempts) == (Delivery.Status.PENDING, 500, 1)
    # Not due yet: a second run sends nothing.
    assert delivery.deliveries_send() == {}
    Delivery.objects.filter(pk=row.pk).update(next_try_at=timezone.now() - dt.timedelta(seconds=1))
    assert delivery.deliveries_send() == {"sent": 1}
    row.refresh_from_db()
    assert (row.status, row.response_code, row.attempts) == (Delivery.Status.SENT, 200, 2)
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == f"msg_{row.pk}"
    Webhook(endpoint.secret).verify(second.body, second.headers)


def test_retries_back_off_1_2_4_minutes_and_fail_after_max_attempts(receiver, private_ok):
    receiver.answer(*[503] * delivery.MAX_ATTEMPTS)
    row = webhook_delivery(WebhookEndpointFactory(url=receiver.url()))
    waits = []
    for n in range(1, delivery.MAX_ATTEMPTS):
        before = timezone.now()
        assert attempt(row) == "retry"
        assert row.attempts == n
        waits.append(row.next_try_at - before)
    assert [round(wait.total_seconds() / 60) for wait in waits[:4]] == [1, 2, 4, 8]
    assert all(later > earlier for earlier, later in itertools.pairwise(waits))
    assert attempt(row) == "failed"
    assert (row.status, row.attempts, row.next_try_at) == (Delivery.Status.FAILED, delivery.MAX_ATTEMPTS, None)
    assert row.error.startswith(f"Gave up after {delivery.MAX_ATTEMPTS} attempts.")
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1


@pytest.mark.parametrize("code", [pytest.param(400, id="400"), pytest.param(404, id="404")])
def test_a_4xx_is_not_retried(receiver, private_ok, code):
    receiver.answer(code)
    row = webhook_delivery(WebhookEndpointFactory(url=receiver.url()))
    assert attempt(row) == "failed"
    assert (row.status, row.response_code, row.next_try_at) == (Delivery.Status.FAILED, code, None)


def test_a_slow_receiver_times_out_and_is_retried(receiver, private_ok, monkeypatch):
    monkeypatch.setattr(delivery, "TIMEOUT_SECONDS", 0.5)
    receiver.answer(Answer(200, delay=2))
    row = webhook_delivery(WebhookEndpointFactory(url=receiver.url()))
    assert attempt(row) == "retry"
    assert row.status == Delivery.Status.PENDING
    assert row.error.startswith("Timed out")
    assert row.next_try_at is not None


def test_a_410_disables_the_endpoint_fails_its_pending_deliveries_and_mails_its_owner(receiver, private_ok, mailoutbox):
    receiver.answer(410)
    endpoint = WebhookEndpointFactory(url=receiver.url(), name="Blog bot")
    first = webhook_delivery(endpoint)
    other_event = AlertEvent.objects.create(
        rule=first.event.rule, anime=first.event.anime, day=day(1), data=first.event.data, message="Another"
    )
    later = webhook_delivery(endpoint, other_event)
    Delivery.objects.filter(pk=later.pk).update(next_try_at=timezone.now() + dt.timedelta(hours=1))
    assert attempt(first) == "gone"
    endpoint.refresh_from_db()
    later.refresh_from_db()
    assert not endpoint.active
    assert "410" in endpoint.disabled_reason
    assert (first.status, first.response_code) == (Delivery.Status.FAILED, 410)
    assert later.status == Delivery.Status.FAILED
    (mail,) = mailoutbox
    assert mail.to == [endpoint.user.email]
    assert "Blog bot" in mail.subject
    assert len(receiver.requests) == 1


def test_a_disabled_endpoint_is_not_called(receiver, private_ok):
    row = webhook_delivery(WebhookEndpointFactory(url=receiver.url(), active=False))
    assert attempt(row) == "failed"
    assert receiver.requests == []


# Where a webhook may go


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://127.0.0.1:9/hook", id="loopback"),
        pytest.param("http://10.1.2.3/hook", id="private-10"),
        pytest.param("http://192.168.0.10/hook", id="private-192"),
        pytest.param("http://169.254.169.254/latest/meta-data/", id="metadata"),
        pytest.param("http://[::1]:9/hook", id="loopback-v6"),
        pytest.param("http://[::ffff:127.0.0.1]:9/hook", id="mapped-v4"),
        pytest.param("http://0.0.0.0:9/hook", id="unspecified"),
    ],
)
@override_settings(ALERTS_ALLOW_PRIVATE_WEBHOOKS=False)
def test_private_addresses_are_refused_when_private_webhooks_are_off(url):
    row = webhook_delivery(WebhookEndpointFactory(url=url))
    assert attempt(row) == "failed"
    assert row.status == Delivery.Status.FAILED
    assert "not a public address" in row.error
    assert row.next_try_at is None


@override_settings(ALERTS_ALLOW_PRIVATE_WEBHOOKS=False)
def test_a_public_name_passes_the_check_and_is_sent_to_the_checked_address(receiver, public_name):
    endpoint = WebhookEndpointFactory(url=public_name)
    assert attempt(webhook_delivery(endpoint)) == "sent"
    (request,) = receiver.requests
    assert request.headers["host"] == f"{PUBLIC_HOST}:{receiver.port}"
    Webhook(endpoint.secret).verify(request.body, request.headers)


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("http://127.0.0.1:{port}/inside", id="loopback"),
        pytest.param("http://169.254.169.254/latest/meta-data/", id="metadata"),
    ],
)
@override_settings(ALERTS_ALLOW_PRIVATE_WEBHOOKS=False)
def test_a_redirect_to_a_private_address_is_refused(receiver, public_name, target):
    receiver.answer(Answer(302, {"location": target.format(port=receiver.port)}))
    row = webhook_delivery(WebhookEndpointFactory(url=public_name))
    assert attempt(row) == "failed"
    assert "not a public address" in row.error
    assert [r.path for r in receiver.requests] == ["/hook"]


def test_a_redirect_is_followed_when_private_webhooks_are_allowed(receiver, private_ok):
    receiver.answer(Answer(307, {"location": "/moved"}))
    endpoint = WebhookEndpointFactory(url=receiver.url())
    assert attempt(webhook_delivery(endpoint)) == "sent"
    assert [r.path for r in receiver.requests] == ["/hook", "/moved"]
    Webhook(endpoint.secret).verify(receiver.requests[1].body, receiver.requests[1].headers)


def test_too_many_redirects_fail(receiver, private_ok):
    receiver.answer(*[Answer(302, {"location": "/again"})] * (delivery.MAX_REDIRECTS + 1))
    row = webhook_delivery(WebhookEndpointFactory(url=receiver.url()))
    assert attempt(row) == "failed"
    assert "redirects" in row.error
    assert len(receiver.requests) == delivery.MAX_REDIRECTS + 1


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        pytest.param("ftp://hooks.example.com/x", "http", id="scheme"),
        pytest.param("http://user:pw@hooks.example.com/x", "password", id="credentials"),
        pytest.param("https:///x", "http", id="no-host"),
    ],
)
def test_url_problem_names_what_is_wrong(url, problem):
    assert problem in delivery.url_problem(url)


# E-mail


def test_an_instant_email_has_a_plain_text_and_an_html_part(mailoutbox):
    user = UserFactory()
    event = event_for(user, message="Title 1 entered the top 3 of the top feed at #2")
    Delivery.objects.create(user=user, event=event, channel=Delivery.Channel.EMAIL)
    assert delivery.deliveries_send() == {"sent": 1}
    (mail,) = mailoutbox
    assert mail.to == [user.email]
    assert mail.subject == event.message
    assert event.message in mail.body
    ((html, mimetype),) = mail.alternatives
    assert mimetype == "text/html"
    assert "Title 1" in html
    assert Delivery.objects.get().status == Delivery.Status.SENT


def test_the_digest_sends_each_person_one_mail_with_all_their_waiting_events(mailoutbox):
    alice, bob = UserFactory(), UserFactory()
    rule = AlertRuleFactory(user=alice, email=AlertRule.Email.DIGEST)
    for n, title in enumerate(["Alpha", "Beta", "Gamma"]):
        anime = AnimeFactory(mal_id=10 + n, title=title)
        event = AlertEvent.objects.create(rule=rule, anime=anime, day=day(n), message=f"{title} moved")
        Delivery.objects.create(user=alice, event=event, channel=Delivery.Channel.DIGEST)
    bob_event = AlertEvent.objects.create(
        rule=AlertRuleFactory(user=bob), anime=AnimeFactory(mal_id=20, title="Delta"), day=day(0), message="Delta moved"
    )
    Delivery.objects.create(user=bob, event=bob_event, channel=Delivery.Channel.DIGEST)
    # Instant deliveries do not send digests, and the digest is not sent by the instant queue.
    assert delivery.deliveries_send() == {}
    assert delivery.digests_send() == 2
    by_person = {mail.to[0]: mail for mail in mailoutbox}
    assert set(by_person) == {alice.email, bob.email}
    assert "3 ranking moves" in by_person[alice.email].subject
    assert all(f"{title} moved" in by_person[alice.email].body for title in ["Alpha", "Beta", "Gamma"])
    assert "Delta" not in by_person[alice.email].body
    assert "1 ranking move today" in by_person[bob.email].subject
    assert by_person[bob.email].alternatives[0][1] == "text/html"
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENT}
    # Nothing is waiting any more.
    assert delivery.digests_send() == 0
    assert len(mailoutbox) == 2


# The queue and its metrics


def test_claimed_deliveries_are_not_sent_by_a_second_worker(receiver, private_ok):
    row = webhook_delivery(WebhookEndpointFactory(url=receiver.url()))
    claimed = delivery._claim(10)
    assert [d.pk for d in claimed] == [row.pk]
    # Another worker running now finds nothing due.
    assert delivery.deliveries_send() == {}
    assert receiver.requests == []


def test_a_second_run_does_not_resend_what_was_sent(receiver, private_ok, mailoutbox):
    endpoint = WebhookEndpointFactory(url=receiver.url())
    row = webhook_delivery(endpoint)
    Delivery.objects.create(user=endpoint.user, event=row.event, channel=Delivery.Channel.EMAIL)
    assert delivery.deliveries_send() == {"sent": 2}
    assert delivery.deliveries_send() == {}
    assert len(receiver.requests) == 1
    assert len(mailoutbox) == 1


def test_each_attempt_counts_in_the_deliveries_metric(receiver, private_ok):
    receiver.answer(500, 200)
    row = webhook_delivery(WebhookEndpointFactory(url=receiver.url()))
    sent, retry = counter("webhook", "sent"), counter("webhook", "retry")
    attempt(row)
    assert counter("webhook", "retry") == retry + 1
    attempt(row)
    assert counter("webhook", "sent") == sent + 1
    assert counter("webhook", "retry") == retry + 1


def test_the_backlog_collector_reports_pending_retrying_and_the_oldest_age(receiver, private_ok):
    receiver.answer(500)
    endpoint = WebhookEndpointFactory(url=receiver.url())
    failing = webhook_delivery(endpoint)
    attempt(failing)
    Delivery.objects.create(user=endpoint.user, event=failing.event, channel=Delivery.Channel.EMAIL)
    Delivery.objects.filter(pk=failing.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))

    def gauge(name: str, channel: str) -> float | None:
        return REGISTRY.get_sample_value(name, {"channel": channel})

    assert gauge("alert_deliveries_pending", "webhook") == 1
    assert gauge("alert_deliveries_retrying", "webhook") == 1
    assert gauge("alert_deliveries_pending", "email") == 1
    assert gauge("alert_deliveries_retrying", "email") == 0
    assert gauge("alert_deliveries_pending", "digest") == 0
    assert 3500 < gauge("alert_delivery_oldest_pending_seconds", "webhook") < 3700
    assert gauge("alert_delivery_oldest_pending_seconds", "digest") == 0


def test_the_payload_of_an_event_is_plain_json(private_ok):
    event = event_for(UserFactory())
    payload = delivery.event_payload(event, at=timezone.now())
    assert json.loads(delivery.body_for(WebhookEndpoint(preset="standard"), payload)) == json.loads(json.dumps(payload))
