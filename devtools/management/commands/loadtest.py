"""`manage.py loadtest`: gunicorn with production settings driven by wrk; `--soak` also watches memory."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from devtools import loadtest

TARGET_RPS = 500
TARGET_P95_MS = 50.0
TARGET_GROWTH_PCT = 10.0
SAMPLE_EVERY_S = 10.0


class Command(BaseCommand):
    help = (
        "Start gunicorn on a free loopback port with production settings (DEBUG=0, the configured DATABASE_URL and "
        "REDIS_URL, plain HTTP), warm the cache, then drive the default request of every analytics API endpoint, the "
        "dashboard, /trending/ and a title page with wrk. Prints throughput, p50/p95/p99 latency and errors; "
        "--soak N runs N seconds and samples the RSS of every gunicorn process every 10 s. Targets: 500 req/s, "
        "p95 under 50 ms, no error, memory growth under 10%."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--duration", type=int, default=30, help="Seconds of load (default 30).")
        parser.add_argument("--connections", type=int, default=32, help="Open connections (default 32).")
        parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2).")
        parser.add_argument("--soak", type=int, metavar="SECONDS", help="Soak: run this long and watch memory.")
        parser.add_argument(
            "--workers", type=int, default=loadtest.DEFAULT_WORKERS, help="gunicorn worker processes (default 2)."
        )
        parser.add_argument(
            "--worker-threads",
            type=int,
            default=loadtest.DEFAULT_WORKER_THREADS,
            help="gunicorn threads per worker (default 2).",
        )
        parser.add_argument("--json", action="store_true", help="Print the result as one JSON object too.")
        parser.add_argument("--fail", action="store_true", help="Exit with an error when a target is missed.")

    def handle(self, *args: Any, **options: Any) -> None:
        duration = options["soak"] or options["duration"]
        if duration < 1 or options["connections"] < 1 or options["threads"] < 1:
            raise CommandError("--duration/--soak, --connections and --threads must be at least 1.")
        try:
            loadtest.require_wrk()
            loadtest.require_migrated()
            paths = loadtest.target_paths()
            result, soak = self._run(paths, {**options, "duration": duration})
        except loadtest.LoadtestError as exc:
            raise CommandError(str(exc)) from exc
        missed = self._report(result, soak, options)
        if options["fail"] and missed:
            raise CommandError(f"Targets missed: {', '.join(missed)}")

    def _run(self, paths: list[str], options: dict[str, Any]) -> tuple[dict[str, Any], loadtest.SoakReport | None]:
        with loadtest.gunicorn(workers=options["workers"], threads=options["worker_threads"]) as server:
            self.stdout.write(
                f"gunicorn {server.url} (workers={options['workers']}, threads={options['worker_threads']}); "
                f"warming {len(paths)} URLs"
            )
            loadtest.warm(server, paths)
            soak = loadtest.SoakReport() if options["soak"] else None
            hook = None
            if soak is not None:
                hook = loadtest.soak_sampler(server, soak, every=SAMPLE_EVERY_S, on_sample=self._print_sample)
            self.stdout.write(
                f"wrk: {options['duration']} s, {options['connections']} connections, {options['threads']} threads, "
                f"{len(paths)} URLs in rotation"
            )
            result = loadtest.run_wrk(
                server,
                paths,
                duration=options["duration"],
                connections=options["connections"],
                threads=options["threads"],
                while_running=hook,
            )
        return result, soak

    def _print_sample(self, sample: loadtest.MemorySample) -> None:
        self.stdout.write(
            f"  t={sample.elapsed_s:5.0f} s  RSS {sample.total_mib:7.1f} MiB in {len(sample.rss_mib)} processes"
        )

    def _report(self, result: dict[str, Any], soak: loadtest.SoakReport | None, options: dict[str, Any]) -> list[str]:
        latency, errors = result["latency_ms"], result["errors"]
        missed = []
        missed += [f"{result['rps']:.0f} req/s < {TARGET_RPS}"] if result["rps"] < TARGET_RPS else []
        missed += [f"p95 {latency['p95']:.1f} ms >= {TARGET_P95_MS:.0f}"] if latency["p95"] >= TARGET_P95_MS else []
        missed += [f"{result['error_count']} errors"] if result["error_count"] else []
        self.stdout.write(
            f"{result['requests']} requests in {result['duration_s']:.1f} s: {result['rps']:.1f} req/s; "
            f"latency p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms, p99 {latency['p99']:.1f} ms, "
            f"max {latency['max']:.1f} ms; errors {result['error_count']} "
            f"(status {errors['status']}, connect {errors['connect']}, read {errors['read']}, "
            f"write {errors['write']}, timeout {errors['timeout']})"
        )
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
