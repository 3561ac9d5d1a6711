"""`manage.py bench_api`: server time of every analytics endpoint over N rows of synthetic history.

For each N the parent creates a throw-away database (devtools.benchdb) and a fresh child process fills
it and times the API in-process, so the configured database is never touched and no N inherits
another's memory, connections or caches. The history keeps the ETL's invariants (a SnapshotDay per
feed and day, what `etl validate` checks), and every timed answer is checked: not empty, and equal to
what its selector computes for the same query. A benchmark of an empty or wrong answer fails instead.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.http import HttpResponseBase, QueryDict
from django.test import Client, RequestFactory, override_settings
from django.urls import resolve
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from analytics.api.base import AnalyticsApi
from devtools import history
from devtools.benchdb import bench_database, child_env, computed_answer, empty_parts, percentile, run_child
from devtools.endpoints import ENDPOINTS, Context
from snapshots.models import Snapshot

DEFAULT_ROWS = (1_000_000, 10_000_000, 30_000_000)
MIN_ROWS = 500
COLD_TARGET_MS = 50.0
COLD_TARGET_ROWS = 1_000_000  # the cold target applies from this many rows
WARM_TARGET_MS = 5.0
GROWTH_TARGET = 1.5


class Command(BaseCommand):
    help = (
        "Benchmark the analytics API in a throw-away database filled with N synthetic snapshot rows: p50/p95 "
        "server time of R requests per endpoint, cold (analytics cache off) and warm (cache on, primed). "
        "Each N runs in a fresh process."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--rows",
            action="append",
            help="Snapshot rows; repeat or comma-separate, k/M suffixes allowed (default: 100000,1000000).",
        )
        parser.add_argument("--requests", type=int, default=30, help="Timed requests per endpoint (default 30).")
        parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
        parser.add_argument("--child-rows", type=int, default=0, help=argparse.SUPPRESS)

    def handle(self, *args: Any, rows: list[str] | None, requests: int, child: bool, child_rows: int, **_: Any) -> None:
        if requests < 1:
            raise CommandError("--requests must be at least 1.")
        if child:
            self.stdout.write(json.dumps(_fill_and_measure(child_rows, requests), default=str))
            return
        results: dict[int, dict[str, Any]] = {}
        for count in _parse_rows(rows):
            self.stdout.write(f"\n{count:,} rows: creating a throw-away database, then filling and measuring it")
            with bench_database("bench_api") as url:
                # A prefix of its own keeps the bench's keys (answers and throttle history) apart from any
                # other user of this Redis; the short TTL lets them expire. The anonymous throttle would
                # otherwise answer 429 once a large --requests runs past its per-minute budget. The test
                # client's host is "testserver", which the configured ALLOWED_HOSTS need not include
                # (with DEBUG=1 they are only 127.0.0.1 and localhost).
                env = child_env(
                    url,
                    CACHE_KEY_PREFIX=f"bench-api-{uuid.uuid4().hex[:8]}",
                    CACHE_TTL="900",
                    API_ANON_RATE="1000000/min",
                    ALLOWED_HOSTS="testserver",
                )
                try:
                    out = run_child(
                        ["bench_api", "--child", "--child-rows", str(count), "--requests", str(requests)], env
                    )
                except CommandError as exc:  # its message ends with the child's last lines
                    raise CommandError(f"benchmark at {count:,} rows failed: {exc}") from exc
            results[count] = json.loads(out.strip().splitlines()[-1])
            self._report(count, results[count], requests)
        self._compare(results)

    def _report(self, count: int, result: dict[str, Any], requests: int) -> None:
        shape = result["shape"]
        lists = ", ".join(f"{feed} {size:,}" for feed, size in shape["sizes"].items())
        self.stdout.write(
            f"\n{result['rows']:,} rows ({shape['titles']:,} titles, {shape['days']} days; a day lists "
            f"{lists}): filled in {result['fill_seconds']:.1f} s, ANALYZE "
            f"{result['analyze_seconds']:.1f} s; {requests} requests per endpoint, times in ms; "
            f"load average {result['load_average']:.1f} (times are only comparable on a quiet machine)"
        )
        self.stdout.write(
            f"{'endpoint':<32}{'queries':>8}{'cold p50':>10}{'cold p95':>10}{'warm p50':>10}{'warm p95':>10}  flags"
        )
        for row in result["endpoints"]:
            flags = _flags(row, cold_target=count >= COLD_TARGET_ROWS)
            self.stdout.write(
                f"{row['name']:<32}{row['queries']:>8}{row['cold_p50']:>10.1f}{row['cold_p95']:>10.1f}"
                f"{row['warm_p50']:>10.1f}{row['warm_p95']:>10.1f}  {' '.join(flags)}".rstrip()
            )

    def _compare(self, results: dict[int, dict[str, Any]]) -> None:
        small, large = min(results), max(results)
        missed = 0
        if small != large:
            self.stdout.write(
                f"\ncold p95 at {large:,} rows / cold p95 at {small:,} rows (target <= {GROWTH_TARGET:g}x)"
            )
            before = {row["name"]: row for row in results[small]["endpoints"]}
            for row in results[large]["endpoints"]:
                ratio = row["cold_p95"] / max(before[row["name"]]["cold_p95"], 0.001)
                flag = f"  growth>{GROWTH_TARGET:g}x" if ratio > GROWTH_TARGET else ""
                self.stdout.write(
                    f"{row['name']:<32}{before[row['name']]['cold_p95']:>9.1f} ->{row['cold_p95']:>8.1f} ms"
                    f"{ratio:>8.2f}x{flag}"
                )
                missed += bool(flag)
        for count, result in results.items():
            missed += sum(bool(_flags(row, cold_target=count >= COLD_TARGET_ROWS)) for row in result["endpoints"])
        targets = (
            f"cold p95 <= {COLD_TARGET_MS:g} ms from {COLD_TARGET_ROWS:,} rows, warm p95 <= {WARM_TARGET_MS:g} ms "
            "(but for live endpoints, never kept), "
            f"growth <= {GROWTH_TARGET:g}x"
        )
        verdict = f"{missed} row(s) miss a target" if missed else "every endpoint meets its targets"
        self.stdout.write(f"\n{verdict} ({targets})")


def _flags(row: dict[str, Any], *, cold_target: bool) -> list[str]:
    flags = []
    if cold_target and row["cold_p95"] > COLD_TARGET_MS:
        flags.append(f"cold>{COLD_TARGET_MS:g}ms")
    if row["warm_p95"] > WARM_TARGET_MS and not row["live"]:
        flags.append(f"warm>{WARM_TARGET_MS:g}ms")
    return flags


def _parse_rows(values: list[str] | None) -> list[int]:
    if not values:
        return list(DEFAULT_ROWS)
    counts = set()
    for value in values:
        for part in value.split(","):
            text = part.strip().lower()
            multiplier = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
            try:
                count = int(text[:-1] if multiplier > 1 else text) * multiplier
            except ValueError:
                raise CommandError(f"--rows: {part!r} is not a row count (e.g. 100000, 100k, 1M)") from None
            if count < MIN_ROWS:
                raise CommandError(f"--rows: at least {MIN_ROWS} rows, not {count}")
            counts.add(count)
    return sorted(counts)


# The measurement ---------------------------------------------------------------------------------------------


def _body(response: HttpResponseBase) -> str:
    content = getattr(response, "content", b"")
    if response.get("Content-Encoding") == "gzip":
        content = gzip.decompress(content)
    return content.decode(errors="replace")


def _get(client: Client, url: str) -> HttpResponseBase:
    # secure=True: with DEBUG off, SECURE_SSL_REDIRECT would answer plain HTTP with a redirect.
    response = client.get(url, secure=True)
    if response.status_code != 200:
        # The body's first line only (a JSON error, or the title of DEBUG's error page): one readable line.
        first_line = _body(response).strip().partition("\n")[0][:300]
        raise CommandError(f"GET {url} answered {response.status_code}, not 200: {first_line}")
    return response


def _timed(client: Client, url: str) -> tuple[float, HttpResponseBase]:
    started = time.perf_counter()
    response = _get(client, url)
    return (time.perf_counter() - started) * 1000, response


def _checked_get(client: Client, url: str) -> HttpResponseBase:
    """GET `url`, refusing an answer that is empty or differs from what its selector computes."""
    response = _get(client, url)
    _check(url, response)
    return response


def _check(url: str, response: HttpResponseBase) -> None:
    answer = json.loads(_body(response))
    if empty := empty_parts(answer):
        raise CommandError(f"GET {url} gave an empty answer ({', '.join(empty)}): there is nothing real to time.")
    expected = _selector_answer(url)
    if isinstance(answer, dict) and set(answer) > set(expected):
        # A page of a paged list: its count and rows (the next/previous links are the paginator's).
        answer = {key: answer[key] for key in expected}
    if answer != expected:
        raise CommandError(f"GET {url} differs from the selector's own answer for the same query.")


def _selector_answer(url: str) -> Any:
    """What the endpoint's selector computes for the query of `url`, through the endpoint's serializer, as JSON."""
    parts = urlsplit(url)
    match = resolve(parts.path)
    view = match.func.view_class  # type: ignore[attr-defined]  # an APIView's as_view() keeps its class
    if issubclass(view, AnalyticsApi):
        return computed_answer(view, QueryDict(parts.query), match.kwargs)
    # A paged list (search, runs): the first page of its queryset through its serializer.
    api = view(request=Request(RequestFactory().get(url)), kwargs=match.kwargs, format_kwarg=None)
    rows = api.get_queryset()
    size = api.paginator.get_page_size(api.request)
    data = {"count": rows.count(), "results": api.get_serializer(rows[:size], many=True).data}
    return json.loads(JSONRenderer().render(data))


class _QueryCounter:
    """Counts the statements run (CaptureQueriesContext loses them: each request clears the query log)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


