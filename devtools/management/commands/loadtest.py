"""`manage.py loadtest`: gunicorn with production settings driven by wrk; `--soak` also watches memory, and
`--compare` runs two server configurations alternately and prints the ratios of their figures."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from devtools import loadtest

TARGET_RPS = 500
TARGET_P95_MS = 50.0
TARGET_GROWTH_PCT = 10.0
SAMPLE_EVERY_S = 10.0
DEFAULT_ROUNDS = 2


class Command(BaseCommand):
    help = (
        "Start gunicorn on a free loopback port with production settings (DEBUG=0, the configured DATABASE_URL and "
        "REDIS_URL, plain HTTP), warm the cache, then drive one path (--url) or the rotating mix (the default request "
        "of every analytics API endpoint, the dashboard, /trending/ and a title page) with wrk. Prints requests/s, "
        "p50/p95/p99 latency and errors; --soak N runs N seconds and samples the RSS of every gunicorn process every "
        "10 s. --compare A B runs two server configurations alternately (A, B, A, B) and prints each one's medians "
        "and the ratios B/A. Targets: 500 req/s, p95 under 50 ms, no error, memory growth under 10%."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--duration", type=int, default=30, help="Seconds of load per run (default 30).")
        parser.add_argument("--connections", type=int, default=32, help="Open connections (default 32).")
        parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2).")
        parser.add_argument(
            "--processes",
            type=int,
            default=loadtest.DEFAULT_PROCESSES,
            help=f"gunicorn worker processes (default {loadtest.DEFAULT_PROCESSES}).",
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=loadtest.DEFAULT_THREADS,
            help=f"gunicorn threads per process (default {loadtest.DEFAULT_THREADS}; above 1, the gthread worker).",
        )
        parser.add_argument("--url", metavar="PATH", help="Load this one path (e.g. /api/v1/overview), not the mix.")
        parser.add_argument(
            "--header",
            action="append",
            default=[],
            metavar="'NAME: VALUE'",
            help="A header sent with every request; repeatable (e.g. 'If-None-Match: W/\"...\"').",
        )
        parser.add_argument(
            "--compare",
            nargs=2,
            metavar=("A", "B"),
            help="Two server configurations, each comma-separated key=value of processes, threads and root (another "
            "checkout of this project to serve); a key left out takes --processes, --threads or this checkout.",
        )
        parser.add_argument(
            "--rounds", type=int, help=f"With --compare: runs of each configuration (default {DEFAULT_ROUNDS})."
        )
        parser.add_argument("--soak", type=int, metavar="SECONDS", help="Soak: run this long and watch memory.")
        parser.add_argument("--json", action="store_true", help="Print the result as one JSON object too.")
        parser.add_argument("--fail", action="store_true", help="Exit with an error when a target is missed.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self._check(options)
            base = loadtest.ServerConfig(processes=options["processes"], threads=options["threads"])
            compare = [loadtest.parse_config(spec, base=base) for spec in options["compare"] or []]
            url = None if options["url"] is None else loadtest.check_url(options["url"])
            headers = tuple(loadtest.parse_header(header) for header in options["header"])
            loadtest.require_wrk()
            loadtest.require_migrated()
            load = loadtest.Load(
                paths=(url,) if url else tuple(loadtest.target_paths()),
                headers=headers,
                duration=options["soak"] or options["duration"],
                connections=options["connections"],
                wrk_threads=options["wrk_threads"],
            )
            self._print_load(load)
            if compare:
                a, b = compare
                report = self._compare(a, b, load, rounds=options["rounds"] or DEFAULT_ROUNDS)
                if options["json"]:
                    self.stdout.write(json.dumps(report))
                return
            result, soak = self._run(base, load, soak=options["soak"] is not None)
        except loadtest.LoadtestError as exc:
            raise CommandError(str(exc)) from exc
        missed = self._report(result, soak, options)
        if options["fail"] and missed:
            raise CommandError(f"Targets missed: {', '.join(missed)}")

    def _check(self, options: dict[str, Any]) -> None:
        """The numbers and the combinations of flags, before anything starts."""
        counts = {
            "--duration": options["duration"],
            "--soak": options["soak"],
            "--connections": options["connections"],
            "--wrk-threads": options["wrk_threads"],
            "--processes": options["processes"],
            "--threads": options["threads"],
            "--rounds": options["rounds"],
        }
        too_small = [name for name, count in counts.items() if count is not None and count < 1]
        if too_small:
            raise loadtest.LoadtestError(f"{', '.join(too_small)} must be at least 1.")
        if options["connections"] < options["wrk_threads"]:
            raise loadtest.LoadtestError("--connections must be at least --wrk-threads (each wrk thread needs one).")
        if options["compare"] and (options["soak"] is not None or options["fail"]):
            raise loadtest.LoadtestError("--soak and --fail judge one configuration's run: leave out --compare.")
        if not options["compare"] and options["rounds"] is not None:
            raise loadtest.LoadtestError("--rounds counts the runs of each --compare configuration: add --compare.")

    def _print_load(self, load: loadtest.Load) -> None:
        what = f"{load.paths[0]}" if len(load.paths) == 1 else f"{len(load.paths)} URLs in rotation"
        headers = "".join(f"; {name}: {value}" for name, value in load.headers)
        self.stdout.write(
            f"wrk: {load.duration} s, {load.connections} connections, {load.wrk_threads} threads, {what}{headers}"
        )

    def _run(
        self, config: loadtest.ServerConfig, load: loadtest.Load, *, soak: bool
    ) -> tuple[dict[str, Any], loadtest.SoakReport | None]:
        with self._static(config.root) as static_root, loadtest.gunicorn(config, static_root=static_root) as server:
            self.stdout.write(f"gunicorn {server.url} ({config.describe()}); warming")
            loadtest.warm(server, load)
            report = loadtest.SoakReport() if soak else None
            hook = None
            if report is not None:
                hook = loadtest.soak_sampler(server, report, every=SAMPLE_EVERY_S, on_sample=self._print_sample)
            return loadtest.run_wrk(server.url, load, while_running=hook), report

    def _compare(
        self, a: loadtest.ServerConfig, b: loadtest.ServerConfig, load: loadtest.Load, *, rounds: int
    ) -> dict[str, Any]:
        """A, B, A, B, ...: a fresh gunicorn per run, warmed, then wrk; the report of `loadtest.compare_report`."""
        runs = []
        with contextlib.ExitStack() as stack:
            static = {root: stack.enter_context(self._static(root)) for root in dict.fromkeys((a.root, b.root))}
            for number, label, config in loadtest.compare_plan(a, b, rounds=rounds):
                with loadtest.gunicorn(config, static_root=static[config.root]) as server:
                    loadtest.warm(server, load)
                    result = loadtest.run_wrk(server.url, load)
                self.stdout.write(f"{label}, run {number} ({config.describe()}): {loadtest.run_summary(result)}")
                runs.append({"config": label, "round": number, **result})
        report = loadtest.compare_report(runs)
        for label, config in (("A", a), ("B", b)):
            median = loadtest.median_summary(report["medians"][label])
            self.stdout.write(f"{label} ({config.describe()}), median of {rounds}: {median}")
        self.stdout.write(loadtest.ratio_summary(report["ratios"]))
        return {"configs": {"A": a.as_json(), "B": b.as_json()}, **report}

    @contextlib.contextmanager
    def _static(self, root: Path) -> Iterator[Path]:
        self.stdout.write(f"collectstatic in {root}")
        with loadtest.collected_static(root) as static_root:
            yield static_root

    def _print_sample(self, sample: loadtest.MemorySample) -> None:
        self.stdout.write(
            f"  t={sample.elapsed_s:5.0f} s  RSS {sample.total_mib:7.1f} MiB in {len(sample.rss_mib)} processes"
        )

    def _report(self, result: dict[str, Any], soak: loadtest.SoakReport | None, options: dict[str, Any]) -> list[str]:
        latency = result["latency_ms"]
        missed = []
        missed += [f"{result['rps']:.0f} req/s < {TARGET_RPS}"] if result["rps"] < TARGET_RPS else []
        missed += [f"p95 {latency['p95']:.1f} ms >= {TARGET_P95_MS:.0f}"] if latency["p95"] >= TARGET_P95_MS else []
        missed += [f"{result['error_count']} errors"] if result["error_count"] else []
        self.stdout.write(loadtest.run_summary(result))
        if soak is not None:
            growth = soak.growth_pct
            missed += (
                [f"memory growth {growth:.1f}% >= {TARGET_GROWTH_PCT:.0f}%"] if growth >= TARGET_GROWTH_PCT else []
            )
            self.stdout.write(
                f"memory (RSS of all gunicorn processes): start {soak.start_mib:.1f} MiB, end {soak.end_mib:.1f} MiB, "
                f"growth {growth:+.1f}% over {len(soak.samples)} samples"
            )
            result["memory_mib"] = {"start": soak.start_mib, "end": soak.end_mib, "growth_pct": round(growth, 2)}
        self.stdout.write(f"targets: {'all met' if not missed else 'missed: ' + ', '.join(missed)}")
        if options["json"]:
            self.stdout.write(json.dumps(result))
        return missed
