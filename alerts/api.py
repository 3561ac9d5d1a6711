"""The person's alert rules, webhooks, delivery log and private feed over the API, under /api/v1/me/alerts.

Signed in as for the rest of /api/v1/me/ (a session with its CSRF token, or `Authorization: Bearer ad_...`).
Every query starts from the person, so another person's rule or webhook is a 404. The services check the
rules; a broken one is a 400 naming the field, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from alerts import delivery, services
from alerts.models import AlertRule, Delivery, WebhookEndpoint
from snapshots.feeds import FEEDS
from snapshots.models import Anime
from tracking.api import ListPagination, PersonalApi
from tracking.models import ListStatus

# Ids are PostgreSQL integers: a larger one is a 400 naming the field, not a database error.
ID_MAX = 2**31 - 1


class AlertsApi(PersonalApi):
    # JSON only: a form-encoded body would turn a missing boolean into false and cannot carry lists.
    parser_classes = [JSONParser]


# Rules


class RuleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=AlertRule.Kind.choices)
    feed = serializers.ChoiceField(choices=list(FEEDS))
    threshold = serializers.DecimalField(max_digits=6, decimal_places=2, coerce_to_string=True)
    window = serializers.ChoiceField(choices=[7, 30])
    scope = serializers.ChoiceField(choices=AlertRule.Scope.choices)
    anime = serializers.IntegerField(source="anime_id", allow_null=True, help_text="The title's MyAnimeList id.")
    statuses = serializers.ListField(child=serializers.ChoiceField(choices=ListStatus.choices))
    email = serializers.ChoiceField(choices=AlertRule.Email.choices)
    webhooks = serializers.SerializerMethodField(help_text="Webhook ids.")
    atom = serializers.BooleanField(help_text="Show what the rule finds in the person's private Atom feed.")
    active = serializers.BooleanField()
    evaluated_on = serializers.DateField(allow_null=True, help_text="The last snapshot day the rule was checked on.")
    description = serializers.CharField(source="describe", help_text="The rule in words.")
    created_at = serializers.DateTimeField()

    def get_webhooks(self, rule: AlertRule) -> list[int]:
        return [endpoint.pk for endpoint in rule.webhooks.all()]


class RulePageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = RuleSerializer(many=True)


class RuleChangesSerializer(serializers.Serializer):
    """What a person may set on a rule; the rules between fields (a threshold per kind...) are the service's."""

    kind = serializers.ChoiceField(choices=AlertRule.Kind.choices, required=False)
    feed = serializers.ChoiceField(choices=list(FEEDS), required=False)
    threshold = serializers.DecimalField(
        max_digits=6,
        decimal_places=2,
        required=False,
        help_text="The top N (entered, left), places (climbed, fell) or score points (score moved); "
        "unused by new best.",
    )
    window = serializers.ChoiceField(
        choices=[7, 30], required=False, help_text="Days climbed, fell and score moved look back."
    )
    scope = serializers.ChoiceField(choices=AlertRule.Scope.choices, required=False)
    anime = serializers.IntegerField(
        min_value=1,
        max_value=ID_MAX,
        allow_null=True,
        required=False,
        help_text="The MyAnimeList id of the title a `title` rule watches.",
    )
    statuses = serializers.ListField(
        child=serializers.ChoiceField(choices=ListStatus.choices),
        max_length=len(ListStatus.values),
        required=False,
        help_text="The list statuses a `list` rule watches; empty for all of them.",
    )
    email = serializers.ChoiceField(choices=AlertRule.Email.choices, required=False)
    webhooks = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=ID_MAX),
        max_length=services.ENDPOINTS_MAX,
        required=False,
        help_text="Ids of the person's webhooks to send to.",
    )
    atom = serializers.BooleanField(required=False)
    active = serializers.BooleanField(required=False)


class NewRuleSerializer(RuleChangesSerializer):
    kind = serializers.ChoiceField(choices=AlertRule.Kind.choices)


def _rules(user: User) -> QuerySet[AlertRule]:
    return AlertRule.objects.filter(user=user).select_related("anime").prefetch_related("webhooks")


