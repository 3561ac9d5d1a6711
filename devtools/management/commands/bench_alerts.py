"""`manage.py bench_alerts`: alert evaluation over many rules, and webhook delivery, in a throw-away database.

A child process builds 31 days of all six feeds at their default sizes, people with lists, and N alert rules
of every kind and scope (mostly one title or a list, some the whole feed). It evaluates the last day of every
feed twice: first as new rules (their state before comes from the history), then, after the day before has
been evaluated, as the daily run sees them. It counts each feed's queries at N and at N/10 rules (at most
QUERIES_PER_FEED either way) and checks the events against the preview of a sample of rules. Then it sends
M webhook events to a receiver on loopback that verifies every signature: throughput and p95 per delivery.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.server
import json
import random
import statistics
import threading
import time
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.test.utils import CaptureQueriesContext
from standardwebhooks import Webhook

from alerts import delivery, services
from alerts.models import AlertEvent, AlertRule, AlertState, Delivery, WebhookEndpoint
from devtools.benchdb import bench_database, child_env, peak_rss_mb, percentile, run_child
from snapshots.feeds import FEEDS, rank_by
from snapshots.models import Anime, Snapshot, SnapshotDay
from tracking.models import ListEntry, ListStatus

END = dt.date(2026, 1, 31)
DAYS = 31
TITLES = 1500
# The season feed has every page Jikan has: about this many titles a season.
SEASON_SIZE = 120
PEOPLE_PER_RULES = 10
LIST_SIZE = 40
EVALUATE_TARGET_S = 5.0
# What alerts.services.rules_evaluate may cost a feed and day whatever the number of rules (with fewer than
# 2,000 events, one INSERT each for states, events and deliveries).
QUERIES_PER_FEED = 20
KINDS = AlertRule.Kind.values


class Command(BaseCommand):
    help = (
        "Benchmark alerts in a throw-away database: evaluating N rules over a day of all six feeds (seconds, "
        "queries at N and N/10 rules) and delivering M signed webhooks to a loopback receiver (per second, p95)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rules", type=int, default=10_000, help="Alert rules (default 10000).")
        parser.add_argument("--webhooks", type=int, default=1000, help="Webhook events delivered (default 1000).")
        parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)

    def handle(self, *args: Any, rules: int, webhooks: int, child: bool, **_: Any) -> None:
        if child:
            self.stdout.write(json.dumps(_measure(rules, webhooks)))
            return
        with bench_database("bench_alerts") as url:
            env = child_env(url, ALERTS_ALLOW_PRIVATE_WEBHOOKS="1", EMAIL_URL="dummy://")
            command = ["bench_alerts", "--child", "--rules", str(rules), "--webhooks", str(webhooks)]
            result = json.loads(run_child(command, env).strip().splitlines()[-1])
        self._report(result)

    def _report(self, result: dict[str, Any]) -> None:
        evaluation = result["evaluation"]
        self.stdout.write(
            f"evaluation of {evaluation['rules']:,} rules over a day of all six feeds "
            f"({evaluation['snapshot_rows']:,} snapshot rows a day, {evaluation['list_entries']:,} list entries):"
        )
        for name in ("first", "daily"):
            run = evaluation[name]
            self.stdout.write(
                f"  {name:<6} {run['seconds']:.2f} s, at most {run['queries']} queries a feed "
                f"({run['queries_at_tenth']} with a tenth of the rules), {run['events']:,} events, "
                f"{run['deliveries']:,} deliveries (target {EVALUATE_TARGET_S:g} s)"
            )
        sent = result["webhooks"]
        self.stdout.write(
            f"delivery of {sent['count']:,} signed webhooks to a loopback receiver: {sent['per_second']:,.0f}/s, "
            f"p50 {sent['p50_ms']:.1f} ms, p95 {sent['p95_ms']:.1f} ms; peak RSS {result['peak_rss_mb']:.0f} MB"
        )
        missed = [
            name
            for name, failed in (
                ("first evaluation time", evaluation["first"]["seconds"] > EVALUATE_TARGET_S),
                ("daily evaluation time", evaluation["daily"]["seconds"] > EVALUATE_TARGET_S),
                ("queries a feed", any(evaluation[n]["queries"] > QUERIES_PER_FEED for n in ("first", "daily"))),
            )
            if failed
        ]
        self.stdout.write("targets missed: " + ", ".join(missed) if missed else "every target met")


def _measure(rules: int, webhooks: int) -> dict[str, Any]:
    rng = random.Random(16)
    rows = _history(rng)
    people = _people(rng, max(1, rules // PEOPLE_PER_RULES))
    _rules(rng, people, rules)
    evaluation: dict[str, Any] = {
        "rules": rules,
        "snapshot_rows": rows,
        "list_entries": ListEntry.objects.count(),
    }
    day_before = END - dt.timedelta(days=1)
    # A tenth of the rules, then all of them: the same queries. Each run starts from never-evaluated rules.
    evaluation["first"] = _evaluate_round(END, rules)
    _reset()
    _evaluate_all(day_before)
    evaluation["daily"] = _evaluate_round(END, rules)
    _check_against_preview(rng)
    return {"evaluation": evaluation, "webhooks": _deliver(people, webhooks), "peak_rss_mb": peak_rss_mb()}


def _history(rng: random.Random) -> int:
    """31 days of every feed; titles drift a few places a day and a few jump, so every rule kind has moves."""
    Anime.objects.bulk_create(
        Anime(mal_id=n, title=f"Title {n:05d}", first_seen=END - dt.timedelta(days=DAYS), last_seen=END)
        for n in range(1, TITLES + 1)
    )
    snapshots, days, per_day = [], [], 0
    for name, feed in FEEDS.items():
        size = feed.default_pages * 25 if feed.default_pages else SEASON_SIZE
        per_day += size
        order = rng.sample(range(1, TITLES + 1), size + 20)
        scores = {anime_id: Decimal(rng.randint(700, 930)) / 100 for anime_id in order}
        for offset in range(DAYS):
            taken_on = END - dt.timedelta(days=DAYS - 1 - offset)
            # Neighbours swap, and now and then a title jumps or a new one comes in from outside.
            for _ in range(size // 10):
                i = rng.randrange(len(order) - 1)
                order[i], order[i + 1] = order[i + 1], order[i]
            i, j = rng.randrange(len(order)), rng.randrange(len(order))
            order.insert(j, order.pop(i))
            for anime_id in rng.sample(order, 5):
                scores[anime_id] += Decimal(rng.choice((-5, -1, 1, 5))) / 100
            for position, anime_id in enumerate(order[:size], start=1):
                fields = {"position": position, "rank": position, "popularity": position}
                snapshots.append(
                    Snapshot(anime_id=anime_id, feed=name, taken_on=taken_on, score=scores[anime_id], **fields)
                )
            days.append(SnapshotDay(feed=name, taken_on=taken_on, rows=size))
        assert rank_by(name) in ("rank", "popularity", "position")
    Snapshot.objects.bulk_create(snapshots, batch_size=5000)
    SnapshotDay.objects.bulk_create(days)
    return per_day


def _people(rng: random.Random, count: int) -> list[Any]:
    User = get_user_model()
    User.objects.bulk_create(User(username=f"fan{n}", email=f"fan{n}@example.com") for n in range(count))
    people = list(User.objects.order_by("id"))
    statuses = ListStatus.values
    ListEntry.objects.bulk_create(
        ListEntry(user=person, anime_id=anime_id, status=rng.choice(statuses))
        for person in people
        for anime_id in rng.sample(range(1, TITLES + 1), LIST_SIZE)
    )
    return people


def _rules(rng: random.Random, people: list[Any], count: int) -> None:
    thresholds: dict[str, tuple[int | Decimal, ...]] = {
        "entered_top": (10, 25, 50, 100),
        "left_top": (10, 25, 50, 100),
        "climbed": (2, 3, 5, 10),
        "fell": (2, 3, 5, 10),
        "score_moved": (Decimal("0.05"), Decimal("0.1"), Decimal("0.2")),
        "new_best": (1,),
    }
    rules = []
    for n in range(count):
        kind = KINDS[n % len(KINDS)]
        scope = rng.choices(("title", "list", "feed"), weights=(6, 3, 1))[0]
        rules.append(
            AlertRule(
                user=people[n % len(people)],
                kind=kind,
                feed=rng.choice(list(FEEDS)),
                threshold=rng.choice(thresholds[kind]),
                window=rng.choice((7, 30)),
                scope=scope,
                anime_id=rng.randint(1, TITLES) if scope == "title" else None,
                statuses=rng.sample(ListStatus.values, 2) if scope == "list" and n % 2 else [],
                email=rng.choice(AlertRule.Email.values),
            )
        )
    AlertRule.objects.bulk_create(rules, batch_size=5000)


def _evaluate_all(day: dt.date) -> tuple[int, int, int]:
    """Evaluate every feed's rules on `day`: the events, the deliveries and the most queries a feed took."""
    events = deliveries = most = 0
    for feed in FEEDS:
        with CaptureQueriesContext(connection) as queries:
            result = services.rules_evaluate(feed=feed, day=day)
        events += result.events
        deliveries += result.deliveries
        most = max(most, len(queries))
    return events, deliveries, most


