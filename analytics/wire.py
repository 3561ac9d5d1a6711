"""Answers kept as they go on the wire: rendered, compressed, with their headers, per data version.

A view that may be cached says so with `cacheable(request, name, params)` (its validated query). On the
way out, `WireCacheMiddleware` keeps the response's bytes (plain, gzip and brotli) and headers under that
query and the data version, in this process's memory and in Redis, and remembers which key the request's
URL led to. The next anonymous GET of the same URL is answered from there before sessions, CSRF,
authentication and the view run: no validation, no serialisation, no compression. Every answer carries a
weak `ETag` made from the key, and `If-None-Match` gets a 304 without a body.

Only requests without a session cookie, a waiting message or an Authorization header use it, and only 200s
without cookies are kept: a kept answer holds nothing that belongs to one person.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import brotli
from django.conf import settings
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.cache import cache
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotModified
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_etags
from prometheus_client import Counter

from analytics.api.throttling import anonymous_wait
from analytics.cache import cache_failed, cache_skipped, params_digest
from analytics.selectors import data_version

logger = logging.getLogger(__name__)

ANSWERS = Counter(
    "analytics_wire_answers_total",
    "Answers served from the kept wire bytes, by where they came from (memory, redis, built, not_modified).",
    ["endpoint", "source"],
)

# Django's GZipMiddleware leaves shorter bodies alone; so does this, so a kept answer looks like an uncached one.
MIN_COMPRESS_BYTES = 200
BROTLI_QUALITY = 5  # compresses the JSON answers smaller than gzip's level 6 in about the same time
# Headers set per variant or per request, never kept: the rest is the answer's own.
_PER_VARIANT = {"content-length", "content-encoding", "etag"}
# What a 304 repeats of the 200 it stands for (RFC 9110, 15.4.5).
_NOT_MODIFIED_KEEPS = ("cache-control", "content-location", "expires", "vary")
_REQUEST_KEY = "wire_key"


@dataclass(frozen=True)
class WireAnswer:
    endpoint: str
    status: int
    headers: tuple[tuple[str, str], ...]
    etag: str
    bodies: Mapping[str, bytes]  # by content coding: "identity", and "br" and "gzip" when they are smaller

    @classmethod
    def build(cls, endpoint: str, key: str, response: HttpResponse) -> WireAnswer:
        body = response.content
        bodies = {"identity": body}
        if len(body) >= MIN_COMPRESS_BYTES:
            patch_vary_headers(response, ("Accept-Encoding",))
            for coding, compressed in (
                ("br", brotli.compress(body, quality=BROTLI_QUALITY)),
                ("gzip", gzip.compress(body, compresslevel=6, mtime=0)),
            ):
                if len(compressed) < len(body):
                    bodies[coding] = compressed
        headers = tuple((name, value) for name, value in response.items() if name.lower() not in _PER_VARIANT)
        etag = 'W/"' + hashlib.blake2b(key.encode(), digest_size=16).hexdigest() + '"'
        return cls(endpoint=endpoint, status=response.status_code, headers=headers, etag=etag, bodies=bodies)

    @property
    def size(self) -> int:
        return sum(len(body) for body in self.bodies.values())

    def respond(self, request: HttpRequest) -> HttpResponseBase:
        """This answer for `request`: a 304 when it already holds it, else the best coding it accepts."""
        if _matches(request.headers.get("If-None-Match", ""), self.etag):
            not_modified = HttpResponseNotModified()
            for name, value in self.headers:
                if name.lower() in _NOT_MODIFIED_KEEPS:
                    not_modified[name] = value
            not_modified["ETag"] = self.etag
            return not_modified
        coding = _best_coding(request.headers.get("Accept-Encoding", ""), self.bodies)
        response = HttpResponse(self.bodies[coding], status=self.status, headers=dict(self.headers))
        if coding != "identity":
            response["Content-Encoding"] = coding
        response["Content-Length"] = str(len(self.bodies[coding]))
        response["ETag"] = self.etag
        return response


def _matches(if_none_match: str, etag: str) -> bool:
    # Weak comparison, as If-None-Match requires: W/"x" and "x" are the same answer in another coding.
    if not if_none_match:
        return False
    tags = parse_etags(if_none_match)
    return "*" in tags or etag.removeprefix("W/") in {tag.removeprefix("W/") for tag in tags}


def _best_coding(accept_encoding: str, bodies: Mapping[str, bytes]) -> str:
    accepted = set()
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.partition(";")
        if params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            accepted.add(coding.strip())
    for coding in ("br", "gzip"):
        if coding in bodies and (coding in accepted or "*" in accepted):
            return coding
    return "identity"


class Lru:
    """The most recently used entries, bounded in count and in bytes; gunicorn's threads share it."""

    def __init__(self, *, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: str, value: Any, size: int) -> None:
        with self._lock:
            if size > self.max_bytes:
                return
            if (old := self._entries.pop(key, None)) is not None:
                self.bytes -= old[1]
            self._entries[key] = (value, size)
            self.bytes += size
            while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self.bytes -= evicted

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0


class MemoryTier(Lru):
    """A process's hottest kept answers, of one data version.

    Answers of an older version are never asked for again (their keys hold the version), so the tier
    empties itself when the version moves instead of waiting for them to fall out.
    """

    version = ""

    def follow(self, version: str) -> None:
        if version != self.version:
            self.clear()
            self.version = version


