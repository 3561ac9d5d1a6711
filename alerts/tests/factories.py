from __future__ import annotations

import datetime as dt

import factory

from alerts.models import AlertRule, WebhookEndpoint
from tracking.tests.factories import UserFactory


class AlertRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AlertRule

    user = factory.SubFactory(UserFactory)
    kind = AlertRule.Kind.ENTERED_TOP
    feed = "top"
    threshold = 3
    window = 7
    scope = AlertRule.Scope.FEED
    email = AlertRule.Email.INSTANT


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    user = factory.SubFactory(UserFactory)
    name = "My receiver"
    url = "https://hooks.example.com/animedash"


def day(n: int) -> dt.date:
    """Day n of the hand-built histories: 1 January 2024 plus n days."""
    return dt.date(2024, 1, 1) + dt.timedelta(days=n)
