"""CSV download of any analytics list (`?format=csv`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from rest_framework.renderers import BaseRenderer


class CSVRenderer(BaseRenderer):
    """Render the rows of an answer as CSV with a header row.

    The rows are `results` of an envelope or of a page, or the answer itself when it is a list. Nested
    values are flattened: a list of genres becomes "Action; Drama", an object becomes `key.sub` columns.
    """

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        rows = [_flatten(row) for row in _rows(data)]
        columns = list(dict.fromkeys(key for row in rows for key in row))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().encode(self.charset)


def _rows(data: Any) -> list[Any]:
    if isinstance(data, Mapping) and isinstance(data.get("results"), list):
        return data["results"]
    if isinstance(data, list):
        return data
    return [data] if isinstance(data, Mapping) else []


def _flatten(row: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(row, Mapping):
        return {prefix or "value": row}
    flat: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        elif isinstance(value, list):
            flat[name] = "; ".join(_label(item) for item in value)
        else:
            flat[name] = "" if value is None else value
    return flat


def _label(item: Any) -> str:
    if isinstance(item, Mapping):
        return str(item.get("name") or item.get("title") or item.get("mal_id") or "")
    return str(item)
