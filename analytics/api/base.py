"""What every analytics endpoint shares: query fields, the answer's envelope, CSV download, the cache.

An endpoint declares a `Filter` (its query), an `Output` (its answer's fields) and the selector that
computes it; the OpenAPI schema is generated from those two serializers, so it cannot drift from what is
sent. Pages call `<Endpoint>Api.answer(query)` to get exactly what the API would send for the same query.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from drf_orjson_renderer.renderers import ORJSONRenderer
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from analytics.api.renderers import CSVRenderer, Table, columns, flatten
from analytics.cache import cached
from analytics.wire import cacheable
from snapshots.feeds import DEFAULT_FEED, FEEDS

RENDERERS: Sequence[type[BaseRenderer]] = [ORJSONRenderer, BrowsableAPIRenderer, CSVRenderer]


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
    # A number in JSON (COERCE_DECIMAL_TO_STRING is off), two decimals on the pages.
    return serializers.DecimalField(max_digits=4, decimal_places=2, **kwargs)


class PlainRows(serializers.ListSerializer):
    """A list of plain dicts (a selector's rows), each field taken by its name and represented as DRF would.

    DRF's own list asks every field of every row for its attribute through several layers: for a title's
    whole history (a thousand days and more) that was most of the answer's time. The rows here are dicts
    whose keys are the field names, so a lookup does; None stays None, as DRF leaves it.
    """

    def to_representation(self, data: Any) -> list[dict[str, Any]]:
        assert isinstance(self.child, serializers.Serializer)
        fields = [(name, field.to_representation) for name, field in self.child.fields.items()]
        return [{name: None if (value := row[name]) is None else show(value) for name, show in fields} for row in data]


class FeedFilter(serializers.Serializer):
    """Which feed, and which day to replay: every envelope endpoint's query starts here."""

    feed = choice(list(FEEDS), default=DEFAULT_FEED, help_text="The ranking to read.")
    as_of = serializers.DateField(
        default=None,
        help_text="Replay a past day (YYYY-MM-DD): the newest snapshot on or before it. Default: latest.",
    )


# Which number each feed ranks by, as the feeds declare it: `rank` is MAL's score rank (ties shared),
# `position` the place in the feed that day.
RANK_BY_HELP = "; ".join(f"{name}: `{feed.rank_by}`" for name, feed in FEEDS.items()) + "."


def rank_by_field() -> serializers.CharField:
    return serializers.CharField(
        help_text="The feed rank: the number this feed ranks by, which its trend rows' `rank`, `previous_rank`, "
        f"`change` and `best_rank` count in. {RANK_BY_HELP}"
    )


class InsufficientHistory(serializers.Serializer):
    needed_days = serializers.IntegerField(help_text="Days of history the metric needs.")
    have_days = serializers.IntegerField(help_text="Days of history there are.")
    available_in_days = serializers.IntegerField(help_text="Days until the metric can be computed.")


class Envelope(serializers.Serializer):
    """The shared answer of every analytics list; a subclass declares its `results`."""

    feed = serializers.CharField()
    rank_by = rank_by_field()
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

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        # An operation anyone may call says so (`security: []`); one a permission guards keeps the
        # staff session it needs.
        operation = super().get_operation(*args, **kwargs)
        if operation is not None and all(isinstance(p, AllowAny) for p in self.view.get_permissions()):
            operation["security"] = []
        return operation

    def _doc(self) -> tuple[str, str]:
        summary, _, details = (inspect.getdoc(self.view) or "").partition("\n\n")
        return summary.rstrip("."), " ".join(details.split())


def csv_table(answer: serializers.BaseSerializer, data: Any, *, rows: str = "results") -> Table:
    """An answer as a CSV table, its columns from `answer` (an empty list keeps its header).

    A list answer is a row per item. An answer with a `rows` list is a row per item, led by its envelope's
    own fields (feed, rank_by, date, baseline_date) when it is one. A bundle of envelopes (trending) is a
    row per item of each, led by a `list` column naming its envelope. Anything else is one row.
    """
    if isinstance(answer, serializers.ListSerializer):
        return columns(answer.child), [flatten(item) for item in data]  # type: ignore[arg-type]
    fields = answer.fields  # type: ignore[attr-defined]  # a Serializer, not a ListSerializer
    if rows in fields:
        shared = _envelope_fields(answer)
        header = list(dict.fromkeys([*shared, *columns(fields[rows].child)]))
        return header, [flatten({**{name: data[name] for name in shared}, **item}) for item in data[rows]]
    blocks = {name: csv_table(field, data[name]) for name, field in fields.items() if isinstance(field, Envelope)}
    if blocks:
        header = ["list", *dict.fromkeys(column for block, _ in blocks.values() for column in block)]
        return header, [{"list": name, **row} for name, (_, block_rows) in blocks.items() for row in block_rows]
    return columns(answer), [flatten(data)]


def _envelope_fields(answer: serializers.BaseSerializer) -> list[str]:
    """The envelope's plain fields, which hold for each of its rows; `as_of` only echoes the query."""
    if not isinstance(answer, Envelope):
        return []
    nested = (serializers.BaseSerializer, serializers.ListField, serializers.DictField)
    return [name for name, field in answer.fields.items() if name != "as_of" and not isinstance(field, nested)]


class KnownParametersMixin:
    """A query parameter the endpoint does not take is a 400 naming it, never silently ignored.

    The endpoint takes its `Filter`'s fields, `format`, and `page` and `page_size` when it pages.
    """

    Filter: type[serializers.Serializer]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        known = {*self.Filter().fields, api_settings.URL_FORMAT_OVERRIDE}
        paginator = getattr(self, "paginator", None)
        if paginator is not None:
            known |= {paginator.page_query_param, paginator.page_size_query_param}
        if unknown := sorted(set(request.query_params) - known):
            takes = ", ".join(sorted(known))
            raise ValidationError({name: [f"Unknown parameter; this endpoint takes: {takes}."] for name in unknown})


class CsvExportMixin:
    """`?format=csv` downloads the answer as a table (`csv_table`) in a file named after its feed, endpoint
    and day, e.g. `animedash-top-climbers-2024-05-01.csv`."""

    renderer_classes = RENDERERS
    endpoint = ""
    kwargs: dict[str, Any]  # the URL's arguments, set by the view

    def csv_table(self, data: Any) -> Table:
        # A page of a paged list: its rows, without the page's count and links.
        return csv_table(self.get_serializer(many=True), data["results"])  # type: ignore[attr-defined]

    def csv_filename(self, data: Any) -> str:
        facts = data if isinstance(data, Mapping) else {}
        parts = [facts.get("feed"), self.endpoint, *self.kwargs.values(), facts.get("date")]
        return "-".join(["animedash", *(str(part) for part in parts if part)]) + ".csv"

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        if getattr(request, "accepted_renderer", None) and request.accepted_renderer.format == "csv":
            # Only a GET's answer is a table, not OPTIONS' description or a POST's answer (errors are JSON
            # anyway: see renderers.exception_handler).
            if request.method not in ("GET", "HEAD"):
                request.accepted_renderer, request.accepted_media_type = ORJSONRenderer(), "application/json"
            else:
                response["Content-Disposition"] = f'attachment; filename="{self.csv_filename(response.data)}"'
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]


