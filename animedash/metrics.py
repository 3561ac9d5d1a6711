"""Prometheus metrics on a port of their own: scraped from inside the deployment, never served by the public app."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from django.db import connections
from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import Metric

logger = logging.getLogger(__name__)


class _ScrapeRegistry:
    """The process's registry, collected in the scrape's own thread (one per scrape).

    Collectors that read the database (the ETL facts) open a connection in that thread: it is closed
    when the scrape ends instead of outliving the thread, as a Django request's would be.
    """

    def collect(self) -> Iterator[Metric]:
        try:
            yield from REGISTRY.collect()
        finally:
            connections.close_all()


def metrics_serve(*, port: int, addr: str) -> tuple[WSGIServer, threading.Thread] | None:
    """Serve this process's metrics at http://addr:port/metrics from a thread; port 0 serves nothing.

    A port already taken (say, by a gunicorn worker not gone yet) is logged, not fatal: the process keeps
    serving its real work, and Prometheus reports the target down.
    """
    if not port:
        return None
    try:
        return start_http_server(port, addr=addr, registry=_ScrapeRegistry())
    except OSError as exc:
        logger.error("Prometheus metrics not served on %s:%s: %s", addr, port, exc)
        return None
