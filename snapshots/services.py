"""Every write of the ingestion side: the ETL of one feed for one day, backfills, pruning, hand edits."""

from __future__ import annotations

import contextvars
import hashlib
import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from animedash.logging import log_context
from snapshots import jikan, metrics
from snapshots.feeds import MAX_PAGES, Feed, get_feed
from snapshots.locks import feed_lock
from snapshots.models import Anime, DataEdit, EtlRun, RawPage, Rejection, Snapshot, SnapshotDay
from snapshots.signals import snapshot_committed
from snapshots.staging import Staging, rows_insert
from snapshots.validation import SEASONS, AnimeRecord, ItemRejection, item_validate

logger = logging.getLogger(__name__)

# Called after each page is fetched or reused: (pages done, page budget or None when open-ended).
ProgressCallback = Callable[[int, int | None], None]

# The run fails (and the day keeps its previous data) when fewer than this share of items survive.
QUALITY_GATE = 0.5
# The error of a run whose worker died (SIGKILL, OOM, lost node) before it could record its end.
ABANDONED = "abandoned: the worker stopped before finishing"
SKIPPED = "Another run of this feed is in progress."
# Raw pages per insert (one commit each): few statements, and little to refetch after a crash.
RAW_BATCH = 10
# Pages fetched ahead of the one being stored and staged: enough to ride out a batch write.
FETCH_AHEAD = 4
RAW_PAGE_COLUMNS = ("run_id", "page", "url", "http_status", "fetched_at", "body", "has_next_page")


class QualityGateFailed(Exception):
    pass


class DayRefused(Exception):
    """A day the ETL cannot write truthfully, or cannot touch now; the text says why and what to do."""


class QueueUnavailable(Exception):
    """No broker is configured: a queued task would run in the caller's own process."""


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
    stored_only: bool = False,
    on_page: ProgressCallback | None = None,
    queued_id: int | None = None,
) -> EtlRun:
    """Snapshot one feed for one day: extract from Jikan, validate, load. Safe to rerun.

    A rerun of the same day reuses the raw pages already stored (no Jikan request) unless `fresh`,
    and replaces the day's rows. A failed run leaves the previous state of the day untouched.
    `queued_id` is the run `feed_snapshot_queue` recorded: this run carries on in that row.
    `stored_only` replays the pages that runs of the day stored that day and asks Jikan nothing: the
    only truthful run of a past day (see `day_is_replay`).
    """
    spec = get_feed(feed)
    return _run(
        spec,
        taken_on=taken_on,
        trigger=trigger,
        pages=pages or spec.pages,
        fresh=fresh,
        stored_only=stored_only,
        on_page=on_page,
        queued_id=queued_id,
    )


def day_is_replay(*, feeds: list[str], taken_on: date, fresh: bool = False) -> bool:
    """Whether runs of `feeds` for `taken_on` must replay stored pages (a past day) or may ask Jikan (today).

    Jikan has no history: whatever it answers is today's numbers, so stored under another day they
    would be invented history. A day to come is refused, and so is a past day unless every feed can
    be resumed from the raw pages a run of that feed and day stored that day. Raises DayRefused.
    """
    today = timezone.now().date()
    if taken_on > today:
        raise DayRefused(f"{taken_on} is in the future (today is {today}, UTC): Jikan only has today's numbers.")
    if taken_on == today:
        return False
    if fresh:
        raise DayRefused(
            f"--fresh would store Jikan's numbers of today under {taken_on}; a past day can only be resumed "
            "from the pages stored that day."
        )
    missing = [feed for feed in feeds if not _stored_pages(feed, taken_on, started_that_day=True)]
    if missing:
        raise DayRefused(
            f"No raw pages of {', '.join(missing)} stored on {taken_on}: Jikan has no history (it answers "
            "today's numbers), so a past day can only be resumed from the pages a run stored that day. "
            "Omit --date to snapshot today."
        )
    return True


