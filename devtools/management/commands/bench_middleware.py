"""`manage.py bench_middleware`: what each middleware costs a request, on the short path and the whole way.

An ablation in this process: each URL is timed with every middleware of `settings.MIDDLEWARE`, then with
each one left out in turn (alternately, several rounds, medians), through django.test.Client. The short
path is an anonymous request whose answer is kept (analytics/wire.py); the whole way carries a session
cookie, so sessions, CSRF, authentication, messages and the view run, over a warm answer cache. Every
timed answer is checked first: 200, the same body as with the whole stack, kept (an ETag) on the short
path only. A middleware whose absence changes the answer is reported as needed, not timed.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from importlib import import_module
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.test import Client, override_settings

from devtools.benchdb import unhashed_static
from snapshots.models import Anime

DEFAULT_URLS = ("/api/v1/overview", "/")
ROUNDS = 3
PATHS = ("short", "full")


class Command(BaseCommand):
    help = (
        "Time each URL with every middleware, then with each one left out, on the short path (anonymous, answer "
        "kept) and the whole way (a session); print what each middleware costs per request in microseconds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-n", "--requests", type=int, default=200, help="Requests per timing (default 200).")
        parser.add_argument("--url", action="append", help=f"A URL to time; repeatable (default {DEFAULT_URLS}).")
        parser.add_argument("--json", action="store_true", help="Print the result as one JSON object too.")

    def handle(self, *args: Any, requests: int, url: list[str] | None, **options: Any) -> None:
        if requests < 1:
            raise CommandError("--requests must be at least 1.")
        if not Anime.objects.exists():
            raise CommandError("No data to measure: run `manage.py seed_demo --days 90` (or `make demo`) first.")
        # A log line per request would be most of what is timed; a stack missing a needed middleware fails on
        # purpose, and its traceback would only hide the table.
        logging.disable(logging.CRITICAL)
        # One session for every request of the whole way: a session with something in it is saved, so its
        # cookie is a real one. Deleted when the bench ends.
        session = import_module(settings.SESSION_ENGINE).SessionStore()
        session["bench"] = True
        session.save()
        try:
            # The throttle still runs (its Redis round trip is part of the cost) at a rate the bench never reaches.
            rates = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"anon": "100000000/min"}}
            with (
                unhashed_static(),
                override_settings(
                    ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"],
                    SECURE_SSL_REDIRECT=False,
                    REST_FRAMEWORK=rates,
                ),
            ):
                result = {path: self._url(path, requests, session.session_key) for path in url or DEFAULT_URLS}
        finally:
            session.delete()
            logging.disable(logging.NOTSET)
        if options["json"]:
            self.stdout.write(json.dumps(result))

    def _url(self, url: str, requests: int, session_key: str) -> dict[str, Any]:
        stack = list(settings.MIDDLEWARE)
        cookies = {"short": None, "full": session_key}
        expected = {path: _checked(url, path, stack, cookies[path], expected=None) for path in PATHS}
        whole: dict[str, list[float]] = {path: [] for path in PATHS}
        costs: dict[str, dict[str, float | None]] = {}
        for middleware in stack:
            without = [name for name in stack if name != middleware]
            costs[middleware] = {}
            for path in PATHS:
                try:
                    _checked(url, path, without, cookies[path], expected=expected[path])
                except CommandError:
                    costs[middleware][path] = None  # the answer needs it
                    continue
                pairs = [
                    (_timed(url, stack, cookies[path], requests), _timed(url, without, cookies[path], requests))
                    for _ in range(ROUNDS)
                ]
                whole[path] += [with_it for with_it, _ in pairs]
                costs[middleware][path] = statistics.median(with_it - without_it for with_it, without_it in pairs)
        totals = {path: statistics.median(times) if times else None for path, times in whole.items()}
        self._print(url, costs, totals)
        return {"costs_us": costs, "total_us": totals}

    def _print(self, url: str, costs: dict[str, dict[str, float | None]], totals: dict[str, float | None]) -> None:
        self.stdout.write(f"\n{url}: microseconds per request each middleware costs (with it minus without it)")
        self.stdout.write(f"{'middleware':<58}{'short path':>12}{'whole way':>12}")
        for middleware, cost in sorted(
            costs.items(), key=lambda item: (item[1]["full"] is None, -(item[1]["full"] or 0))
        ):
            cells = "".join(f"{'needed' if cost[path] is None else f'{cost[path]:.0f}':>12}" for path in PATHS)
            self.stdout.write(f"{middleware:<58}{cells}")
        cells = "".join(f"{'-' if totals[path] is None else f'{totals[path]:.0f}':>12}" for path in PATHS)
        self.stdout.write(f"{'a whole request':<58}{cells}")


def _client(session_key: str | None) -> Client:
    """A client whose handler loads the middleware in force at its first request; anonymous without a key."""
    client = Client(headers={"accept": "application/json"})
    if session_key:
        client.cookies[settings.SESSION_COOKIE_NAME] = session_key
    return client


def _checked(url: str, path: str, middleware: list[str], session_key: str | None, *, expected: bytes | None) -> bytes:
    """The body `url` answers on `path` with `middleware`, after checking it is the real answer."""
    with override_settings(MIDDLEWARE=middleware):
        client = _client(session_key)
        try:
            client.get(url)  # fills the caches; the next one is what is timed
            response = client.get(url)
        except Exception as exc:  # another middleware that needs the one left out (auth needs sessions)
            raise CommandError(f"GET {url} ({path}) failed: {exc}") from exc
    if response.status_code != 200 or not response.content:
        raise CommandError(f"GET {url} ({path}) answered {response.status_code} with {len(response.content)} bytes.")
    # Only the whole stack must answer from a kept answer: without the wire cache the short path's request
    # takes the whole way, which is the saving its row shows.
    if path == "short" and "ETag" not in response and expected is None:
        raise CommandError(f"GET {url} is not answered from a kept answer: the short path would time nothing.")
    if path == "full" and "ETag" in response:
        raise CommandError(f"GET {url} with a session was answered from a kept answer.")
    if expected is not None and response.content != expected:
        raise CommandError(f"GET {url} ({path}) answered differently.")
    return response.content


def _timed(url: str, middleware: list[str], session_key: str | None, requests: int) -> float:
    """Microseconds per request, median of `requests` (the client and its middleware chain built first)."""
    with override_settings(MIDDLEWARE=middleware):
        client = _client(session_key)
        client.get(url)
        times = []
        for _ in range(requests):
            start = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - start) * 1e6)
    return statistics.median(times)
