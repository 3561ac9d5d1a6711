"""Load and soak tests: gunicorn with production settings on loopback, driven by wrk.

`manage.py loadtest` is the interface; this module starts the server (of this checkout or another one),
picks the URLs, runs wrk with `loadtest.lua` (which rotates over them), samples the memory of the gunicorn
processes, and sums up a comparison of two server configurations run alternately.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import statistics
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
from devtools.testing import ROOT, current_database_url, free_port
from snapshots.models import Anime

LUA_SCRIPT = Path(__file__).with_name("loadtest.lua")
WRK_INSTALL = "apt-get update && apt-get install -y wrk"
# The deployment's default (deploy/start-web): one process per container, gunicorn's sync worker.
DEFAULT_PROCESSES = 1
DEFAULT_THREADS = 1
CONFIG_KEYS = ("processes", "threads", "root")
# The figures a comparison sets side by side: throughput and wrk's latency percentiles.
METRICS = ("rps", "p50", "p95", "p99")


class LoadtestError(Exception):
    """The load test could not run (bad arguments, wrk missing, server not healthy, a URL failing before the run)."""


@dataclass(frozen=True)
class ServerConfig:
    """The server side of a run: gunicorn's shape and the checkout it serves."""

    processes: int = DEFAULT_PROCESSES
    threads: int = DEFAULT_THREADS
    root: Path = ROOT

    def describe(self) -> str:
        # gunicorn swaps its sync worker for gthread by itself when threads > 1.
        worker = "gthread" if self.threads > 1 else "sync"
        text = f"processes={self.processes}, threads={self.threads} ({worker})"
        return text if self.root == ROOT else f"{text}, root={self.root}"

    def as_json(self) -> dict[str, Any]:
        return {"processes": self.processes, "threads": self.threads, "root": str(self.root)}


@dataclass(frozen=True)
class Load:
    """The client side of a run: what wrk asks for, with which headers, how hard and how long."""

    paths: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]  # (name, value)
    duration: int
    connections: int
    wrk_threads: int


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


def parse_config(spec: str, *, base: ServerConfig) -> ServerConfig:
    """`base` changed by a `--compare` spec such as `processes=1,threads=4` or `root=/tmp/before`."""
    changes: dict[str, Any] = {}
    for item in spec.split(","):
        key, equals, value = (part.strip() for part in item.partition("="))
        if not equals or not key or not value:
            raise LoadtestError(f"--compare {spec!r}: {item.strip()!r} is not key=value ({', '.join(CONFIG_KEYS)}).")
        if key not in CONFIG_KEYS:
            raise LoadtestError(f"--compare {spec!r}: unknown key {key!r}; the keys are {', '.join(CONFIG_KEYS)}.")
        if key in changes:
            raise LoadtestError(f"--compare {spec!r}: {key} is given twice.")
        changes[key] = checkout_root(value) if key == "root" else _at_least_one(f"--compare {spec!r}: {key}", value)
    return dataclasses.replace(base, **changes)


def checkout_root(value: str) -> Path:
    """The folder of another checkout of this project (relative to the current directory), with its manage.py."""
    root = Path(value).expanduser().resolve()
    if not (root / "manage.py").is_file():
        raise LoadtestError(
            f"root={value}: {root} has no manage.py; give a checkout of this project "
            "(e.g. `git worktree add /tmp/before <commit>`)."
        )
    return root