def feed_snapshot_queue(*, feed: str, trigger: str = EtlRun.Trigger.API) -> EtlRun:
    """Record a run of the feed as queued, for the caller to hand to a worker once its transaction commits.

    The caller (a web request) never runs the ETL: without a broker Celery would run the task right
    there, so that raises QueueUnavailable instead.
    """
    if settings.CELERY_TASK_ALWAYS_EAGER:
        raise QueueUnavailable(
            f"No task queue is configured (CELERY_BROKER_URL is unset), so a run cannot be queued: "
            f"run it with `python manage.py etl run --feed {feed}`."
        )
    run = EtlRun.objects.create(
        feed=get_feed(feed).name, taken_on=timezone.now().date(), trigger=trigger, status=EtlRun.Status.QUEUED
    )
    return run


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
    stored_only: bool = False,
    snapshot: bool = True,
    queued_id: int | None = None,
) -> EtlRun:
    run = _run_open(spec, taken_on=taken_on, trigger=trigger, queued_id=queued_id)
    with log_context(run_id=run.pk, feed=spec.name), feed_lock(spec.name) as held:
        if not held:
            return _finish(run, EtlRun.Status.SKIPPED, error=SKIPPED, public_error=SKIPPED)
        runs_abandon(feed=spec.name)
        logger.info("run started: %s for %s", spec.name, taken_on)
        stats = jikan.RequestStats()
        counts = LoadCounts()
        try:
            with Staging() as staging:
                _extract_and_stage(
                    run,
                    spec,
                    staging,
                    counts,
                    budget=pages,
                    fresh=fresh,
                    stored_only=stored_only,
                    stats=stats,
                    on_page=on_page,
                )
                _load(run, staging, counts, snapshot=snapshot)
        except (jikan.JikanError, QualityGateFailed) as exc:
            return _finish(run, EtlRun.Status.FAILED, stats=stats, counts=counts, error=str(exc), failure=exc)
        except DatabaseError as exc:
            # The connection may be dead (database restarted, backend terminated): record the
            # failure on a fresh one. The load's transaction was rolled back, so no partial day.
            connection.close()
            error = f"Database error: {exc}"
            return _finish(run, EtlRun.Status.FAILED, stats=stats, counts=counts, error=error, failure=exc)
        except BaseException as exc:
            error = f"{exc.__class__.__name__}: {exc}"
            _finish(run, EtlRun.Status.FAILED, stats=stats, counts=counts, error=error, failure=exc)
            raise
        status = EtlRun.Status.PARTIAL if counts.rejections else EtlRun.Status.SUCCESS
        run = _finish(run, status, stats=stats, counts=counts)
    if snapshot:
        snapshot_committed.send(sender=EtlRun, run=run, feed=run.feed, taken_on=run.taken_on)
    return run


def _run_open(spec: Feed, *, taken_on: date, trigger: str, queued_id: int | None) -> EtlRun:
    """The run's row: the queued one `queued_id` names when it is still queued, else a new one.

    One conditional UPDATE claims it, so a redelivered task cannot take it twice. A queued run's day
    and start become the worker's, not the request's.
    """
    if queued_id is not None:
        claimed = EtlRun.objects.filter(pk=queued_id, feed=spec.name, status=EtlRun.Status.QUEUED).update(
            status=EtlRun.Status.RUNNING, taken_on=taken_on, started_at=timezone.now()
        )
        if claimed:
            return EtlRun.objects.get(pk=queued_id)
    return EtlRun.objects.create(feed=spec.name, taken_on=taken_on, trigger=trigger)


def runs_abandon(*, feed: str) -> int:
    """Mark the feed's runs still "running" after ETL_LOCK_TTL as failed; return how many.

    Called by a run that holds the feed's lock. A run older than the lock's TTL cannot still hold
    the lock, so its worker stopped without recording the end; left alone it would show as running
    forever. One UPDATE.
    """
    now = timezone.now()
    abandoned = EtlRun.objects.filter(
        feed=feed, status=EtlRun.Status.RUNNING, started_at__lt=now - timedelta(seconds=settings.ETL_LOCK_TTL)
    ).update(status=EtlRun.Status.FAILED, error=ABANDONED, public_error=ABANDONED, finished_at=now)
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
    public_error: str = "",
    failure: BaseException | None = None,
) -> EtlRun:
    """Record the run's end. `error` is the full text, for staff; `public_error` (given a `failure`,
    its kind in words) is what pages and the API show."""
    if failure is not None:
        public_error = _public_error(failure)
    if counts is not None:
        # Written after the load's transaction, so a failed run still records what it rejected.
        Rejection.objects.bulk_create(counts.rejections, batch_size=1000)
        run.items_received, run.items_duplicate = counts.received, counts.duplicates
        run.items_loaded, run.items_rejected = counts.loaded, len(counts.rejections)
    if stats is not None:
        run.requests, run.retries, run.rate_limited = stats.requests, stats.retries, stats.rate_limited
    run.status, run.error, run.finished_at = status, error[:2000], timezone.now()
    run.public_error = public_error
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


