"""The load command: its arguments, wrk's script, the comparison's arithmetic and a smoke run.

The figures are the command's business, not a test's: nothing here asserts on speed.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from analytics.tests.seed import seed_history
from devtools import loadtest
from devtools.testing import ROOT


@pytest.mark.django_db(transaction=True)
def test_loadtest_drives_gunicorn_with_wrk_and_reports(settings, tmp_path):
    seed_history()
    out = StringIO()
    call_command("loadtest", "--duration", "2", "--connections", "2", "--wrk-threads", "1", "--json", stdout=out)
    text = out.getvalue()
    result = json.loads(text.strip().splitlines()[-1])
    assert result["requests"] > 0
    assert result["error_count"] == 0, result["errors"]
    assert result["rps"] > 0
    assert {"p50", "p95", "p99"} <= result["latency_ms"].keys()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--url", "api/v1/overview"], "--url takes a path of this site starting with /"),
        (["--url", "http://127.0.0.1/"], "--url takes a path of this site starting with /"),
        (["--header", "If-None-Match"], "--header takes 'Name: value'"),
        (["--compare", "workers=2", "threads=2"], "unknown key 'workers'; the keys are processes, threads, root"),
        (["--compare", "processes", "threads=2"], "'processes' is not key=value"),
        (["--compare", "processes=two", "threads=2"], "processes must be a whole number, not 'two'"),
        (["--compare", "processes=0", "threads=2"], "processes must be at least 1, not 0"),
        (["--compare", "threads=1,threads=2", "threads=2"], "threads is given twice"),
        (["--compare", "threads=1", "threads=2", "--soak", "60"], "--soak and --fail judge one configuration's run"),
        (["--compare", "threads=1", "threads=2", "--fail"], "--soak and --fail judge one configuration's run"),
        (["--rounds", "3"], "--rounds counts the runs of each --compare configuration"),
        (["--processes", "0", "--connections", "0"], "--connections, --processes must be at least 1"),
        (["--connections", "1", "--wrk-threads", "2"], "--connections must be at least --wrk-threads"),
    ],
)
def test_loadtest_refuses_bad_arguments_before_starting_anything(arguments, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("loadtest", *arguments, stdout=StringIO())


def test_loadtest_refuses_a_compare_root_without_manage_py(tmp_path):
    with pytest.raises(CommandError, match=re.escape(f"root={tmp_path}: {tmp_path} has no manage.py")):
        call_command("loadtest", "--compare", f"root={tmp_path}", "root=.", stdout=StringIO())


def test_compare_config_takes_the_unset_keys_from_the_base_and_a_root_relative_to_here(tmp_path, monkeypatch):
    (tmp_path / "before").mkdir()
    (tmp_path / "before" / "manage.py").touch()
    monkeypatch.chdir(tmp_path)
    base = loadtest.ServerConfig(processes=3, threads=4)

    config = loadtest.parse_config(" threads=1 , root=before", base=base)

    assert config == loadtest.ServerConfig(processes=3, threads=1, root=tmp_path / "before")
    assert config.describe() == f"processes=3, threads=1 (sync), root={tmp_path / 'before'}"


def test_compare_root_dot_is_this_checkout_when_run_from_it(monkeypatch):
    monkeypatch.chdir(ROOT)
    config = loadtest.parse_config("root=.", base=loadtest.ServerConfig(processes=2, threads=2))
    assert config.root == ROOT
    assert config.describe() == "processes=2, threads=2 (gthread)"


def test_compare_plan_alternates_the_configurations_round_by_round():
    a, b = loadtest.ServerConfig(threads=1), loadtest.ServerConfig(threads=4)
    assert loadtest.compare_plan(a, b, rounds=2) == [(1, "A", a), (1, "B", b), (2, "A", a), (2, "B", b)]


def test_compare_report_takes_each_configurations_median_and_the_ratios_b_over_a():
    runs = [
        _result("A", rps=100, p50=10, p95=30, p99=50),
        _result("B", rps=500, p50=4, p95=10, p99=20, errors=1),
        _result("A", rps=300, p50=30, p95=50, p99=90, errors=2),
        _result("B", rps=400, p50=6, p95=12, p99=40),
        _result("A", rps=200, p50=20, p95=40, p99=80),
        _result("B", rps=450, p50=5, p95=14, p99=30),
    ]

    report = loadtest.compare_report(runs)

    assert report["runs"] == runs
    assert report["medians"] == {
        "A": {"rps": 200, "p50": 20, "p95": 40, "p99": 80, "errors": 2},
        "B": {"rps": 450, "p50": 5, "p95": 12, "p99": 30, "errors": 1},
    }
    assert report["ratios"] == {"rps": 2.25, "p50": 0.25, "p95": 0.3, "p99": 0.375}
    assert loadtest.ratio_summary(report["ratios"]) == "B/A: req/s 2.25x, p50 0.25x, p95 0.30x, p99 0.38x"


def test_compare_report_of_an_even_number_of_runs_takes_the_middle_two_and_no_ratio_over_zero():
    runs = [_result("A", rps=0, p50=10, p95=20, p99=30), _result("A", rps=0, p50=20, p95=30, p99=40)]
    runs += [_result("B", rps=100, p50=15, p95=25, p99=35), _result("B", rps=300, p50=15, p95=25, p99=35)]

    report = loadtest.compare_report(runs)

    assert report["medians"]["A"] == {"rps": 0, "p50": 15, "p95": 25, "p99": 35, "errors": 0}
    assert report["ratios"] == {"rps": None, "p50": 1.0, "p95": 1.0, "p99": 1.0}
    assert loadtest.ratio_summary(report["ratios"]).startswith("B/A: req/s n/a, p50 1.00x")


def test_wrk_sends_the_headers_on_every_path_and_counts_only_answers_of_400_and_above_as_errors(recording_server):
    load = loadtest.Load(
        paths=("/fresh", "/missing"),
        headers=(("If-None-Match", 'W/"abc"'), ("X-Load", "test")),
        duration=1,
        connections=2,
        wrk_threads=1,
    )

    result = loadtest.run_wrk(recording_server.url, load)

    seen = recording_server.requests
    assert {path for path, _ in seen} == {"/fresh", "/missing"}
    assert all(h["If-None-Match"] == 'W/"abc"' and h["X-Load"] == "test" for _, h in seen)
    assert all(h["Accept-Encoding"] == "gzip" for _, h in seen)
    # /fresh answers 304 to the If-None-Match, /missing 404: only the 404s are errors (the server may have
    # seen a few more requests than wrk counts, those still in flight when wrk stopped).
    missing = sum(path == "/missing" for path, _ in seen)
    assert 0 < result["errors"]["status"] <= missing < result["requests"]


class RecordingServer(http.server.ThreadingHTTPServer):
    """Answers 304 when asked with If-None-Match and 404 on /missing; remembers every request's headers."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.requests: list[tuple[str, dict[str, str]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # wrk drops its connections mid-request when its time is up


class _RecordingHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects
    server: RecordingServer

    def do_GET(self) -> None:
        self.server.requests.append((self.path, dict(self.headers.items())))
        status = 404 if self.path == "/missing" else 304 if "If-None-Match" in self.headers else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # wrk's thousands of requests would flood the test output


@pytest.fixture
def recording_server() -> Iterator[RecordingServer]:
    server = RecordingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _result(label: str, *, rps: float, p50: float, p95: float, p99: float, errors: int = 0) -> dict[str, Any]:
    """A run as the command records it: wrk's summary (see loadtest.lua) under its configuration's label."""
    return {
        "config": label,
        "rps": rps,
        "latency_ms": {"p50": p50, "p95": p95, "p99": p99, "max": p99},
        "error_count": errors,
    }
