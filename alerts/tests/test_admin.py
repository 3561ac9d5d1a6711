from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from alerts import services
from alerts.models import AlertEvent, AlertRule, AlertState, Delivery
from alerts.tests.factories import AlertRuleFactory, WebhookEndpointFactory, day
from snapshots.tests.factories import AnimeFactory
from tracking.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MODELS = ["alertrule", "alertevent", "webhookendpoint", "delivery"]


@pytest.fixture
def rows():
    """One of each: a rule with a webhook, its event, and the event's delivery; and the person's feed key."""
    user = UserFactory()
    endpoint = WebhookEndpointFactory(user=user)
    services.endpoint_rotate(endpoint=endpoint)
    rule = AlertRuleFactory(user=user)
    rule.webhooks.add(endpoint)
    event = AlertEvent.objects.create(
        rule=rule, anime=AnimeFactory(mal_id=1, title="Title 1"), day=day(0), message="Title 1 entered the top 3"
    )
    delivery = Delivery.objects.create(user=user, event=event, channel=Delivery.Channel.WEBHOOK, endpoint=endpoint)
    key = services.feed_key(user=user)
    return {
        "alertrule": rule,
        "alertevent": event,
        "webhookendpoint": endpoint,
        "delivery": delivery,
        "secrets": [endpoint.secret, endpoint.previous_secret, key.key],
        "user": user,
    }


def pages(rows: dict[str, Any]) -> list[str]:
    urls = []
    for model in MODELS:
        urls.append(reverse(f"admin:alerts_{model}_changelist"))
        urls.append(reverse(f"admin:alerts_{model}_change", args=[rows[model].pk]))
    urls.append(reverse("admin:auth_user_change", args=[rows["user"].pk]))
    return urls


@pytest.mark.parametrize("model", MODELS, ids=MODELS)
def test_each_changelist_and_change_page_opens_for_staff(admin_client, rows, model):
    assert admin_client.get(reverse(f"admin:alerts_{model}_changelist")).status_code == 200
    assert admin_client.get(reverse(f"admin:alerts_{model}_changelist"), {"q": "fan"}).status_code == 200
    assert admin_client.get(reverse(f"admin:alerts_{model}_change", args=[rows[model].pk])).status_code == 200


def test_the_admin_is_closed_to_people_who_are_not_staff(client, rows):
    client.force_login(rows["user"])
    response = client.get(reverse("admin:alerts_alertrule_changelist"))
    assert response.status_code == 302


def test_staff_never_see_a_webhook_secret_or_a_feed_key(admin_client, rows):
    for url in pages(rows):
        html = admin_client.get(url).content.decode()
        for secret in rows["secrets"]:
            assert secret
            assert secret not in html, url


def rule_form(rule: AlertRule, **changes: object) -> dict[str, object]:
    data = {
        "user": rule.user_id,
        "kind": rule.kind,
        "feed": rule.feed,
        "threshold": "3",
        "window": "7",
        "scope": rule.scope,
        "anime": "",
        "statuses": "[]",
        "email": rule.email,
        "atom": "on",
        "active": "on",
    }
    data.update(changes)
    return data


def test_an_admin_rule_using_another_person_s_webhook_is_refused(admin_client, rows):
    rule = rows["alertrule"]
    theirs = WebhookEndpointFactory(user=UserFactory())
    url = reverse("admin:alerts_alertrule_change", args=[rule.pk])
    response = admin_client.post(url, rule_form(rule, webhooks=[theirs.pk]))
    assert response.status_code == 200
    assert "A rule can only use its owner" in response.content.decode()
    assert list(rule.webhooks.all()) == [rows["webhookendpoint"]]


def test_an_admin_rule_with_the_owner_s_webhook_is_saved(admin_client, rows):
    rule = rows["alertrule"]
    mine = WebhookEndpointFactory(user=rule.user)
    url = reverse("admin:alerts_alertrule_change", args=[rule.pk])
    response = admin_client.post(url, rule_form(rule, webhooks=[mine.pk], threshold="5"))
    assert response.status_code == 302, response.content.decode()[:2000]
    rule.refresh_from_db()
    assert rule.threshold == 5
    assert list(rule.webhooks.all()) == [mine]


def test_an_admin_rule_breaking_a_rule_of_rules_is_refused(admin_client, rows):
    rule = rows["alertrule"]
    url = reverse("admin:alerts_alertrule_change", args=[rule.pk])
    response = admin_client.post(url, rule_form(rule, scope="title"))
    assert response.status_code == 200
    assert "Pick the title this rule watches." in response.content.decode()


def test_an_admin_edit_of_the_condition_starts_the_rule_again_from_the_history(admin_client):
    rule = AlertRuleFactory(kind=AlertRule.Kind.ENTERED_TOP, threshold=3, evaluated_on=day(5))
    AlertState.objects.create(rule=rule, anime=AnimeFactory(), since=day(5))
    page = admin_client.get(f"/admin/alerts/alertrule/{rule.pk}/change/")
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update(threshold="5", statuses="[]", webhooks=[])
    response = admin_client.post(f"/admin/alerts/alertrule/{rule.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    rule.refresh_from_db()
    assert rule.threshold == 5
    assert rule.evaluated_on is None
    assert not AlertState.objects.filter(rule=rule).exists()
