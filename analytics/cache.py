"""Cached analytics answers.

Keys include the data version (which moves whenever an ETL run commits), so a new snapshot makes every
cached answer stale at once without a flush; the TTL is only a backstop. When the cache (Redis) is
down, answers come straight from the database: slower, never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from prometheus_client import Counter

from analytics.selectors import data_version

logger = logging.getLogger(__name__)

T = TypeVar("T")
_MISSING = object()
# After a cache failure, skip the cache for this long instead of paying a connect timeout per request.
RETRY_AFTER_FAILURE = 5.0
_skip_until = 0.0

HITS = Counter("analytics_cache_hits_total", "Analytics answers served from the cache.", ["endpoint"])
MISSES = Counter("analytics_cache_misses_total", "Analytics answers computed from the database.", ["endpoint"])
ERRORS = Counter(
    "analytics_cache_errors_total", "Cache operations that failed (the answer came from the database).", ["endpoint"]
)


def cache_key(endpoint: str, params: Mapping[str, Any], version: str) -> str:
    return f"analytics:{endpoint}:{version}:{params_digest(params)}"


def params_digest(params: Mapping[str, Any]) -> str:
    canonical = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def cached(endpoint: str, params: Mapping[str, Any], compute: Callable[[], T]) -> T:
    """`compute()`'s answer for these parameters, from the cache when the data has not changed since."""
    if not settings.ANALYTICS_CACHE_ENABLED or cache_skipped():
        return compute()
    key = cache_key(endpoint, params, data_version())
    try:
        value = cache.get(key, _MISSING)
    except Exception as exc:  # the cache backend's own errors (Redis down, timeouts) vary by client
        cache_failed(endpoint, exc)
        return compute()
    if value is not _MISSING:
        HITS.labels(endpoint=endpoint).inc()
        return value
    MISSES.labels(endpoint=endpoint).inc()
    value = compute()
    try:
        cache.set(key, value, timeout=settings.CACHE_TTL)
    except Exception as exc:
        cache_failed(endpoint, exc)
    return value


def cache_skipped() -> bool:
    """True for a few seconds after a cache failure: callers go straight to the database."""
    return time.monotonic() < _skip_until


def cache_failed(endpoint: str, exc: Exception) -> None:
    global _skip_until
    _skip_until = time.monotonic() + RETRY_AFTER_FAILURE
    ERRORS.labels(endpoint=endpoint).inc()
    logger.warning(
        "cache unavailable, answering from the database for %.0f s: %s",
        RETRY_AFTER_FAILURE,
        exc,
        extra={"endpoint": endpoint},
    )
