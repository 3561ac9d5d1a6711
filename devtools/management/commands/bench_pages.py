"""`manage.py bench_pages`: server time of every page on the configured database, cold and warm cache.

Before a page is timed it is checked: it answers 200, and every analytics answer it is drawn from is
not empty and equal to what its selector computes for the same query. Timing a page of "no data yet"
or "will appear in 5 days" would measure nothing real, so that fails instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import F
from django.test import Client, override_settings
from rest_framework.renderers import JSONRenderer

from analytics import selectors
from analytics.api.base import AnalyticsApi
from devtools.benchdb import computed_answer, empty_parts, percentile
from snapshots.models import Anime

Drawn = list[tuple[type[AnalyticsApi], Any, dict[str, Any], Any]]

BUDGET_MS = 50.0


class Command(BaseCommand):
    help = (
        "Request each page N times through django.test.Client on the configured database and print the p50/p95 "
        "server time, cold (analytics cache off: every answer computed from the database) and warm (cache filled)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-n", "--requests", type=int, default=20, help="Requests per page and mode (default 20).")
        parser.add_argument("--budget", type=float, default=BUDGET_MS, help="Warm p95 budget in ms (default 50).")
        parser.add_argument("--fail", action="store_true", help="Exit with an error when a warm p95 is over budget.")

    def handle(self, *args: Any, requests: int, budget: float, fail: bool, **options: Any) -> None:
        if requests < 1:
            raise CommandError("--requests must be at least 1.")
        pages = self._pages()
        self.stdout.write(f"{'page':<34}{'cold p50':>10}{'cold p95':>10}{'warm p50':>10}{'warm p95':>10}  (ms)")
        # The test client's host is "testserver"; plain HTTP is fine here, production redirects to HTTPS.
        # Request log lines would drown the table; they are back on when the command ends.
        logging.disable(logging.INFO)
        try:
            over = self._run(pages, requests, budget)
        finally:
            logging.disable(logging.NOTSET)
        summary = f"{len(pages)} pages x {requests} requests; warm p95 budget {budget:.0f} ms: "
        summary += f"{len(over)} over ({', '.join(over)})" if over else "all within"
        self.stdout.write(summary)
        if fail and over:
            raise CommandError(f"Over the {budget:.0f} ms budget: {', '.join(over)}")

    def _run(self, pages: list[str], requests: int, budget: float) -> list[str]:
        over: list[str] = []
        with override_settings(ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"], SECURE_SSL_REDIRECT=False):
            client = Client()
            for url in pages:
                self._check(client, url)
                # Cold without flushing a shared cache: the analytics cache is bypassed instead.
                with override_settings(ANALYTICS_CACHE_ENABLED=False):
                    cold = [self._timed(client, url) for _ in range(requests)]
                self._timed(client, url)  # fill the cache
                warm = [self._timed(client, url) for _ in range(requests)]
                p95 = percentile(warm, 0.95)
                over += [url] if p95 > budget else []
                self.stdout.write(
                    f"{url:<34}{percentile(cold, 0.5):>10.1f}{percentile(cold, 0.95):>10.1f}"
                    f"{percentile(warm, 0.5):>10.1f}{p95:>10.1f}{'  OVER BUDGET' if p95 > budget else ''}"
                )
        return over

    def _check(self, client: Client, url: str) -> None:
        """The page answers 200, drawn from answers that are not empty and are their selectors' own."""
        with override_settings(ANALYTICS_CACHE_ENABLED=False), _answers_drawn() as drawn:
            response = client.get(url)
        if response.status_code != 200:
            raise CommandError(f"GET {url} answered {response.status_code}, not 200.")
        for endpoint, query, path, answer in drawn:
            data = json.loads(JSONRenderer().render(answer))
            if empty := empty_parts(data):
                raise CommandError(
                    f"GET {url} draws an empty answer from {endpoint.endpoint} ({', '.join(empty)}): there is "
                    "nothing real to time; seed a longer history (`manage.py seed_demo --days 90`)."
                )
            if data != computed_answer(endpoint, query, path):
                raise CommandError(f"GET {url} draws an answer from {endpoint.endpoint} its selector does not give.")

    def _pages(self) -> list[str]:
        top = Anime.objects.order_by(F("rank").asc(nulls_last=True), "mal_id").first()
        if top is None:
            raise CommandError("No data to measure: run `manage.py seed_demo --days 90` (or `make demo`) first.")
        # A word that finds several titles: one match would redirect to its page instead.
        words = (word for anime in Anime.objects.order_by("-members")[:50] for word in anime.title.split())
        word = next((w for w in words if selectors.anime_search(q=w)[:2].count() == 2), top.title)
        return [
            "/",
            "/trending/",
            "/trending/?window=30",
            f"/anime/{top.mal_id}/",
            "/status/",
            "/about/",
            f"/search/?q={word}",
            "/moving-now/",
            "/data-version/",
        ]

    def _timed(self, client: Client, url: str) -> float:
        start = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            raise CommandError(f"GET {url} answered {response.status_code}")
        return elapsed


@contextlib.contextmanager
def _answers_drawn() -> Iterator[Drawn]:
    """Every analytics answer computed while the block runs: (endpoint, query, path arguments, answer)."""
    drawn: Drawn = []
    own = AnalyticsApi.__dict__["answer"]

    def answer(cls: type[AnalyticsApi], query: Any, **path: Any) -> Any:
        result = own.__func__(cls, query, **path)
        drawn.append((cls, query, path, result))
        return result

    # Pages call `<Endpoint>Api.answer()` (analytics.views): the base class's, as no endpoint has its own.
    AnalyticsApi.answer = classmethod(answer)  # type: ignore[assignment,method-assign]
    try:
        yield drawn
    finally:
        AnalyticsApi.answer = own  # type: ignore[method-assign]
