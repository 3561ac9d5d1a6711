"""Every write of the ingestion side: the ETL of one feed for one day, backfills, pruning."""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import reduce
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from animedash.logging import log_context
from snapshots import jikan, metrics
from snapshots.feeds import MAX_PAGES, Feed, get_feed
from snapshots.locks import feed_lock
from snapshots.models import ANIME_FACT_FIELDS, Anime, EtlRun, Genre, RawPage, Rejection, Snapshot, SnapshotDay, Studio
from snapshots.signals import snapshot_committed
from snapshots.validation import SEASONS, AnimeRecord, ItemRejection, item_validate

logger = logging.getLogger(__name__)

# Called after each page is fetched or reused: (pages done, page budget or None when open-ended).
ProgressCallback = Callable[[int, int | None], None]

# The run fails (and the day keeps its previous data) when fewer than this share of items survive.
QUALITY_GATE = 0.5
# The error of a run whose worker died (SIGKILL, OOM, lost node) before it could record its end.
ABANDONED = "abandoned: the worker stopped before finishing"
# Titles written per batch of queries during a load, and raw pages per insert (one commit each).
LOAD_BATCH = 1000
RAW_BATCH = 10

SNAPSHOT_FIELDS = ["rank", "popularity", "score", "scored_by", "members", "favorites"]


class QualityGateFailed(Exception):
    pass


@dataclass
class LoadCounts:
    received: int = 0
    duplicates: int = 0
    loaded: int = 0
    rejections: list[Rejection] = field(default_factory=list)


def feed_snapshot(
    *,
    feed: str,
    taken_on: date,
    trigger: str = EtlRun.Trigger.CLI,
    pages: int | None = None,
    fresh: bool = False,
    on_page: ProgressCallback | None = None,
) -> EtlRun:
    """Snapshot one feed for one day: extract from Jikan, validate, load. Safe to rerun.

    A rerun of the same day reuses the raw pages already stored (no Jikan request) unless `fresh`,
    and replaces the day's rows. A failed run leaves the previous state of the day untouched.
    """
    spec = get_feed(feed)
    return _run(spec, taken_on=taken_on, trigger=trigger, pages=pages or spec.pages, fresh=fresh, on_page=on_page)


def seasons_backfill(
    *, from_year: int, to_year: int, trigger: str = EtlRun.Trigger.CLI, on_page: ProgressCallback | None = None
) -> list[EtlRun]:
    """Load every title of every season from `from_year` to `to_year` into the catalogue.

    Season analytics then have years of depth on day one. These runs add titles, not daily
    snapshots: a season list is not a ranking.
    """
    runs = []
    today = timezone.now().date()
    for year in range(from_year, to_year + 1):
        for season in SEASONS:
            spec = Feed(f"backfill-{year}-{season}", f"/seasons/{year}/{season}", f"{season} {year}", None)
            runs.append(
                _run(spec, taken_on=today, trigger=trigger, pages=None, fresh=False, on_page=on_page, snapshot=False)
            )
    return runs


