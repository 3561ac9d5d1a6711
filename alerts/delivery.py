"""Sending: each pending delivery goes out by e-mail or as a signed webhook, and is retried with backoff.

Webhooks are signed per the Standard Webhooks spec (the `standardwebhooks` package): the `webhook-id` is
the delivery's, the same on every retry, so a receiver can drop a repeat. A webhook URL must resolve to
public addresses when it is sent, and each redirect is checked the same way; the request goes to the
address that was checked, so a name cannot resolve to a public address for the check and a private one
for the request.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import socket
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone
from standardwebhooks import Webhook

from alerts import metrics
from alerts.models import AlertEvent, Delivery, WebhookEndpoint

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10
MAX_ATTEMPTS = 8
# Retries wait 1, 2, 4 ... minutes: eight attempts span about four hours.
BACKOFF = dt.timedelta(minutes=1)
MAX_REDIRECTS = 3
# A claimed delivery is not picked again by another worker for this long (a worker that dies mid-send).
CLAIM = dt.timedelta(minutes=5)
BATCH = 200
USER_AGENT = "AnimeDash-Webhooks/1"
ROTATION_OVERLAP = dt.timedelta(days=1)


class Blocked(Exception):
    """The webhook URL is not allowed: a scheme other than http(s), or an address that is not public."""


@dataclass(frozen=True)
class Outcome:
    status: str  # Delivery.Status
    code: int | None = None
    error: str = ""
    retry: bool = False
    gone: bool = False


# The webhook's body


def event_payload(event: AlertEvent | None, *, at: dt.datetime) -> dict[str, Any]:
    """The Standard Webhooks body: {type, timestamp, data}. A test send has type `alert.test`."""
    if event is None:
        data: dict[str, Any] = {"message": "A test from AnimeDash: this webhook works."}
        return {"type": "alert.test", "timestamp": at.isoformat(), "data": data}
    data = {
        **event.data,
        "rule_id": event.rule_id,
        "message": event.message,
        "url": site_url(f"/anime/{event.anime_id}/"),
    }
    return {"type": f"alert.{event.rule.kind}", "timestamp": at.isoformat(), "data": data}


def body_for(endpoint: WebhookEndpoint, payload: dict[str, Any]) -> bytes:
    """The bytes sent: the payload itself, or the Discord or Slack message built from it."""
    text = payload["data"]["message"]
    if "url" in payload["data"]:
        text = f"{text} {payload['data']['url']}"
    if endpoint.preset == WebhookEndpoint.Preset.DISCORD:
        body: dict[str, Any] = {"content": text[:2000], "allowed_mentions": {"parse": []}}
    elif endpoint.preset == WebhookEndpoint.Preset.SLACK:
        body = {"text": text}
    else:
        body = payload
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def signed_headers(endpoint: WebhookEndpoint, msg_id: str, body: bytes, at: dt.datetime) -> dict[str, str]:
    """The Standard Webhooks headers; within a day of a rotation, signed with the new and the old secret."""
    secrets = [endpoint.secret]
    if endpoint.previous_secret and endpoint.rotated_at and at - endpoint.rotated_at < ROTATION_OVERLAP:
        secrets.append(endpoint.previous_secret)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(Webhook(secret).sign(msg_id, at, body) for secret in secrets),
    }


def site_url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


# Where a webhook may go


def url_problem(url: str) -> str:
    """Why a webhook URL cannot be saved (its form), or "" when it can; the addresses are checked at send time."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Use an http:// or https:// URL."
    if parts.username or parts.password:
        return "Leave the user name and password out of the URL; sign requests with the secret instead."
    return ""


def _address(url: str) -> tuple[str, str]:
    """The URL's host and the checked address to connect to. Raises Blocked."""
    problem = url_problem(url)
    if problem:
        raise Blocked(problem)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConnectionError(f"Cannot resolve {host}: {exc}") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not settings.ALERTS_ALLOW_PRIVATE_WEBHOOKS:
        bad = [a for a in addresses if not a.is_global or a.is_multicast]
        if bad:
            raise Blocked(f"{host} resolves to {bad[0]}, which is not a public address.")
    return host, str(addresses[0])


