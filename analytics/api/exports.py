"""The open data dumps under /api/v1/exports (namespace `exports`): what the data page lists, with download URLs.

Their answers come from the dump folders, not the database, so they are neither cached under the data
version nor among the endpoints the API benchmarks time (devtools.endpoints lists the `api` namespace).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.urls import reverse
from drf_orjson_renderer.renderers import ORJSONRenderer
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.api.base import EndpointSchema, KnownParametersMixin
from analytics.dumps import MANIFEST, Dump, dump_get, dumps_published


class ExportFile(serializers.Serializer):
    path = serializers.CharField(help_text="Inside the dump, e.g. parquet/snapshots/feed=top/2026-01.parquet.")
    format = serializers.CharField(help_text="parquet, sqlite or csv.")
    bytes = serializers.IntegerField()
    sha256 = serializers.CharField(help_text="Hex SHA-256 of the file: also its ETag.")
    rows = serializers.DictField(child=serializers.IntegerField(), help_text="Rows per table in the file.")
    url = serializers.URLField(help_text="Download; byte ranges and If-None-Match are honoured.")


class ExportSpan(serializers.Serializer):
    first_day = serializers.DateField(allow_null=True)
    last_day = serializers.DateField(allow_null=True)


class ExportDump(serializers.Serializer):
    name = serializers.CharField(help_text="The dump's folder: its UTC start time.")
    generated_at = serializers.DateTimeField()
    since = serializers.DateField(allow_null=True, help_text="Set for a partial dump: only the days from then on.")
    span = ExportSpan(help_text="The snapshot days it holds.")
    formats = serializers.ListField(child=serializers.CharField())
    licence = serializers.CharField()
    tables = serializers.DictField(child=serializers.IntegerField(), help_text="Rows per table.")
    bytes = serializers.IntegerField(help_text="All its files, the manifest included.")
    url = serializers.URLField(help_text="This dump in the API.")
    manifest_url = serializers.URLField(help_text="Its manifest.json: every column's meaning and unit.")
    files = ExportFile(many=True)


class ExportList(serializers.Serializer):
    count = serializers.IntegerField()
    results = ExportDump(many=True, help_text="Newest first.")


class ExportListFilter(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, required=False, help_text="Only the newest N.")


def _absolute(request: Request, url_name: str, **kwargs: str) -> str:
    return request.build_absolute_uri(reverse(url_name, kwargs=kwargs))


def _answer(dump: Dump, request: Request) -> dict[str, Any]:
    manifest = dump.manifest

    def download(path: str) -> str:
        return _absolute(request, "analytics:data-file", dump=dump.name, path=path)

    return {
        "name": dump.name,
        "generated_at": dump.generated_at,
        "since": manifest.get("since"),
        "span": manifest.get("span") or {"first_day": None, "last_day": None},
        "formats": manifest.get("formats", []),
        "licence": manifest.get("licence", ""),
        "tables": dump.table_rows,
        "bytes": dump.bytes,
        "url": _absolute(request, "exports:detail", name=dump.name),
        "manifest_url": download(MANIFEST),
        "files": [{**vars(f), "url": download(f.path)} for f in dump.data_files],
    }


class ExportListApi(KnownParametersMixin, APIView):
    """Open data dumps.

    The complete dumps, newest first: each file with its size, SHA-256, row counts and download URL.
    """

    renderer_classes = [ORJSONRenderer, BrowsableAPIRenderer]
    Filter = ExportListFilter
    schema = EndpointSchema()

    @extend_schema(operation_id="exports_list", responses=ExportList)
    def get(self, request: Request) -> Response:
        filters = ExportListFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        dumps = dumps_published(out=Path(settings.EXPORT_DIR))[: filters.validated_data.get("limit")]
        results = [_answer(dump, request) for dump in dumps]
        return Response(ExportList({"count": len(results), "results": results}).data)


class ExportDetailApi(KnownParametersMixin, APIView):
    """One open data dump.

    Its files with their sizes, SHA-256, row counts and download URLs. An unknown name is a 404.
    """

    renderer_classes = [ORJSONRenderer, BrowsableAPIRenderer]
    Filter = serializers.Serializer
    schema = EndpointSchema()

    @extend_schema(
        operation_id="exports_retrieve",
        responses={200: ExportDump, 404: OpenApiResponse(description="No dump of that name.")},
    )
    def get(self, request: Request, name: str) -> Response:
        dump = dump_get(out=Path(settings.EXPORT_DIR), name=name)
        if dump is None:
            raise NotFound(f"No dump named {name!r}; GET {reverse('exports:list')} lists them.")
        return Response(ExportDump(_answer(dump, request)).data)