def _run(
    spec: Feed,
    *,
    taken_on: date,
    trigger: str,
    pages: int | None,
    fresh: bool,
    on_page: ProgressCallback | None,
    snapshot: bool = True,
) -> EtlRun:
    run = EtlRun.objects.create(feed=spec.name, taken_on=taken_on, trigger=trigger)
    with log_context(run_id=run.pk, feed=spec.name), feed_lock(spec.name) as held:
        if not held:
            return _finish(run, EtlRun.Status.SKIPPED, error="Another run of this feed is in progress.")
        runs_abandon(feed=spec.name)
        logger.info("run started: %s for %s", spec.name, taken_on)
        stats = jikan.RequestStats()
        counts = LoadCounts()
        try:
            page_ids = _extract(run, spec, budget=pages, fresh=fresh, stats=stats, on_page=on_page)
            _load(run, page_ids, counts, snapshot=snapshot)
        except (jikan.JikanError, QualityGateFailed) as exc:
            return _finish(run, EtlRun.Status.FAILED, stats=stats, counts=counts, error=str(exc))
        except DatabaseError as exc:
            # The connection may be dead (database restarted, backend terminated): record the
            # failure on a fresh one. The load's transaction was rolled back, so no partial day.
            connection.close()
            return _finish(run, EtlRun.Status.FAILED, stats=stats, counts=counts, error=f"Database error: {exc}")
        except BaseException as exc:
            _finish(run, EtlRun.Status.FAILED, stats=stats, counts=counts, error=f"{exc.__class__.__name__}: {exc}")
            raise
        status = EtlRun.Status.PARTIAL if counts.rejections else EtlRun.Status.SUCCESS
        run = _finish(run, status, stats=stats, counts=counts)
    if snapshot:
        snapshot_committed.send(sender=EtlRun, run=run, feed=run.feed, taken_on=run.taken_on)
    return run


def runs_abandon(*, feed: str) -> int:
    """Mark the feed's runs still "running" after ETL_LOCK_TTL as failed; return how many.

    Called by a run that holds the feed's lock. A run older than the lock's TTL cannot still hold
    the lock, so its worker stopped without recording the end; left alone it would show as running
    forever. One UPDATE.
    """
    now = timezone.now()
    abandoned = EtlRun.objects.filter(
        feed=feed, status=EtlRun.Status.RUNNING, started_at__lt=now - timedelta(seconds=settings.ETL_LOCK_TTL)
    ).update(status=EtlRun.Status.FAILED, error=ABANDONED, finished_at=now)
    if abandoned:
        logger.warning("%d abandoned run(s) of %s marked failed", abandoned, feed, extra={"abandoned": abandoned})
    return abandoned


def _finish(
    run: EtlRun,
    status: str,
    *,
    stats: jikan.RequestStats | None = None,
    counts: LoadCounts | None = None,
    error: str = "",
) -> EtlRun:
    if counts is not None:
        # Written after the load's transaction, so a failed run still records what it rejected.
        Rejection.objects.bulk_create(counts.rejections, batch_size=1000)
        run.items_received, run.items_duplicate = counts.received, counts.duplicates
        run.items_loaded, run.items_rejected = counts.loaded, len(counts.rejections)
    if stats is not None:
        run.requests, run.retries, run.rate_limited = stats.requests, stats.retries, stats.rate_limited
    run.status, run.error, run.finished_at = status, error[:2000], timezone.now()
    run.save()
    metrics.record_run(run)
    log = logger.warning if status in (EtlRun.Status.FAILED, EtlRun.Status.SKIPPED) else logger.info
    log(
        "run %s: %s loaded, %s rejected, %s duplicates, %s requests",
        status,
        run.items_loaded,
        run.items_rejected,
        run.items_duplicate,
        run.requests,
        extra={"status": status, "error": error or None},
    )
    return run


def _extract(
    run: EtlRun,
    spec: Feed,
    *,
    budget: int | None,
    fresh: bool,
    stats: jikan.RequestStats,
    on_page: ProgressCallback | None,
) -> list[int]:
    """Store the feed's pages for the day and return their RawPage ids, in page order.

    Pages already stored for the same feed and day (by an earlier run that failed later, or a
    rerun) are reused instead of asking Jikan again, unless `fresh`.
    """
    stored = {} if fresh else _stored_pages(spec.name, run.taken_on)
    page_ids: list[int] = []
    pending: list[tuple[int, RawPage]] = []  # fetched pages not yet written, with their place in page_ids
    last_page = min(budget or MAX_PAGES, MAX_PAGES)
    try:
        for number in range(1, last_page + 1):
            if number in stored:
                page_id, has_next = stored[number]
                page_ids.append(page_id)
            else:
                result = jikan.get_client().get_page(spec.path, params=spec.params, page=number, stats=stats)
                raw = RawPage(run=run, page=number, url=result.url, http_status=result.status, payload=result.payload)
                pending.append((len(page_ids), raw))
                page_ids.append(0)
                has_next = result.has_next_page
                if len(pending) >= RAW_BATCH:
                    _write_pages(pending, page_ids)
            run.pages = len(page_ids)
            if on_page:
                on_page(len(page_ids), budget)
            if not has_next:
                break
    finally:
        # Written even when a later page fails, so the next run resumes from here.
        _write_pages(pending, page_ids)
    return page_ids


