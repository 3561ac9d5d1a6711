"""What the benchmark commands share: a throw-away database, so a benchmark never touches real data, child
processes, percentiles, and the checks that what they time is a real answer."""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.core.management import CommandError
from django.test import override_settings
from psycopg import sql
from rest_framework.renderers import JSONRenderer

from analytics.api.base import AnalyticsApi
from devtools.testing import ROOT, postgres_url


@contextlib.contextmanager
def bench_database(name: str) -> Iterator[str]:
    """Create an empty, migrated database beside the configured one; yield its URL; drop it after.

    PostgreSQL when the project runs on PostgreSQL (`<database>_<name>`), else a temporary SQLite file.
    """
    db = settings.DATABASES["default"]
    if "postgresql" not in db["ENGINE"]:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/{name}.sqlite3"
            migrate(url)
            yield url
        return
    database = f"{db['NAME']}_{name}"
    url = postgres_url(database)
    admin = psycopg.connect(url, dbname="postgres", autocommit=True)
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        migrate(url)
        yield url
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        admin.close()


def unhashed_static() -> override_settings:
    """Static files by their plain names, so a benchmark renders pages without a collectstatic manifest."""
    static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    return override_settings(STORAGES={**settings.STORAGES, "staticfiles": static})


def child_env(database_url: str, **extra: str) -> dict[str, str]:
    # The children run devtools' own commands, whatever the parent's DEBUG.
    return {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", "DEVTOOLS": "1", **extra}


def migrate(database_url: str) -> None:
    manage(["migrate", "--noinput", "-v0"], child_env(database_url))


def manage(args: list[str], env: dict[str, str]) -> None:
    """Run `manage.py <args>` in a child process; raise CommandError with its last lines if it fails."""
    run_child(args, env)


def run_child(args: list[str], env: dict[str, str]) -> str:
    """Run `manage.py <args>` in a fresh process (its own peak RSS) and return what it printed.

    A child that fails raises CommandError ending with the last lines it wrote to stderr (its own
    error comes last), so the parent command prints them instead of a traceback of its own.
    """
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise CommandError(
            f"manage.py {' '.join(args)} failed (exit status {result.returncode}); its last lines:\n"
            + _tail(result.stderr)
        )
    return result.stdout


# A failed child's last stderr lines shown, each cut to a width: a JSON log line can carry a whole traceback.
TAIL_LINES = 12
TAIL_WIDTH = 300


def _tail(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()][-TAIL_LINES:]
    return "\n".join(f"  {line[:TAIL_WIDTH]}{' ...' if len(line) > TAIL_WIDTH else ''}" for line in lines)


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..1): with 30 samples p95 is the 29th fastest, a time that really happened."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    Read from VmHWM, not getrusage(): after fork + exec, ru_maxrss still carries the parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource  # not Linux: the best available figure

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def empty_parts(answer: Any, where: str = "answer") -> list[str]:
    """Where an answer says "nothing here": an empty list it exists to give, or a history too short for it."""
    if isinstance(answer, list):
        return [] if answer else [where]
    if not isinstance(answer, dict):
        return []
    empty = [f"{where}.insufficient_history"] if answer.get("insufficient_history") else []
    for key, value in answer.items():
        if key in ("results", "days", "feeds") and not value:
            empty.append(f"{where}.{key}")
        elif isinstance(value, dict) and "results" in value:  # a bundle's envelopes (trending)
            empty += empty_parts(value, f"{where}.{key}")
    return empty


def computed_answer(endpoint: type[AnalyticsApi], query: Mapping[str, Any], path: Mapping[str, Any]) -> Any:
    """What the endpoint's selector computes for `query`, through the endpoint's serializer, as JSON data.

    Computed past the endpoint's `answer()` and the cache, so that a wrong answer on either path shows.
    """
    filters = endpoint.Filter(data=query)
    filters.is_valid(raise_exception=True)
    data = endpoint.Output(endpoint.compute(**filters.validated_data, **path), many=endpoint.many).data
    return json.loads(JSONRenderer().render(data))