def _public_error(failure: BaseException) -> str:
    """The kind of failure in words, for pages and the API: never a host, a URL or a database's text."""
    if isinstance(failure, QualityGateFailed):
        return str(failure)  # counts only
    if isinstance(failure, jikan.CircuitOpen):
        return "Jikan failed repeatedly; it is not called until it recovers (circuit breaker open)."
    if isinstance(failure, jikan.JikanRateLimited):
        return "Jikan kept answering 429 (rate limited)."
    if isinstance(failure, jikan.JikanBadPayload):
        return "Jikan kept sending unreadable pages."
    if isinstance(failure, jikan.JikanUnavailable):
        if failure.reason in ("timeout", "connection"):
            return "Jikan did not answer in time." if failure.reason == "timeout" else "Could not connect to Jikan."
        return f"Jikan was unavailable (HTTP {failure.status})." if failure.status else "Jikan was unavailable."
    if isinstance(failure, jikan.JikanClientError):
        return f"Jikan refused the request (HTTP {failure.status})."
    if isinstance(failure, DatabaseError):
        return "Database error; the day keeps its previous data."
    return "Internal error; the day keeps its previous data."


def _extract_and_stage(
    run: EtlRun,
    spec: Feed,
    staging: Staging,
    counts: LoadCounts,
    *,
    budget: int | None,
    fresh: bool,
    stored_only: bool,
    stats: jikan.RequestStats,
    on_page: ProgressCallback | None,
) -> None:
    """Bring the feed's pages for the day, in order, and stage the items that pass validation.

    Pages already stored for the same feed and day (by an earlier run that failed later, or a
    rerun) are reused instead of asking Jikan again, unless `fresh`. Fetched pages are stored as
    they come (committed in small batches), so a run that fails later leaves them for the next one.
    `stored_only` stops before the first page not stored by a run that started on the day.
    """
    stored = {} if fresh else _stored_pages(spec.name, run.taken_on, started_that_day=stored_only)
    pending: list[tuple[Any, ...]] = []  # RAW_PAGE_COLUMNS
    seen: set[int] = set()
    last_page = min(budget or MAX_PAGES, MAX_PAGES)
    if stored_only:
        last_page = min(last_page, next(n for n in itertools.count(1) if n not in stored) - 1)
    client = jikan.get_client()
    fetching: dict[int, Future[ValidatedPage]] = {}
    known_last = 1  # the highest page number known to exist
    stop = threading.Event()  # set on the first failure: the pages queued after it are not asked for

    def fetch_ahead(after: int) -> None:
        for number in range(after + 1, min(after + FETCH_AHEAD, known_last, last_page) + 1):
            if number not in stored and number not in fetching:
                # Carries the log context (run id, feed) into the fetching thread.
                task = contextvars.copy_context().run
                fetching[number] = fetcher.submit(task, _page_fetch, client, spec, number, stats, stop)

    # One thread fetches and validates the next pages, one request at a time and in page order, while
    # this one stores and stages the pages already there. Only pages known to exist are asked for
    # (Jikan's last_visible_page), and only this thread touches the database.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="jikan-fetch") as fetcher:
        try:
            fetch_ahead(0)
            for number in range(1, last_page + 1):
                if number in stored:
                    raw = RawPage.objects.only("url", "http_status", "body").get(pk=stored[number])
                    page, results = _page_validate(jikan.parse_page(raw.body, url=raw.url, status=raw.http_status))
                else:
                    page, results = fetching.pop(number).result()
                    pending.append(
                        (run.pk, number, page.url, page.status, timezone.now(), page.body, page.has_next_page)
                    )
                if page.has_next_page:
                    known_last = max(known_last, number + 1, page.last_visible_page or 0)
                    fetch_ahead(number)
                if len(pending) >= RAW_BATCH:
                    _raw_pages_write(pending)
                _stage_items(run, number, results, staging, counts, seen)
                run.pages = number
                if on_page:
                    on_page(number, budget)
                if not page.has_next_page:
                    break
        finally:
            stop.set()  # the run failed, or a last page contradicted last_visible_page
            _raw_pages_write(pending)


ValidatedPage = tuple[jikan.JikanPage, list[AnimeRecord | ItemRejection]]