class AnalyticsApi(KnownParametersMixin, CsvExportMixin, APIView):
    """Parse the query with `Filter`, answer `compute(**filters)` shaped by `Output`, through the cache.

    `endpoint` is the URL name (`api:<endpoint>`) and the cache's name for the answer.
    """

    Filter: type[serializers.Serializer] = FeedFilter
    Output: type[serializers.Serializer]
    many = False  # True when the answer is a list of `Output` rows
    csv_rows = "results"  # the answer's list that is the CSV's rows
    compute: Callable[..., Any]
    schema = EndpointSchema()

    @classmethod
    def answer(cls, query: Mapping[str, Any], **path: Any) -> Any:
        """The answer the API sends for `query` and the URL's `path` arguments (a missing parameter takes its
        default), computed once per data version."""
        return cls.cached_answer(cls.params(query, **path))

    @classmethod
    def params(cls, query: Mapping[str, Any], **path: Any) -> dict[str, Any]:
        filters = cls.Filter(data=query)
        filters.is_valid(raise_exception=True)
        return {**filters.validated_data, **path}

    @classmethod
    def cached_answer(cls, params: dict[str, Any]) -> Any:
        return cached(cls.endpoint, params, lambda: cls.Output(cls.compute(**params), many=cls.many).data)

    def get_serializer(self, *args: Any, **kwargs: Any) -> serializers.BaseSerializer:
        # drf-spectacular documents the answer with this serializer.
        return self.Output(*args, many=self.many, **kwargs)

    def get(self, request: Request, **path: Any) -> Response:
        params = self.params(request.query_params, **path)
        cacheable(request, self.endpoint, params, throttled=bool(self.get_throttles()))
        return Response(self.cached_answer(params))

    def csv_table(self, data: Any) -> Table:
        return csv_table(self.get_serializer(), data, rows=self.csv_rows)


class Pagination(PageNumberPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100
