"""Load and soak tests: gunicorn with production settings on loopback, driven by wrk.

`manage.py loadtest` is the interface; this module starts the server, picks the URLs, runs wrk with
`loadtest.lua` (which rotates over them) and samples the memory of the gunicorn processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import F

from devtools import endpoints
from devtools.benchdb import manage
from devtools.testing import ROOT, current_database_url, free_port
from snapshots.models import Anime

LUA_SCRIPT = Path(__file__).with_name("loadtest.lua")
WRK_INSTALL = "apt-get update && apt-get install -y wrk"
# Measured on a 2-core machine: two processes of two threads beat 1x8 (one GIL), 2x4 (GIL switching),
# 3x4 and 4x1 (more processes than cores; wrk and Redis need their share too).
DEFAULT_WORKERS = 2
DEFAULT_WORKER_THREADS = 2


class LoadtestError(Exception):
    """The load test could not run (wrk missing, server not healthy, a URL failing before the run)."""


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def processes(self) -> list[psutil.Process]:
        """The gunicorn master and its workers."""
        master = psutil.Process(self.process.pid)
        return [master, *master.children(recursive=True)]


@dataclass
class MemorySample:
    elapsed_s: float
    rss_mib: dict[int, float]

    @property
    def total_mib(self) -> float:
        return sum(self.rss_mib.values())


@dataclass
class SoakReport:
    samples: list[MemorySample] = field(default_factory=list)

    @property
    def start_mib(self) -> float:
        return self.samples[0].total_mib

    @property
    def end_mib(self) -> float:
        return self.samples[-1].total_mib

    @property
    def growth_pct(self) -> float:
        return (self.end_mib - self.start_mib) / self.start_mib * 100


def require_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise LoadtestError(f"wrk is not installed: run `make loadtools` (or `{WRK_INSTALL}`).")
    return wrk


def require_migrated() -> None:
    """The server would answer 503 on a schema it does not know; say what to run instead."""
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        raise LoadtestError("The database has unapplied migrations: run `manage.py migrate` first.")


def target_paths() -> list[str]:
    """The dashboard, /trending/, a title page and the first request of every analytics API endpoint."""
    top = Anime.objects.order_by(F("rank").asc(nulls_last=True), "mal_id").first()
    if top is None:
        raise LoadtestError("No data to load: run `manage.py seed_demo --days 90` (or `make demo`) first.")
    # Each endpoint's default page, about the best-ranked title and a word of its name.
    ctx = endpoints.Context(days=[], mal_ids=[top.mal_id], words=[(top.title.split() or ["a"])[0]])
    return ["/", "/trending/", f"/anime/{top.mal_id}/", *endpoints.typical_urls(ctx=ctx)]


def server_env(*, static_root: Path) -> dict[str, str]:
    """Production settings on plain HTTP, with the configured database and Redis.

    The anonymous API throttle would turn a one-client load test into 429s after 100 requests a
    second; it stays on (its cache round trip is measured) with a rate no test reaches.
    """
    return {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "STATIC_ROOT": str(static_root),
        "API_ANON_RATE": "100000000/min",
        "DATABASE_URL": current_database_url(),
    }


def collect_static(env: dict[str, str]) -> None:
    """The hashed, compressed manifest production serves (the pages fail without it)."""
    manage(["collectstatic", "--noinput", "-v0"], env)


@contextlib.contextmanager
def gunicorn(*, workers: int, threads: int) -> Iterator[Server]:
    """gunicorn serving this project on a free loopback port until the block ends; its log in a temp file."""
    with tempfile.TemporaryDirectory(prefix="animedash-loadtest-") as folder:
        env = server_env(static_root=Path(folder) / "static")
        collect_static(env)
        port = free_port()
        log_path = Path(folder) / "gunicorn.log"
        command = [
            *(sys.executable, "-m", "gunicorn", "animedash.wsgi"),
            *("--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads)),
            *("--worker-tmp-dir", "/dev/shm", "--no-control-socket", "--timeout", "60"),
        ]
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        server = Server(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
        try:
            wait_healthy(server)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_healthy(server: Server, *, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise LoadtestError(f"gunicorn exited with {server.process.returncode}:\n{_tail(server.log_path)}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{server.url}/healthz", timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.2)
    raise LoadtestError(f"gunicorn did not answer /healthz within {timeout:.0f} s:\n{_tail(server.log_path)}")


def warm(server: Server, paths: list[str], *, rounds: int = 3) -> None:
    """Request every path a few times (each worker fills its caches); any non-2xx/3xx stops the test."""
    for _ in range(rounds):
        for path in paths:
            try:
                with urllib.request.urlopen(f"{server.url}{path}", timeout=30) as response:
                    response.read()
            except urllib.error.HTTPError as exc:
                raise LoadtestError(
                    f"GET {path} answered {exc.code} before the run:\n{_tail(server.log_path)}"
                ) from exc


def wrk_command(server: Server, *, paths_file: Path, duration: int, connections: int, threads: int) -> list[str]:
    return [
        require_wrk(),
        *("--threads", str(threads), "--connections", str(connections), "--duration", f"{duration}s"),
        *("--timeout", "10s", "--latency", "--script", str(LUA_SCRIPT)),
        server.url,
        *("--", str(paths_file)),
    ]


def run_wrk(
    server: Server,
    paths: list[str],
    *,
    duration: int,
    connections: int,
    threads: int,
    while_running: Callable[[subprocess.Popen[str]], None] | None = None,
) -> dict[str, Any]:
    """wrk's summary (see loadtest.lua) for `duration` seconds over `paths`; `while_running` polls meanwhile."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="loadtest-paths-") as paths_file:
        paths_file.write("\n".join(paths) + "\n")
        paths_file.flush()
        command = wrk_command(
            server, paths_file=Path(paths_file.name), duration=duration, connections=connections, threads=threads
        )
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if while_running is not None:
            while_running(process)
        stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise LoadtestError(f"wrk failed ({process.returncode}): {stderr.strip() or stdout.strip()}")
    summary: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    summary["error_count"] = sum(summary["errors"].values())
    return summary


def sample_memory(server: Server, started: float) -> MemorySample:
    rss = {}
    for process in server.processes():
        with contextlib.suppress(psutil.NoSuchProcess):
            rss[process.pid] = process.memory_info().rss / 2**20
    return MemorySample(elapsed_s=time.monotonic() - started, rss_mib=rss)


def soak_sampler(
    server: Server, report: SoakReport, *, every: float, on_sample: Callable[[MemorySample], None]
) -> Callable[[subprocess.Popen[str]], None]:
    """A `while_running` hook: one memory sample now, then every `every` seconds until wrk exits."""

    def poll(wrk: subprocess.Popen[str]) -> None:
        started = time.monotonic()
        while True:
            sample = sample_memory(server, started)
            report.samples.append(sample)
            on_sample(sample)
            try:
                wrk.wait(timeout=every)
                break
            except subprocess.TimeoutExpired:
                continue
        # The last sample, just after the load stopped.
        report.samples.append(sample_memory(server, started))

    return poll


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
