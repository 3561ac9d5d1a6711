"""Liveness and readiness probes."""

from __future__ import annotations

import logging
import uuid

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests; touches nothing else."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache() -> None:
    # The probe key is unique per call so concurrent probes cannot read each other's value.
    key, value = f"readyz:{uuid.uuid4().hex}", "ok"
    cache.set(key, value, timeout=5)
    if cache.get(key) != value:
        raise RuntimeError("the value written could not be read back")
    cache.delete(key)


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve: the database answers. 503 only when it does not.

    The cache is reported, never required: without Redis the app answers from the database (slower),
    so a cache outage is "degraded" with 200, and a readiness probe never takes every pod out for it.
    The public body names the failed check only; the error (hosts, ports, driver text) goes to the log.
    """
    checks: dict[str, str] = {}
    for name, check in (("database", _check_database), ("cache", _check_cache)):
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # a probe reports every failure, whatever its type
            logger.warning("readiness check %s failed: %s: %s", name, exc.__class__.__name__, exc)
            checks[name] = "failed"
    if checks["database"] != "ok":
        return JsonResponse({"status": "unavailable", "checks": checks}, status=503)
    status = "ok" if checks["cache"] == "ok" else "degraded"
    return JsonResponse({"status": status, "checks": checks})
