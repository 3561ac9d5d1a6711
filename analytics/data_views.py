"""The open data page (/data/) and its downloads (/data/<dump>/<path>): only files a dump's manifest lists."""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from analytics.dumps import MANIFEST, dump_get, dumps_published
from analytics.ranges import file_response
from analytics.views import page

logger = logging.getLogger(__name__)

# A dump's URL always means the same bytes (a new dump gets a new name), so caches may keep them.
DOWNLOAD_CACHE_CONTROL = "public, max-age=31536000, immutable"


@page
def data(request: HttpRequest) -> HttpResponse:
    dumps = dumps_published(out=Path(settings.EXPORT_DIR))
    return render(request, "analytics/data.html", {"dumps": dumps, "manifest": MANIFEST})


# A page view (`page`), answering a stream.
@csrf_exempt
@require_safe
def data_file(request: HttpRequest, dump: str, path: str) -> HttpResponseBase:
    found = dump_get(out=Path(settings.EXPORT_DIR), name=dump)
    listed = found.file(path) if found is not None else None
    if found is None or listed is None:
        raise Http404("No such file in the open data dumps.")
    folder = found.folder.resolve()
    target = (folder / listed.path).resolve()
    # The manifest's paths stay inside the dump, and a file must be what the manifest says it is.
    if not target.is_relative_to(folder) or not target.is_file() or target.stat().st_size != listed.bytes:
        logger.warning("not serving %s/%s: not the file its manifest lists", dump, path)
        raise Http404("No such file in the open data dumps.")
    return file_response(
        request,
        target,
        etag=f'"{listed.sha256}"',
        filename=listed.path.replace("/", "_"),
        content_type=listed.content_type,
        cache_control=DOWNLOAD_CACHE_CONTROL,
    )