class MyAlertRulesApi(AlertsApi):
    """The person's alert rules, newest first (limit/offset); create one."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "limit", int, description=f"Rules per page (default 100, at most {ListPagination.max_limit})."
            ),
            OpenApiParameter("offset", int, description="Rules to skip."),
        ],
        responses=RulePageSerializer,
        operation_id="v1_me_alerts_list",
    )
    def get(self, request: Request) -> Response:
        paginator = ListPagination()
        page = paginator.paginate_queryset(_rules(_me(request)), request, view=self)
        return paginator.get_paginated_response(RuleSerializer(page, many=True).data)

    @extend_schema(request=NewRuleSerializer, responses={201: RuleSerializer}, operation_id="v1_me_alerts_create")
    def post(self, request: Request) -> Response:
        data = NewRuleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rule = _rule_save(request, dict(data.validated_data))
        return Response(RuleSerializer(_rules(_me(request)).get(pk=rule.pk)).data, status=status.HTTP_201_CREATED)


@extend_schema(parameters=[OpenApiParameter("rule_id", int, OpenApiParameter.PATH, description="The rule's id.")])
class MyAlertRuleApi(AlertsApi):
    """One of the person's rules."""

    @extend_schema(responses=RuleSerializer, operation_id="v1_me_alerts_rule_retrieve")
    def get(self, request: Request, rule_id: int) -> Response:
        return Response(RuleSerializer(self._rule(request, rule_id)).data)

    @extend_schema(request=RuleChangesSerializer, responses=RuleSerializer, operation_id="v1_me_alerts_rule_update")
    def patch(self, request: Request, rule_id: int) -> Response:
        rule = self._rule(request, rule_id)
        data = RuleChangesSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        _rule_save(request, dict(data.validated_data), rule=rule)
        return Response(RuleSerializer(self._rule(request, rule_id)).data)

    @extend_schema(responses={204: None}, operation_id="v1_me_alerts_rule_destroy")
    def delete(self, request: Request, rule_id: int) -> Response:
        self._rule(request, rule_id)
        services.rule_delete(user=_me(request), rule_id=rule_id)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _rule(self, request: Request, rule_id: int) -> AlertRule:
        return get_object_or_404(_rules(_me(request)), pk=rule_id)


class PreviewEventSerializer(serializers.Serializer):
    date = serializers.DateField(source="day", help_text="The snapshot day the rule would have fired on.")
    mal_id = serializers.IntegerField()
    title = serializers.CharField()
    message = serializers.CharField()


class PreviewSerializer(serializers.Serializer):
    results = PreviewEventSerializer(many=True)


class MyAlertPreviewApi(AlertsApi):
    """What a rule (not saved) would have sent over the feed's last 30 snapshot days, newest first."""

    @extend_schema(request=NewRuleSerializer, responses=PreviewSerializer, operation_id="v1_me_alerts_preview")
    def post(self, request: Request) -> Response:
        data = NewRuleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rule = _unsaved_rule(_me(request), data.validated_data)
        try:
            events = services.rule_preview(rule=rule)
        except DjangoValidationError as exc:
            raise _invalid(exc) from exc
        return Response(PreviewSerializer({"results": events}).data)


# Webhooks


class EndpointSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    url = serializers.URLField()
    preset = serializers.ChoiceField(choices=WebhookEndpoint.Preset.choices)
    active = serializers.BooleanField()
    disabled_reason = serializers.CharField(help_text="Why the webhook stopped receiving (a 410), or empty.")
    created_at = serializers.DateTimeField()


class EndpointSecretSerializer(EndpointSerializer):
    """A webhook with its signing secret, shown only when created or rotated."""

    secret = serializers.CharField(help_text="The Standard Webhooks secret (whsec_...): keep it, it is shown once.")


class EndpointPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = EndpointSerializer(many=True)


class EndpointChangesSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    url = serializers.URLField(max_length=500, required=False, help_text="http(s), to a public address.")
    preset = serializers.ChoiceField(choices=WebhookEndpoint.Preset.choices, required=False)
    active = serializers.BooleanField(required=False, help_text="true re-enables a disabled webhook.")