memory = MemoryTier(max_entries=settings.WIRE_MEMORY_ENTRIES, max_bytes=settings.WIRE_MEMORY_BYTES)
# Which kept answer each URL led to. A URL leads to the same query whatever the data version, so this
# outlives a version change; and a URL never seen costs no data-version check (a health probe, a file).
routes = Lru(max_entries=settings.WIRE_MEMORY_ENTRIES, max_bytes=settings.WIRE_MEMORY_BYTES)


def forget() -> None:
    """Empty this process's memory of answers and routes (Redis keeps its own)."""
    memory.clear()
    routes.clear()


@dataclass(frozen=True)
class Route:
    """Where a URL led last time: the kept answer's key (without the version) and whether it is throttled."""

    key: str
    throttled: bool


def cacheable(request: Any, endpoint: str, params: Mapping[str, Any], *, throttled: bool) -> None:
    """Let this request's answer be kept on the wire under `params` (the validated query, with anything else
    the bytes depend on, such as the format). `throttled`: a kept answer still counts against the
    anonymous API throttle."""
    fmt = getattr(getattr(request, "accepted_renderer", None), "format", "html")
    if fmt == "api":  # the browsable API's page holds the person's name and a CSRF token
        return
    http_request = getattr(request, "_request", request)  # DRF's Request wraps Django's
    route = Route(f"analytics:wire:{endpoint}:{fmt}:{params_digest(params)}", throttled)
    setattr(http_request, _REQUEST_KEY, (endpoint, route))


class WireCacheMiddleware:
    """The short path: a kept answer for an anonymous GET, before the rest of the stack runs.

    It sits inside GZipMiddleware (an answer it sends is already compressed, which GZip leaves alone) and
    outside sessions, CSRF, authentication, messages and the view. Request ids, security headers and the
    request metrics are added by the middleware outside it; the anonymous API throttle is applied here.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not (settings.ANALYTICS_CACHE_ENABLED and _anonymous_read(request)):
            return self.get_response(request)
        signature = _signature(request)
        route = routes.get(signature)
        if route is not None and (kept := _short_path(request, route)) is not None:
            return kept
        response = self.get_response(request)
        return self._keep(request, signature, response)

    def _keep(self, request: HttpRequest, signature: str, response: HttpResponseBase) -> HttpResponseBase:
        offered = getattr(request, _REQUEST_KEY, None)
        if offered is None or not _storable(response) or (version := _data_version()) is None:
            return response
        endpoint, route = offered
        answer, source = _kept(route.key, version)
        if answer is None:
            key = _versioned(route.key, version)
            answer, source = WireAnswer.build(endpoint, key, response), "built"  # type: ignore[arg-type]
            _store(key, answer)
        routes.put(signature, route, len(signature))
        return _serve(answer, request, source)


def _short_path(request: HttpRequest, route: Route) -> HttpResponseBase | None:
    """The kept answer `route` leads to, or None: then the request takes the whole way, where the view
    answers a database outage with a 503, DRF a refused client with a 429, and a missing answer is built."""
    version = _data_version()
    if version is None or (route.throttled and anonymous_wait(request) is not None):
        return None
    answer, source = _kept(route.key, version)
    return None if answer is None else _serve(answer, request, source)


def _anonymous_read(request: HttpRequest) -> bool:
    return (
        request.method in ("GET", "HEAD")
        and settings.SESSION_COOKIE_NAME not in request.COOKIES
        and CookieStorage.cookie_name not in request.COOKIES  # a message waiting to be shown on the next page
        and "Authorization" not in request.headers
    )


def _signature(request: HttpRequest) -> str:
    # get_host() also rejects a Host not in ALLOWED_HOSTS, which CommonMiddleware would otherwise do.
    return "\n".join(
        (request.get_host(), request.path, request.META.get("QUERY_STRING", ""), request.headers.get("Accept", ""))
    )


def _data_version() -> str | None:
    """The data version (the memory tier follows it), or None when the database cannot say."""
    try:
        version = data_version()
    except DatabaseError:
        return None
    memory.follow(version)
    return version


def _versioned(key: str, version: str) -> str:
    return f"{key}:{version}"


def _kept(key: str, version: str) -> tuple[WireAnswer | None, str]:
    versioned = _versioned(key, version)
    answer = memory.get(versioned)
    if answer is not None:
        return answer, "memory"
    if cache_skipped():
        return None, ""
    try:
        answer = cache.get(versioned)
    except Exception as exc:  # the cache backend's own errors (Redis down, timeouts) vary by client
        cache_failed("wire", exc)
        return None, ""
    if answer is None:
        return None, ""
    memory.put(versioned, answer, answer.size)
    return answer, "redis"


def _store(key: str, answer: WireAnswer) -> None:
    memory.put(key, answer, answer.size)
    if cache_skipped():
        return
    try:
        cache.set(key, answer, timeout=settings.CACHE_TTL)
    except Exception as exc:
        cache_failed("wire", exc)


def _storable(response: HttpResponseBase) -> bool:
    return (
        isinstance(response, HttpResponse)
        and response.status_code == 200
        and not response.cookies
        and not response.has_header("Content-Encoding")
        and "private" not in response.get("Cache-Control", "")
        and "no-store" not in response.get("Cache-Control", "")
    )


def _serve(answer: WireAnswer, request: HttpRequest, source: str) -> HttpResponseBase:
    response = answer.respond(request)
    ANSWERS.labels(endpoint=answer.endpoint, source="not_modified" if response.status_code == 304 else source).inc()
    return response
