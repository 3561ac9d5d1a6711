"""A throw-away database for benchmark commands, so a benchmark never touches real data."""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
from django.conf import settings
from psycopg import sql

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


def child_env(database_url: str, **extra: str) -> dict[str, str]:
    # The children run devtools' own commands, whatever the parent's DEBUG.
    return {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", "DEVTOOLS": "1", **extra}


def migrate(database_url: str) -> None:
    manage(["migrate", "--noinput", "-v0"], child_env(database_url))


def manage(args: list[str], env: dict[str, str]) -> None:
    """Run `manage.py <args>` in a child process; raise if it fails."""
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def run_child(args: list[str], env: dict[str, str]) -> str:
    """Run `manage.py <args>` in a fresh process (its own peak RSS) and return what it printed."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


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