def _reset() -> None:
    AlertEvent.objects.all().delete()
    AlertState.objects.all().delete()
    AlertRule.objects.update(evaluated_on=None)


def _evaluate_round(day: dt.date, rules: int) -> dict[str, Any]:
    """Evaluate `day` with a tenth of the rules active, then with all of them, counting queries each time."""
    active = set(AlertRule.objects.order_by("id").values_list("id", flat=True)[: rules // 10])
    AlertRule.objects.exclude(id__in=active).update(active=False)
    previous = AlertRule.objects.values_list("evaluated_on", flat=True).first()
    _, _, tenth = _evaluate_all(day)
    # Back to where the round started, with every rule on.
    AlertEvent.objects.filter(day=day).delete()
    AlertRule.objects.update(active=True, evaluated_on=previous)
    AlertState.objects.filter(since=day).delete()
    begun = time.perf_counter()
    events, deliveries, whole = _evaluate_all(day)
    seconds = time.perf_counter() - begun
    if not events or not deliveries:
        raise SystemExit(f"evaluating {day} found no events: nothing real was timed")
    return {
        "seconds": seconds,
        "queries": whole,
        "queries_at_tenth": tenth,
        "events": events,
        "deliveries": deliveries,
    }


def _check_against_preview(rng: random.Random) -> None:
    """Each event of a sample of rules is what the rule's preview (a day-by-day replay) finds on that day."""
    sample = rng.sample(list(AlertRule.objects.filter(events__isnull=False).distinct()), 20)
    for rule in sample:
        sent = set(AlertEvent.objects.filter(rule=rule, day=END).values_list("anime_id", flat=True))
        previewed = {event.mal_id for event in services.rule_preview(rule=rule) if event.day == END}
        if sent != previewed:
            raise SystemExit(f"rule {rule.pk} sent {sorted(sent)} on {END} but its preview says {sorted(previewed)}")


def _deliver(people: list[Any], count: int) -> dict[str, Any]:
    receiver = _Receiver()
    try:
        endpoint = WebhookEndpoint.objects.create(user=people[0], name="bench", url=receiver.url)
        receiver.secret = endpoint.secret
        Delivery.objects.filter(status=Delivery.Status.PENDING).update(status=Delivery.Status.SENT)
        events = list(AlertEvent.objects.order_by("id")[:count])
        if len(events) < count:
            raise SystemExit(f"only {len(events)} events to deliver, {count} asked")
        Delivery.objects.bulk_create(
            Delivery(user=people[0], event=event, channel=Delivery.Channel.WEBHOOK, endpoint=endpoint)
            for event in events
        )
        samples = []
        begun = time.perf_counter()
        with delivery.webhook_client() as client:
            while batch := delivery._claim(delivery.BATCH):
                for row in batch:
                    started = time.perf_counter()
                    outcome = delivery.delivery_attempt(row, client=client)
                    samples.append((time.perf_counter() - started) * 1000)
                    if outcome != "sent":
                        raise SystemExit(f"delivery {row.pk} was not sent: {outcome}")
        seconds = time.perf_counter() - begun
    finally:
        receiver.stop()
    if receiver.verified != count or len(samples) != count:
        raise SystemExit(f"the receiver verified {receiver.verified} signed events of {count}")
    return {
        "count": count,
        "per_second": count / seconds,
        "p50_ms": statistics.median(samples),
        "p95_ms": percentile(samples, 0.95),
    }


class _Receiver:
    """A webhook receiver on loopback that verifies each request's Standard Webhooks signature."""

    def __init__(self) -> None:
        self.secret = ""
        self.verified = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                Webhook(owner.secret).verify(body, dict(self.headers.items()))
                if json.loads(body)["data"]["message"]:
                    owner.verified += 1
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
