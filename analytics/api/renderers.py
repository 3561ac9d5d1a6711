"""CSV download of the analytics answers (`?format=csv`), which formats there are, and errors in JSON."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

from drf_orjson_renderer.renderers import ORJSONRenderer
from rest_framework import serializers, views
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response

Row = dict[str, Any]
# A CSV table: its columns, and its rows keyed by column.
Table = tuple[list[str], list[Row]]

# OWASP's CSV injection rule: a spreadsheet runs a cell starting with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class CSVRenderer(BaseRenderer):
    """Write the view's `csv_table(data)` as CSV with a header row.

    The view takes its columns from its serializers, so an empty list still has its header. A text cell
    a spreadsheet would run as a formula gets a leading single quote (OWASP); numbers stay numbers, so a
    change of -3 is still -3.
    """

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        columns, rows = renderer_context["view"].csv_table(data)
        out = io.StringIO()
        # The excel dialect ends lines with CRLF (RFC 4180), so a cell holding a CR or an LF is quoted.
        writer = csv.DictWriter(out, fieldnames=columns, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows({name: _neutralised(value) for name, value in row.items()} for row in rows)
        return out.getvalue().encode(self.charset)


def columns(row: serializers.BaseSerializer) -> list[str]:
    """The CSV columns of a row serializer: a nested object's fields as `name.field`, a list in one column."""
    names: list[str] = []
    for name, field in row.fields.items():  # type: ignore[attr-defined]  # a Serializer, not a ListSerializer
        if isinstance(field, serializers.Serializer):
            names += [f"{name}.{sub}" for sub in columns(field)]
        else:
            names.append(name)
    return names


def flatten(row: Mapping[str, Any], prefix: str = "") -> Row:
    """A row as CSV cells: a nested object's values as `name.field`, a list as "Action; Drama", None as ""."""
    flat: Row = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list):
            flat[name] = "; ".join(_label(item) for item in value)
        else:
            flat[name] = "" if value is None else value
    return flat


def _label(item: Any) -> str:
    if isinstance(item, Mapping):
        return str(item.get("name") or item.get("title") or item.get("mal_id") or "")
    return str(item)


def _neutralised(value: Any) -> Any:
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


class FormatNegotiation(DefaultContentNegotiation):
    """DRF's content negotiation, except that an unknown `?format=` is a 400 naming the formats.

    DRF answers it with a 404, as if the endpoint did not exist.
    """

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        wanted = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
        renderers = list(renderers)
        formats = list(dict.fromkeys(str(renderer.format) for renderer in renderers))
        if wanted and wanted not in formats:
            raise ValidationError({"format": [f'"{wanted}" is not allowed; use one of: {", ".join(formats)}.']})
        return super().select_renderer(request, renderers, format_suffix)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's error answers, always in JSON (or the browsable API's page, for people).

    DRF renders an error in the format the request negotiated, or with the view's first renderer when
    negotiation itself failed: the schema's 405 would be YAML, the Swagger page's 405 plain text.
    """
    response = views.exception_handler(exc, context)
    request = context["request"]
    renderer = getattr(request, "accepted_renderer", None)
    if response is not None and (renderer is None or renderer.format not in ("json", "api")):
        request.accepted_renderer, request.accepted_media_type = ORJSONRenderer(), ORJSONRenderer.media_type
    return response