class NewEndpointSerializer(EndpointChangesSerializer):
    name = serializers.CharField(max_length=100)
    url = serializers.URLField(max_length=500, help_text="http(s), to a public address.")


class MyWebhooksApi(AlertsApi):
    """The person's webhooks (limit/offset); create one (its secret is in this answer only)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("limit", int, description="Webhooks per page (default 100)."),
            OpenApiParameter("offset", int, description="Webhooks to skip."),
        ],
        responses=EndpointPageSerializer,
        operation_id="v1_me_alerts_webhooks_list",
    )
    def get(self, request: Request) -> Response:
        paginator = ListPagination()
        page = paginator.paginate_queryset(WebhookEndpoint.objects.filter(user=_me(request)), request, view=self)
        return paginator.get_paginated_response(EndpointSerializer(page, many=True).data)

    @extend_schema(
        request=NewEndpointSerializer,
        responses={201: EndpointSecretSerializer},
        operation_id="v1_me_alerts_webhooks_create",
    )
    def post(self, request: Request) -> Response:
        data = NewEndpointSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = _endpoint_save(request, dict(data.validated_data))
        return Response(EndpointSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)


ENDPOINT_ID = OpenApiParameter("endpoint_id", int, OpenApiParameter.PATH, description="The webhook's id.")


def _endpoint(request: Request, endpoint_id: int) -> WebhookEndpoint:
    return get_object_or_404(WebhookEndpoint, user=_me(request), pk=endpoint_id)


@extend_schema(parameters=[ENDPOINT_ID])
class MyWebhookApi(AlertsApi):
    """One of the person's webhooks (without its secret)."""

    @extend_schema(responses=EndpointSerializer, operation_id="v1_me_alerts_webhook_retrieve")
    def get(self, request: Request, endpoint_id: int) -> Response:
        return Response(EndpointSerializer(_endpoint(request, endpoint_id)).data)

    @extend_schema(
        request=EndpointChangesSerializer, responses=EndpointSerializer, operation_id="v1_me_alerts_webhook_update"
    )
    def patch(self, request: Request, endpoint_id: int) -> Response:
        endpoint = _endpoint(request, endpoint_id)
        data = EndpointChangesSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(EndpointSerializer(_endpoint_save(request, dict(data.validated_data), endpoint)).data)

    @extend_schema(responses={204: None}, operation_id="v1_me_alerts_webhook_destroy")
    def delete(self, request: Request, endpoint_id: int) -> Response:
        _endpoint(request, endpoint_id)
        services.endpoint_delete(user=_me(request), endpoint_id=endpoint_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    channel = serializers.ChoiceField(choices=Delivery.Channel.choices)
    endpoint = serializers.IntegerField(source="endpoint_id", allow_null=True, help_text="The webhook's id.")
    event = serializers.IntegerField(source="event_id", allow_null=True, help_text="Null for a test send.")
    message = serializers.CharField(source="event.message", allow_null=True, help_text="The event's message.")
    status = serializers.ChoiceField(choices=Delivery.Status.choices)
    attempts = serializers.IntegerField()
    response_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    next_try_at = serializers.DateTimeField(allow_null=True)
    sent_at = serializers.DateTimeField(allow_null=True)


@extend_schema(parameters=[ENDPOINT_ID])
class MyWebhookTestApi(AlertsApi):
    """Send the webhook a signed `alert.test` message now, once; the answer is the delivery, as logged."""

    @extend_schema(request=None, responses=DeliverySerializer, operation_id="v1_me_alerts_webhook_test")
    def post(self, request: Request, endpoint_id: int) -> Response:
        sent = delivery.test_send(endpoint=_endpoint(request, endpoint_id))
        return Response(DeliverySerializer(sent).data)


@extend_schema(parameters=[ENDPOINT_ID])
class MyWebhookRotateApi(AlertsApi):
    """Give the webhook a new secret (the old one stops signing at once); the answer is the only place it shows."""

    @extend_schema(request=None, responses=EndpointSecretSerializer, operation_id="v1_me_alerts_webhook_rotate")
    def post(self, request: Request, endpoint_id: int) -> Response:
        endpoint = services.endpoint_rotate(endpoint=_endpoint(request, endpoint_id))
        return Response(EndpointSecretSerializer(endpoint).data)


# Deliveries and the private feed


class DeliveryPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = DeliverySerializer(many=True)


class DeliveryFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Delivery.Status.choices, required=False)
    endpoint = serializers.IntegerField(min_value=1, max_value=ID_MAX, required=False, help_text="A webhook's id.")