def _write_pages(pending: list[tuple[int, RawPage]], page_ids: list[int]) -> None:
    """Insert the pending pages in one statement and drop them from memory."""
    RawPage.objects.bulk_create([raw for _, raw in pending])
    for index, raw in pending:
        page_ids[index] = raw.pk
    pending.clear()


def _stored_pages(feed: str, taken_on: date) -> dict[int, tuple[int, bool]]:
    """The newest stored page of each number for a feed and day: {page: (RawPage id, has next page)}."""
    newest: dict[int, tuple[int, bool]] = {}
    pages = RawPage.objects.filter(run__feed=feed, run__taken_on=taken_on).order_by("page", "-fetched_at", "-id")
    for page_id, number, has_next in pages.values_list("id", "page", "payload__pagination__has_next_page"):
        newest.setdefault(number, (page_id, bool(has_next)))
    return newest


def _iter_pages(page_ids: list[int]) -> Iterator[RawPage]:
    # One page in memory at a time: memory must not grow with the number of pages.
    for page_id in page_ids:
        yield RawPage.objects.only("page", "payload").get(pk=page_id)


def _load(run: EtlRun, page_ids: list[int], counts: LoadCounts, *, snapshot: bool) -> None:
    """Validate and write the day in one transaction: upsert its rows, drop the ones no longer there."""
    seen: set[int] = set()
    batch: list[AnimeRecord] = []
    with transaction.atomic():
        for raw in _iter_pages(page_ids):
            data = raw.payload.get("data") if isinstance(raw.payload, dict) else None
            for item in data if isinstance(data, list) else []:
                counts.received += 1
                result = item_validate(item)
                if isinstance(result, ItemRejection):
                    counts.rejections.append(_rejection(run, raw.page, result))
                elif result.mal_id in seen:
                    # Jikan's sort has no tie-breaker: paging can repeat an item. First position wins.
                    counts.duplicates += 1
                else:
                    seen.add(result.mal_id)
                    batch.append(result)
            # Writes go out in batches of about LOAD_BATCH titles: few queries, bounded memory.
            if len(batch) >= LOAD_BATCH:
                _write_batch(run, batch, counts, snapshot=snapshot)
                batch = []
        _write_batch(run, batch, counts, snapshot=snapshot)
        expected = counts.received - counts.duplicates
        # An empty ranking means Jikan answered nothing useful; an empty past season is just empty.
        if (snapshot and expected == 0) or counts.loaded < expected * QUALITY_GATE:
            raise QualityGateFailed(
                f"Quality gate: only {counts.loaded} of {expected} items passed validation; "
                "the previous data of this day is kept."
            )
        if snapshot:
            Snapshot.objects.filter(feed=run.feed, taken_on=run.taken_on).exclude(run=run).delete()
            SnapshotDay.objects.update_or_create(
                feed=run.feed, taken_on=run.taken_on, defaults={"rows": counts.loaded, "run": run}
            )


def _write_batch(run: EtlRun, records: list[AnimeRecord], counts: LoadCounts, *, snapshot: bool) -> None:
    anime_upsert(records=records, seen_on=run.taken_on)
    if snapshot:
        _snapshot_upsert(run, records, first_position=counts.loaded + 1)
    counts.loaded += len(records)