def _measure(ctx: Context, requests: int) -> list[dict[str, Any]]:
    # Headers a browser sends: JSON (not the browsable API) and gzip, which the GZip middleware then applies.
    client = Client(headers={"accept": "application/json", "accept-encoding": "gzip"})
    results = []
    for endpoint in ENDPOINTS:
        urls = [endpoint.url(ctx=ctx, i=i) for i in range(requests)]
        with override_settings(ANALYTICS_CACHE_ENABLED=False):
            # An untimed first request loads the code paths and counts the queries an answer costs.
            queries = _QueryCounter()
            with connection.execute_wrapper(queries):
                _get(client, urls[0])
            cold = []
            for url in urls:
                elapsed, response = _timed(client, url)
                cold.append(elapsed)
                _check(url, response)  # after the clock stopped
        _get(client, urls[0])  # primes the cache
        warm = []
        for _ in range(requests):
            elapsed, response = _timed(client, urls[0])
            warm.append(elapsed)
        _check(urls[0], response)  # the cached answer is the one computed
        results.append(
            {
                "name": endpoint.label,
                "live": endpoint.live,
                "queries": queries.count,
                "cold_p50": percentile(cold, 0.5),
                "cold_p95": percentile(cold, 0.95),
                "warm_p50": percentile(warm, 0.5),
                "warm_p95": percentile(warm, 0.95),
            }
        )
    return results


def _fill_and_measure(rows: int, requests: int) -> dict[str, Any]:
    started = time.perf_counter()
    shape, context = history.fill(rows)
    filled = time.perf_counter()
    history.analyze()
    analyzed = time.perf_counter()
    endpoints = _measure(context, requests)
    return {
        "shape": asdict(shape),
        "rows": Snapshot.objects.count(),
        "fill_seconds": filled - started,
        "analyze_seconds": analyzed - filled,
        "endpoints": endpoints,
        "load_average": os.getloadavg()[0],
    }