class MyDeliveriesApi(AlertsApi):
    """The person's delivery log, newest first (limit/offset): each e-mail, webhook and test send."""

    @extend_schema(
        parameters=[
            DeliveryFilterSerializer,
            OpenApiParameter(
                "limit", int, description=f"Deliveries per page (default 100, at most {ListPagination.max_limit})."
            ),
            OpenApiParameter("offset", int, description="Deliveries to skip."),
        ],
        responses=DeliveryPageSerializer,
        operation_id="v1_me_alerts_deliveries_list",
    )
    def get(self, request: Request) -> Response:
        filters = DeliveryFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        chosen = filters.validated_data
        deliveries = Delivery.objects.filter(user=_me(request)).select_related("event").order_by("-created_at", "-id")
        if "status" in chosen:
            deliveries = deliveries.filter(status=chosen["status"])
        if "endpoint" in chosen:
            deliveries = deliveries.filter(endpoint_id=chosen["endpoint"])
        paginator = ListPagination()
        page = paginator.paginate_queryset(deliveries, request, view=self)
        return paginator.get_paginated_response(DeliverySerializer(page, many=True).data)


class FeedUrlSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="The private Atom feed: whoever has this URL reads the person's alerts.")


class MyAlertFeedApi(AlertsApi):
    """The person's private Atom feed URL; POST makes a new one (the old URL answers 404 from then on)."""

    @extend_schema(responses=FeedUrlSerializer, operation_id="v1_me_alerts_feed_retrieve")
    def get(self, request: Request) -> Response:
        return Response({"url": _feed_url(request, services.feed_key(user=_me(request)).key)})

    @extend_schema(request=None, responses=FeedUrlSerializer, operation_id="v1_me_alerts_feed_reset")
    def post(self, request: Request) -> Response:
        return Response({"url": _feed_url(request, services.feed_key_reset(user=_me(request)).key)})


def _feed_url(request: Request, key: str) -> str:
    return request.build_absolute_uri(reverse("alerts:private-feed", args=[key]))


def _me(request: Request) -> User:
    assert isinstance(request.user, User)  # IsAuthenticated let the request in
    return request.user


def _invalid(exc: DjangoValidationError) -> ValidationError:
    """The service's ValidationError as DRF's: a 400 naming each field."""
    if hasattr(exc, "error_dict"):
        return ValidationError(exc.message_dict)
    return ValidationError({"non_field_errors": exc.messages})


def _rule_save(request: Request, changes: dict[str, Any], rule: AlertRule | None = None) -> AlertRule:
    try:
        return services.rule_save(user=_me(request), changes=changes, rule=rule)
    except DjangoValidationError as exc:
        raise _invalid(exc) from exc


def _endpoint_save(
    request: Request, changes: dict[str, Any], endpoint: WebhookEndpoint | None = None
) -> WebhookEndpoint:
    try:
        return services.endpoint_save(user=_me(request), changes=changes, endpoint=endpoint)
    except DjangoValidationError as exc:
        raise _invalid(exc) from exc


def _unsaved_rule(user: User, data: Mapping[str, Any]) -> AlertRule:
    """The rule a preview replays: the body's fields over the defaults (its webhooks play no part)."""
    fields = {name: value for name, value in data.items() if name not in ("anime", "webhooks")}
    rule = AlertRule(user=user, **fields)
    if data.get("anime") is not None:
        anime = Anime.objects.filter(pk=data["anime"]).first()
        if anime is None:
            raise ValidationError({"anime": ["No title with this MAL id is known here; open its page first."]})
        rule.anime = anime
    return rule