def _rejection(run: EtlRun, page: int, rejected: ItemRejection) -> Rejection:
    logger.info("item rejected: %s %s", rejected.field, rejected.reason, extra={"mal_id": rejected.mal_id})
    return Rejection(
        run=run,
        page=page,
        mal_id=rejected.mal_id,
        field=rejected.field,
        reason=rejected.reason,
        value=rejected.value,
    )


def anime_upsert(*, records: list[AnimeRecord], seen_on: date) -> None:
    """Insert or update titles with their genres and studios, set-based (a few queries per batch)."""
    if not records:
        return
    Anime.objects.bulk_create(
        [
            Anime(
                mal_id=r.mal_id,
                first_seen=seen_on,
                last_seen=seen_on,
                **{name: getattr(r, name) for name in ANIME_FACT_FIELDS},
            )
            for r in records
        ],
        update_conflicts=True,
        unique_fields=["mal_id"],
        update_fields=[*ANIME_FACT_FIELDS, "last_seen"],
    )
    genres = {g[0]: g for r in records for g in r.genres}
    Genre.objects.bulk_create(
        [Genre(mal_id=mal_id, name=name, kind=kind) for mal_id, name, kind in genres.values()],
        update_conflicts=True,
        unique_fields=["mal_id"],
        update_fields=["name", "kind"],
    )
    studios = {s[0]: s for r in records for s in r.studios}
    Studio.objects.bulk_create(
        [Studio(mal_id=mal_id, name=name) for mal_id, name in studios.values()],
        update_conflicts=True,
        unique_fields=["mal_id"],
        update_fields=["name"],
    )
    _links_replace(Anime.genres.through, "genre_id", {(r.mal_id, g[0]) for r in records for g in r.genres}, records)
    _links_replace(Anime.studios.through, "studio_id", {(r.mal_id, s[0]) for r in records for s in r.studios}, records)


def _links_replace(through: Any, target: str, wanted: set[tuple[int, int]], records: list[AnimeRecord]) -> None:
    """Make the titles' many-to-many links exactly `wanted`, writing only what changed.

    Genres and studios rarely change, so a daily load usually writes no link at all.
    """
    existing = set(through.objects.filter(anime_id__in=[r.mal_id for r in records]).values_list("anime_id", target))
    stale = existing - wanted
    if stale:
        through.objects.filter(reduce(operator.or_, (Q(anime_id=a, **{target: b}) for a, b in stale))).delete()
    through.objects.bulk_create([through(anime_id=a, **{target: b}) for a, b in wanted - existing])


def _snapshot_upsert(run: EtlRun, records: list[AnimeRecord], *, first_position: int) -> None:
    Snapshot.objects.bulk_create(
        [
            Snapshot(
                anime_id=r.mal_id,
                feed=run.feed,
                taken_on=run.taken_on,
                position=position,
                run=run,
                **{name: getattr(r, name) for name in SNAPSHOT_FIELDS},
            )
            for position, r in enumerate(records, start=first_position)
        ],
        update_conflicts=True,
        unique_fields=["anime", "feed", "taken_on"],
        update_fields=["position", "run", *SNAPSHOT_FIELDS],
    )


def etl_prune(*, raw_days: int | None = None, log_days: int | None = None) -> tuple[int, int]:
    """Delete raw pages older than `raw_days` and finished runs older than `log_days`.

    Snapshots keep their data when their run is pruned (the link becomes null). Returns the number of
    raw pages and runs deleted.
    """
    now = timezone.now()
    raw_cutoff = now - timedelta(days=raw_days or settings.RAW_RETENTION_DAYS)
    log_cutoff = now - timedelta(days=log_days or settings.LOG_RETENTION_DAYS)
    raw_deleted, _ = RawPage.objects.filter(fetched_at__lt=raw_cutoff).delete()
    old_runs = EtlRun.objects.filter(started_at__lt=log_cutoff).exclude(status=EtlRun.Status.RUNNING)
    runs_deleted = old_runs.count()
    old_runs.delete()
    return raw_deleted, runs_deleted