def _page_fetch(
    client: jikan.JikanClient, spec: Feed, number: int, stats: jikan.RequestStats, stop: threading.Event
) -> ValidatedPage:
    """Runs in the fetching thread: pure work, no database."""
    if stop.is_set():
        raise CancelledError
    try:
        return _page_validate(client.get_page(spec.path, params=spec.params, page=number, stats=stats))
    except BaseException:
        stop.set()
        raise


def _page_validate(page: jikan.JikanPage) -> ValidatedPage:
    return page, [item_validate(item) for item in page.items]


def _raw_pages_write(pending: list[tuple[Any, ...]]) -> None:
    """Insert the pending pages in one statement and drop them from memory."""
    rows_insert(RawPage._meta.db_table, RAW_PAGE_COLUMNS, pending)
    pending.clear()


def _stored_pages(feed: str, taken_on: date, *, started_that_day: bool = False) -> dict[int, int]:
    """The newest stored page of each number for a feed and day: {page: RawPage id}.

    `started_that_day` keeps only the pages of runs that started on the day: a run that stored
    another day's numbers under it is no source for it.
    """
    newest: dict[int, int] = {}
    pages = RawPage.objects.filter(run__feed=feed, run__taken_on=taken_on)
    if started_that_day:
        pages = pages.filter(run__started_at__date=taken_on)
    pages = pages.order_by("page", "-fetched_at", "-id")
    for page_id, number in pages.values_list("id", "page"):
        newest.setdefault(number, page_id)
    return newest


def _stage_items(
    run: EtlRun,
    page: int,
    results: list[AnimeRecord | ItemRejection],
    staging: Staging,
    counts: LoadCounts,
    seen: set[int],
) -> None:
    for result in results:
        counts.received += 1
        if isinstance(result, ItemRejection):
            counts.rejections.append(_rejection(run, page, result))
        elif result.mal_id in seen:
            # Jikan's sort has no tie-breaker: paging can repeat an item. First position wins.
            counts.duplicates += 1
        else:
            seen.add(result.mal_id)
            staging.add(result)


def _load(run: EtlRun, staging: Staging, counts: LoadCounts, *, snapshot: bool) -> None:
    """Write the staged day in one transaction, or nothing when too few items passed validation."""
    expected = counts.received - counts.duplicates
    # An empty ranking means Jikan answered nothing useful; an empty past season is just empty.
    if (snapshot and expected == 0) or staging.staged < expected * QUALITY_GATE:
        raise QualityGateFailed(
            f"Quality gate: only {staging.staged} of {expected} items passed validation; "
            "the previous data of this day is kept."
        )
    with transaction.atomic():
        staging.titles_merge(seen_on=run.taken_on)
        if snapshot:
            staging.snapshots_replace(feed=run.feed, taken_on=run.taken_on, run_id=run.pk)
            SnapshotDay.objects.update_or_create(
                feed=run.feed, taken_on=run.taken_on, defaults={"rows": staging.staged, "run": run}
            )
    # Counted once committed: a failed run loaded nothing, whatever it had staged.
    counts.loaded = staging.staged


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
    """Insert or update titles with exactly the given genres and studios, outside any run."""
    with Staging() as staging:
        for record in records:
            staging.add(record)
        with transaction.atomic():
            staging.titles_merge(seen_on=seen_on)


class AnimeNotOnMal(Exception):
    """MyAnimeList has no title with this id."""


class AnimeUnavailable(Exception):
    """The title could not be fetched now (Jikan unreachable, or its answer unusable); later may work."""


# Jikan's 404 for an id is remembered this long, so asking again does not cost another request.
MISSING_TTL = 24 * 3600


