"""What every analytics endpoint shares: query fields, the answer's envelope, CSV download, the cache.

An endpoint declares a `Filter` (its query), an `Output` (its answer's fields) and the selector that
computes it; the OpenAPI schema is generated from those two serializers, so it cannot drift from what is
sent. Pages call `<Endpoint>Api.answer(query)` to get exactly what the API would send for the same query.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.api.renderers import CSVRenderer
from analytics.cache import cached
from snapshots.feeds import DEFAULT_FEED, FEEDS

RENDERERS: Sequence[type[BaseRenderer]] = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer]


def choice(choices: Sequence[Any], *, help_text: str, **kwargs: Any) -> serializers.ChoiceField:
    """A choice parameter whose error says what is allowed."""
    allowed = ", ".join(str(c) for c in choices)
    return serializers.ChoiceField(
        choices=list(choices),
        help_text=f"{help_text} One of: {allowed}.",
        error_messages={"invalid_choice": f'"{{input}}" is not allowed; use one of: {allowed}.'},
        **kwargs,
    )


def limit_field(*, default: int = 10, help_text: str = "Rows to return, 1..100.") -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=100, default=default, help_text=help_text)


def top_field(*, default: int) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=100, default=default, help_text="The top N to watch.")


def score_field(**kwargs: Any) -> serializers.DecimalField:
    # A number in JSON (as the model's decimal), two decimals on the pages.
    return serializers.DecimalField(max_digits=4, decimal_places=2, coerce_to_string=False, **kwargs)


class FeedFilter(serializers.Serializer):
    """Which feed, and which day to replay: every envelope endpoint's query starts here."""

    feed = choice(list(FEEDS), default=DEFAULT_FEED, help_text="The ranking to read.")
    as_of = serializers.DateField(
        default=None,
        help_text="Replay a past day (YYYY-MM-DD): the newest snapshot on or before it. Default: latest.",
    )


class InsufficientHistory(serializers.Serializer):
    needed_days = serializers.IntegerField(help_text="Days of history the metric needs.")
    have_days = serializers.IntegerField(help_text="Days of history there are.")
    available_in_days = serializers.IntegerField(help_text="Days until the metric can be computed.")


class Envelope(serializers.Serializer):
    """The shared answer of every analytics list; a subclass declares its `results`."""

    feed = serializers.CharField()
    as_of = serializers.DateField(allow_null=True)
    date = serializers.DateField(allow_null=True, help_text="D: the snapshot day answered.")
    baseline_date = serializers.DateField(allow_null=True, help_text="B: the day compared with, if any.")
    insufficient_history = InsufficientHistory(
        allow_null=True, help_text="Set (and results empty) when the history is too short for an answer."
    )


class TitleRow(serializers.Serializer):
    mal_id = serializers.IntegerField()
    title = serializers.CharField()


class EndpointSchema(AutoSchema):
    """An endpoint's OpenAPI entry from its own declarations.

    The summary is the first line of the view's docstring and the description the rest; the query
    parameters of a GET come from its `Filter`, when it has one.
    """

    def get_summary(self) -> str | None:
        return self._doc()[0] or None

    def get_description(self) -> str:  # type: ignore[override]  # drf-spectacular's signature, not DRF's
        return self._doc()[1]

    def get_override_parameters(self) -> list[Any]:
        own = getattr(self.view, "Filter", None) if self.method == "GET" else None
        return [*([own] if own and own().fields else []), *super().get_override_parameters()]

    def _doc(self) -> tuple[str, str]:
        summary, _, details = (inspect.getdoc(self.view) or "").partition("\n\n")
        return summary.rstrip("."), " ".join(details.split())


class CsvExportMixin:
    """`?format=csv` downloads the list as `animedash-<endpoint>.csv`; errors stay JSON."""

    renderer_classes = RENDERERS
    endpoint = ""

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        if getattr(request, "accepted_renderer", None) and request.accepted_renderer.format == "csv":
            if response.status_code >= 400:
                request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
            else:
                response["Content-Disposition"] = f'attachment; filename="animedash-{self.endpoint}.csv"'
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]


class AnalyticsApi(CsvExportMixin, APIView):
    """Parse the query with `Filter`, answer `compute(**filters)` shaped by `Output`, through the cache.

    `endpoint` is the URL name (`api:<endpoint>`) and the cache's name for the answer.
    """

    Filter: type[serializers.Serializer] = FeedFilter
    Output: type[serializers.Serializer]
    many = False  # True when the answer is a list of `Output` rows
    compute: Callable[..., Any]
    schema = EndpointSchema()

    @classmethod
    def answer(cls, query: Mapping[str, Any], **path: Any) -> Any:
        """The answer the API sends for `query` and the URL's `path` arguments (a missing parameter takes its
        default), computed once per data version."""
        filters = cls.Filter(data=query)
        filters.is_valid(raise_exception=True)
        params = {**filters.validated_data, **path}
        return cached(cls.endpoint, params, lambda: cls.Output(cls.compute(**params), many=cls.many).data)

    def get_serializer(self, *args: Any, **kwargs: Any) -> serializers.BaseSerializer:
        # drf-spectacular documents the answer with this serializer.
        return self.Output(*args, many=self.many, **kwargs)

    def get(self, request: Request, **path: Any) -> Response:
        return Response(self.answer(request.query_params, **path))


class Pagination(PageNumberPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100
