"""Serve a file that never changes as a download: validators, conditional GETs and single byte ranges.

Django's FileResponse streams a file but knows nothing of ranges, and no maintained library adds them
(django-downloadview's issue #122 has been open since 2016), so this is the small part of RFC 9110 the
dumps need: `Range: bytes=a-b`, `bytes=a-` and `bytes=-n` answer 206, a range past the end 416, `If-Range`
falls back to the whole file when the file changed, and Django's `get_conditional_response` answers
`If-None-Match` / `If-Modified-Since` with 304. Several ranges in one request get the whole file, as the
RFC allows.
"""

from __future__ import annotations

import os
import re
from io import BufferedReader
from pathlib import Path

from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import get_conditional_response
from django.utils.http import http_date, parse_http_date_safe

# ASCII digits only: `\d` would take other scripts' digits, which int() reads too.
RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")


class RangeNotSatisfiable(Exception):
    pass


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The first and last byte that a `Range` header asks of a file of `size` bytes, clipped to the file.

    None for a header this does not serve (another unit, several ranges, bad syntax): the whole file is
    sent. Raises RangeNotSatisfiable for a range that starts past the end, or an empty suffix.
    """
    match = RANGE.match(header.strip())
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if not first:  # the last n bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(size - suffix, 0), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # an invalid range is ignored, not refused (RFC 9110, 14.1.1)
    if start >= size:
        raise RangeNotSatisfiable
    return start, min(int(last), size - 1) if last else size - 1


def file_response(
    request: HttpRequest, path: Path, *, etag: str, filename: str, content_type: str, cache_control: str
) -> HttpResponseBase:
    """`path` as an attachment called `filename`, streamed, with its `etag` (quoted) and byte ranges.

    The caller has checked that `path` may be served. Raises OSError when it cannot be opened.
    """
    handle = path.open("rb")
    try:
        stat = os.fstat(handle.fileno())
        response = _respond(request, handle, stat.st_size, int(stat.st_mtime), etag, content_type, cache_control)
    except BaseException:
        handle.close()
        raise
    if not isinstance(response, FileResponse):
        handle.close()
        return response
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    # GZipMiddleware would compress this stream (files that are compressed already), dropping its
    # Content-Length and breaking its byte offsets. It reads the request's Accept-Encoding once the view
    # has answered, so taking that away keeps the download as it is on disk.
    request.META.pop("HTTP_ACCEPT_ENCODING", None)
    return response


def _respond(
    request: HttpRequest,
    handle: BufferedReader,
    size: int,
    mtime: int,
    etag: str,
    content_type: str,
    cache_control: str,
) -> HttpResponseBase:
    validators = {"ETag": etag, "Last-Modified": http_date(mtime), "Accept-Ranges": "bytes"}
    headers = HttpResponse(headers={**validators, "Cache-Control": cache_control})
    conditional = get_conditional_response(request, etag=etag, last_modified=mtime, response=headers)
    if conditional is not None and conditional is not headers:  # 304 Not Modified, or 412 for a failed If-Match
        return conditional
    wanted = request.headers.get("Range")
    span: tuple[int, int] | None = None
    if wanted is not None and request.method == "GET" and _if_range_holds(request, etag, mtime):
        try:
            span = byte_range(wanted, size)
        except RangeNotSatisfiable:
            # No Cache-Control: an explicit one would make this refusal cacheable.
            return HttpResponse(status=416, headers={**validators, "Content-Range": f"bytes */{size}"})
    if span is None:
        response = FileResponse(handle, content_type=content_type)
    else:
        start, end = span
        handle.seek(start)
        response = FileResponse(_Slice(handle, end - start + 1), status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    for name, value in {**validators, "Cache-Control": cache_control}.items():
        response[name] = value
    return response


def _if_range_holds(request: HttpRequest, etag: str, mtime: int) -> bool:
    """No If-Range, or one naming the file as it is: a strong ETag match or the exact Last-Modified date."""
    value = request.headers.get("If-Range")
    if value is None:
        return True
    value = value.strip()
    if value.startswith(('"', "W/")):
        return value == etag  # a weak tag never matches (strong comparison)
    return parse_http_date_safe(value) == mtime


class _Slice:
    """The next `length` bytes of an open file, read in blocks; no fileno, so no sendfile of the rest."""

    def __init__(self, handle: BufferedReader, length: int) -> None:
        self.handle = handle
        self.left = length

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.handle.read(size) if size > 0 else b""
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.handle.close()