def _at_least_one(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise LoadtestError(f"{name} must be a whole number, not {value!r}.") from None
    if number < 1:
        raise LoadtestError(f"{name} must be at least 1, not {number}.")
    return number


def check_url(path: str) -> str:
    """A path of this site as wrk puts it on the request line: starting with /, no spaces."""
    if not path.startswith("/") or any(char.isspace() for char in path):
        raise LoadtestError(f"--url takes a path of this site starting with / (e.g. /api/v1/overview), not {path!r}.")
    return path


def parse_header(text: str) -> tuple[str, str]:
    """(name, value) of `Name: value`."""
    name, colon, value = text.partition(":")
    name = name.strip()
    if not colon or not name or any(char.isspace() for char in name):
        raise LoadtestError(f"--header takes 'Name: value' (e.g. 'If-None-Match: W/\"...\"'), not {text!r}.")
    return name, value.strip()


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


def server_env(*, root: Path, static_root: Path) -> dict[str, str]:
    """Production settings on plain HTTP, with the configured database and Redis, importing `root`'s code.

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
        "PYTHONPATH": str(root),
    }


@contextlib.contextmanager
def collected_static(root: Path) -> Iterator[Path]:
    """`root`'s static files as production serves them (hashed manifest, compressed) in a temporary folder.

    The pages fail without them. collectstatic compresses every file, which takes tens of seconds, so a
    comparison collects once per checkout, not once per run.
    """
    with tempfile.TemporaryDirectory(prefix="animedash-loadtest-static-") as folder:
        static_root = Path(folder)
        result = subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
            cwd=root,
            env=server_env(root=root, static_root=static_root),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise LoadtestError(
                f"collectstatic in {root} exited with {result.returncode}:\n{_last_lines(result.stderr)}"
            )
        yield static_root


@contextlib.contextmanager
def gunicorn(config: ServerConfig, *, static_root: Path) -> Iterator[Server]:
    """gunicorn serving `config.root` on a free loopback port until the block ends; its log in a temp file."""
    with tempfile.TemporaryDirectory(prefix="animedash-loadtest-") as folder:
        port = free_port()
        log_path = Path(folder) / "gunicorn.log"
        command = [
            *(sys.executable, "-m", "gunicorn", "animedash.wsgi", "--bind", f"127.0.0.1:{port}"),
            *("--workers", str(config.processes), "--threads", str(config.threads)),
            *("--worker-tmp-dir", "/dev/shm", "--no-control-socket", "--timeout", "60"),
        ]
        env = server_env(root=config.root, static_root=static_root)
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, cwd=config.root, env=env, stdout=log, stderr=subprocess.STDOUT)
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


def warm(server: Server, load: Load, *, rounds: int = 3) -> None:
    """Request every path a few times with the run's headers (each worker fills its caches).

    An answer of 400 or more stops the test, as wrk would count it an error; a 304 to If-None-Match passes.
    """
    headers = dict(load.headers)
    for _ in range(rounds):
        for path in load.paths:
            request = urllib.request.Request(f"{server.url}{path}", headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
            except urllib.error.HTTPError as exc:
                if exc.code >= 400:
                    raise LoadtestError(
                        f"GET {path} answered {exc.code} before the run:\n{_tail(server.log_path)}"
                    ) from exc


def wrk_command(base_url: str, load: Load, *, paths_file: Path) -> list[str]:
    return [
        require_wrk(),
        *("--threads", str(load.wrk_threads), "--connections", str(load.connections)),
        *("--duration", f"{load.duration}s", "--timeout", "10s", "--latency", "--script", str(LUA_SCRIPT)),
        # wrk takes a header only as "Name: value", with exactly one space after the colon.
        *(option for name, value in load.headers for option in ("--header", f"{name}: {value}")),
        base_url,
        *("--", str(paths_file)),
    ]


def run_wrk(
    base_url: str, load: Load, *, while_running: Callable[[subprocess.Popen[str]], None] | None = None
) -> dict[str, Any]:
    """wrk's summary (see loadtest.lua) of `load` against `base_url`; `while_running` polls meanwhile."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="loadtest-paths-") as paths_file:
        paths_file.write("\n".join(load.paths) + "\n")
        paths_file.flush()
        command = wrk_command(base_url, load, paths_file=Path(paths_file.name))
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if while_running is not None:
            while_running(process)
        stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise LoadtestError(f"wrk failed ({process.returncode}): {stderr.strip() or stdout.strip()}")
    summary: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    summary["error_count"] = sum(summary["errors"].values())
    return summary


def run_summary(result: dict[str, Any]) -> str:
    """One line of a run: throughput, latency percentiles and errors by kind."""
    latency, errors = result["latency_ms"], result["errors"]
    return (
        f"{result['requests']} requests in {result['duration_s']:.1f} s: {result['rps']:.1f} req/s; "
        f"latency p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms, p99 {latency['p99']:.1f} ms, "
        f"max {latency['max']:.1f} ms; errors {result['error_count']} "
        f"(status {errors['status']}, connect {errors['connect']}, read {errors['read']}, "
        f"write {errors['write']}, timeout {errors['timeout']})"
    )


def compare_plan(a: ServerConfig, b: ServerConfig, *, rounds: int) -> list[tuple[int, str, ServerConfig]]:
    """(round, label, config) in the order A, B, A, B, ...

    Alternating spreads a drift of the machine (heat, a neighbour's load) over both sides alike.
    """
    return [(n, label, config) for n in range(1, rounds + 1) for label, config in (("A", a), ("B", b))]


def median_of(results: list[dict[str, Any]]) -> dict[str, float]:
    """The median of each metric over a configuration's runs, and their errors added up."""
    figures = {
        metric: statistics.median(r["rps"] if metric == "rps" else r["latency_ms"][metric] for r in results)
        for metric in METRICS
    }
    return {**figures, "errors": sum(r["error_count"] for r in results)}


def ratios(a: dict[str, float], b: dict[str, float]) -> dict[str, float | None]:
    """B/A for each metric: above 1 is more requests/s, or a slower latency; None where A's figure is 0."""
    return {metric: round(b[metric] / a[metric], 3) if a[metric] else None for metric in METRICS}


def compare_report(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The runs (each labelled "A" or "B" under "config"), each configuration's medians and the ratios B/A."""
    medians = {label: median_of([run for run in runs if run["config"] == label]) for label in ("A", "B")}
    return {"runs": runs, "medians": medians, "ratios": ratios(medians["A"], medians["B"])}


def median_summary(median: dict[str, float]) -> str:
    return (
        f"{median['rps']:.1f} req/s; latency p50 {median['p50']:.1f} ms, p95 {median['p95']:.1f} ms, "
        f"p99 {median['p99']:.1f} ms; errors {median['errors']:.0f} in all"
    )


def ratio_summary(ratios: dict[str, float | None]) -> str:
    """`B/A: req/s 1.83x, p50 0.52x, p95 0.61x, p99 0.70x` (n/a where A's figure is 0)."""
    figures = [f"{_metric_name(metric)} {_times(ratios[metric])}" for metric in METRICS]
    return "B/A: " + ", ".join(figures)


def _metric_name(metric: str) -> str:
    return "req/s" if metric == "rps" else metric


def _times(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


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


def _tail(path: Path) -> str:
    try:
        return _last_lines(path.read_text(errors="replace"))
    except OSError:
        return ""


def _last_lines(text: str, lines: int = 20) -> str:
    return "\n".join(text.splitlines()[-lines:])