def _post(client: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST to the checked address of `url`, following at most MAX_REDIRECTS redirects, each checked too."""
    for _ in range(MAX_REDIRECTS + 1):
        host, address = _address(url)
        parts = urlsplit(url)
        netloc = f"[{address}]" if ":" in address else address
        if parts.port:
            netloc += f":{parts.port}"
        pinned = parts._replace(netloc=netloc).geturl()
        request = client.build_request(
            "POST",
            pinned,
            content=body,
            headers={**headers, "host": parts.netloc.rsplit("@", 1)[-1]},
            extensions={"sni_hostname": host} if parts.scheme == "https" else {},
        )
        response = client.send(request)
        if not response.is_redirect:
            return response
        url = urljoin(url, response.headers["location"])
    raise Blocked(f"More than {MAX_REDIRECTS} redirects.")


def webhook_client() -> httpx.Client:
    return httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False)


def webhook_send(client: httpx.Client, endpoint: WebhookEndpoint, msg_id: str, payload: dict[str, Any]) -> Outcome:
    """Send one webhook; what happened decides whether it is retried."""
    body = body_for(endpoint, payload)
    at = timezone.now()
    try:
        response = _post(client, endpoint.url, body, signed_headers(endpoint, msg_id, body, at))
    except Blocked as exc:
        return Outcome(Delivery.Status.FAILED, error=str(exc))
    except (httpx.HTTPError, ConnectionError, OSError) as exc:
        kind = "Timed out" if isinstance(exc, httpx.TimeoutException) else "Could not connect"
        return Outcome(Delivery.Status.PENDING, error=f"{kind}: {exc}"[:300], retry=True)
    code = response.status_code
    if 200 <= code < 300:
        return Outcome(Delivery.Status.SENT, code=code)
    if code == 410:
        return Outcome(Delivery.Status.FAILED, code=code, error="The receiver answered 410 Gone.", gone=True)
    if code >= 500:
        return Outcome(Delivery.Status.PENDING, code=code, error=f"The receiver answered {code}.", retry=True)
    return Outcome(Delivery.Status.FAILED, code=code, error=f"The receiver answered {code}; not retried.")


# E-mail


def email_send(delivery: Delivery) -> Outcome:
    event = delivery.event
    assert event is not None
    context = {"event": event, "url": site_url(f"/anime/{event.anime_id}/"), "alerts_url": site_url("/my/alerts/")}
    return _mail(delivery.user.email, event.message, "alerts/email/event", context)


def digest_send(user_email: str, events: list[AlertEvent]) -> Outcome:
    subject = f"AnimeDash: {len(events)} ranking move{'s' if len(events) != 1 else ''} today"
    context = {"events": events, "site_url": site_url(""), "alerts_url": site_url("/my/alerts/")}
    return _mail(user_email, subject, "alerts/email/digest", context)


def _mail(to: str, subject: str, template: str, context: dict[str, Any]) -> Outcome:
    message = EmailMultiAlternatives(subject=subject[:200], body=render_to_string(f"{template}.txt", context), to=[to])
    message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    try:
        message.send()
    except Exception as exc:  # smtplib's errors are OSErrors, but each mail backend may raise its own
        return Outcome(Delivery.Status.PENDING, error=f"Mail not sent: {exc}"[:300], retry=True)
    return Outcome(Delivery.Status.SENT)


# The queue


def deliveries_send(*, limit: int = 10_000) -> Counter[str]:
    """Send every due e-mail and webhook delivery (up to `limit`); returns the count per outcome."""
    outcomes: Counter[str] = Counter()
    with webhook_client() as client:
        while sum(outcomes.values()) < limit:
            batch = _claim(min(BATCH, limit - sum(outcomes.values())))
            if not batch:
                break
            for delivery in batch:
                outcomes[delivery_attempt(delivery, client=client)] += 1
    return outcomes


def _claim(size: int) -> list[Delivery]:
    """Due deliveries, each claimed for a while so another worker does not send it at the same time."""
    now = timezone.now()
    due = Delivery.objects.filter(
        Q(next_try_at__isnull=True) | Q(next_try_at__lte=now),
        status=Delivery.Status.PENDING,
        channel__in=(Delivery.Channel.EMAIL, Delivery.Channel.WEBHOOK),
    ).order_by("next_try_at", "id")
    with transaction.atomic():
        ids = list(due.select_for_update(skip_locked=True).values_list("id", flat=True)[:size])
        Delivery.objects.filter(pk__in=ids).update(next_try_at=now + CLAIM)
    return list(Delivery.objects.filter(pk__in=ids).select_related("event__rule", "endpoint", "user").order_by("id"))


def delivery_attempt(delivery: Delivery, *, client: httpx.Client) -> str:
    """Try one delivery once and record what happened; returns the outcome's name for metrics."""
    if delivery.channel == Delivery.Channel.EMAIL:
        outcome = email_send(delivery)
    else:
        endpoint = delivery.endpoint
        assert endpoint is not None
        if not endpoint.active:
            outcome = Outcome(Delivery.Status.FAILED, error="The webhook is disabled.")
        else:
            payload = event_payload(delivery.event, at=timezone.now())
            outcome = webhook_send(client, endpoint, f"msg_{delivery.pk}", payload)
    return _record(delivery, outcome)


def test_send(*, endpoint: WebhookEndpoint) -> Delivery:
    """The "send a test" button: one signed `alert.test` message now, recorded in the delivery log."""
    delivery = Delivery.objects.create(user_id=endpoint.user_id, channel=Delivery.Channel.WEBHOOK, endpoint=endpoint)
    with webhook_client() as client:
        outcome = webhook_send(client, endpoint, f"msg_{delivery.pk}", event_payload(None, at=timezone.now()))
    # A test is tried once: its result is what the person wants to see now.
    if outcome.retry:
        outcome = Outcome(Delivery.Status.FAILED, code=outcome.code, error=outcome.error)
    _record(delivery, outcome)
    return delivery


def _record(delivery: Delivery, outcome: Outcome) -> str:
    now = timezone.now()
    delivery.attempts += 1
    delivery.response_code = outcome.code
    delivery.error = outcome.error
    delivery.status = outcome.status
    delivery.next_try_at = None
    if outcome.status == Delivery.Status.SENT:
        delivery.sent_at = now
    elif outcome.retry and delivery.attempts < MAX_ATTEMPTS:
        delivery.next_try_at = now + BACKOFF * 2 ** (delivery.attempts - 1)
    elif outcome.retry:
        delivery.status = Delivery.Status.FAILED
        delivery.error = f"Gave up after {delivery.attempts} attempts. {outcome.error}"[:300]
    delivery.save(update_fields=["attempts", "response_code", "error", "status", "next_try_at", "sent_at"])
    name = (
        "sent"
        if delivery.status == Delivery.Status.SENT
        else "retry"
        if outcome.retry and delivery.next_try_at
        else "failed"
    )
    if outcome.gone and delivery.endpoint is not None:
        endpoint_gone(delivery.endpoint)
        name = "gone"
    metrics.DELIVERIES.labels(channel=delivery.channel, outcome=name).inc()
    return name


def endpoint_gone(endpoint: WebhookEndpoint) -> None:
    """A 410: the receiver is gone for good. Stop sending to it and tell its owner."""
    reason = f"Disabled on {timezone.now():%Y-%m-%d %H:%M} UTC: the receiver answered 410 Gone."
    updated = WebhookEndpoint.objects.filter(pk=endpoint.pk, active=True).update(active=False, disabled_reason=reason)
    Delivery.objects.filter(endpoint=endpoint, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.FAILED, error="The webhook was disabled (410 Gone).", next_try_at=None
    )
    if updated and endpoint.user.email:
        context = {"endpoint": endpoint, "reason": reason, "alerts_url": site_url("/my/alerts/")}
        _mail(
            endpoint.user.email,
            f"AnimeDash: your webhook “{endpoint.name}” was disabled",
            "alerts/email/endpoint_gone",
            context,
        )


def digests_send() -> int:
    """Send each person one e-mail with their waiting digest events; returns how many e-mails were sent."""
    waiting = Delivery.objects.filter(channel=Delivery.Channel.DIGEST, status=Delivery.Status.PENDING)
    by_user: dict[int, list[Delivery]] = {}
    for delivery in waiting.select_related("event__rule", "user").order_by("user_id", "event__day", "id"):
        by_user.setdefault(delivery.user_id, []).append(delivery)
    sent = 0
    for deliveries in by_user.values():
        user = deliveries[0].user
        outcome = digest_send(user.email, [d.event for d in deliveries if d.event is not None])
        for delivery in deliveries:
            _record(delivery, outcome)
        sent += outcome.status == Delivery.Status.SENT
    return sent