def anime_fetch(*, mal_id: int) -> Anime:
    """The title with this MyAnimeList id: from the database, or else fetched from Jikan (GET /anime/{id},
    through the client's limiter, retries and breaker), validated and stored as the ETL stores a title."""
    anime = Anime.objects.filter(mal_id=mal_id).first()
    if anime is not None:
        return anime
    missing = f"anime-missing:{mal_id}"
    if _cache_get(missing):
        raise AnimeNotOnMal(f"No title {mal_id} on MyAnimeList.")
    try:
        # Reference: Jikan v4 OpenAPI, GET /anime/{id} (getAnimeById)
        body = jikan.get_client().get_json(f"/anime/{mal_id}")
    except jikan.JikanClientError as exc:
        if exc.status == 404:
            _cache_set(missing, MISSING_TTL)
            raise AnimeNotOnMal(f"No title {mal_id} on MyAnimeList.") from exc
        raise AnimeUnavailable(f"MyAnimeList (through Jikan) refused the request: {exc}") from exc
    except jikan.JikanError as exc:
        raise AnimeUnavailable(f"MyAnimeList (through Jikan) cannot be reached right now: {exc}") from exc
    record = item_validate(body.get("data"))
    if isinstance(record, ItemRejection) or record.mal_id != mal_id:
        reason = record.reason if isinstance(record, ItemRejection) else "another title came back"
        raise AnimeUnavailable(f"Jikan's answer for title {mal_id} could not be used: {reason}")
    anime_upsert(records=[record], seen_on=timezone.localdate())
    return Anime.objects.get(mal_id=mal_id)


# A search of MyAnimeList is kept this long: Jikan itself caches for a day.
MAL_SEARCH_TTL = 24 * 3600
MAL_SEARCH_LIMIT = 25


def mal_search_kept(*, q: str) -> bool:
    """Whether a MyAnimeList search for `q` is kept, so making it again costs no Jikan request."""
    return _cache_get(_mal_search_key(q)) is not None


def anime_search_mal(*, q: str) -> list[Anime]:
    """MyAnimeList's titles matching `q` (Jikan GET /anime?q=, most relevant first), stored as the ETL stores
    titles so they can be opened and tracked; one search per wording a day. Raises AnimeUnavailable."""
    key = _mal_search_key(q)
    ids = _cache_get(key)
    if ids is None:
        try:
            # Reference: Jikan v4 OpenAPI, GET /anime (getAnimeSearch)
            page = jikan.get_client().get_page("/anime", params={"q": q, "limit": MAL_SEARCH_LIMIT, "sfw": "true"})
        except jikan.JikanError as exc:
            raise AnimeUnavailable(f"MyAnimeList (through Jikan) cannot be searched right now: {exc}") from exc
        records = [record for item in page.items if isinstance(record := item_validate(item), AnimeRecord)]
        if records:
            anime_upsert(records=records, seen_on=timezone.localdate())
        ids = list(dict.fromkeys(record.mal_id for record in records))
        _cache_set(key, MAL_SEARCH_TTL, value=ids)
    found = Anime.objects.in_bulk(ids)
    return [found[mal_id] for mal_id in ids if mal_id in found]


def _mal_search_key(q: str) -> str:
    return "mal-search:" + hashlib.sha256(" ".join(q.lower().split()).encode()).hexdigest()


def _cache_get(key: str) -> Any:
    try:
        return cache.get(key)
    except Exception:  # the cache backend's errors vary; without it, Jikan is asked again
        return None


def _cache_set(key: str, timeout: int, value: Any = True) -> None:
    try:
        cache.set(key, value, timeout=timeout)
    except Exception:
        logger.warning("could not keep %s in the cache", key, exc_info=True)


def data_edit_create(*, what: str) -> DataEdit:
    """Record a change to the history made outside a run (the admin, `day_delete`): the data version moves."""
    return DataEdit.objects.create(what=what[: DataEdit._meta.get_field("what").max_length])


def day_delete(*, feed: str, taken_on: date) -> tuple[int, int]:
    """Delete a feed's day: its snapshot rows, its SnapshotDay and its runs (with their raw pages and
    rejections), in one transaction. Returns (snapshot rows, runs) deleted.

    For a day stored under a date its numbers were not fetched on (`etl validate` finds them). Holds
    the feed's lock, so no run of the feed writes meanwhile (DayRefused if one is running). The data
    version moves, so no cached answer shows the day afterwards.
    """
    with feed_lock(feed) as held:
        if not held:
            raise DayRefused(f"A run of {feed} is in progress; delete the day once it has ended.")
        with transaction.atomic():
            rows, _ = Snapshot.objects.filter(feed=feed, taken_on=taken_on).delete()
            SnapshotDay.objects.filter(feed=feed, taken_on=taken_on).delete()
            runs = EtlRun.objects.filter(feed=feed, taken_on=taken_on)
            run_count = runs.count()
            runs.delete()
            if rows or run_count:
                data_edit_create(what=f"deleted the day {feed} {taken_on}")
    logger.warning("deleted the day %s %s: %d rows, %d runs", feed, taken_on, rows, run_count)
    return rows, run_count


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
