"""The daily history of MyAnimeList's rankings and the ETL runs that wrote it."""

from __future__ import annotations

from typing import Any

from django.db import models

from snapshots.search import search_text


class Genre(models.Model):
    class Kind(models.TextChoices):
        GENRE = "genre", "Genre"
        EXPLICIT = "explicit", "Explicit genre"
        THEME = "theme", "Theme"
        DEMOGRAPHIC = "demographic", "Demographic"

    mal_id = models.PositiveIntegerField(primary_key=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.GENRE)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Studio(models.Model):
    mal_id = models.PositiveIntegerField(primary_key=True)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Anime(models.Model):
    """One title, keyed by its MyAnimeList id, with its latest numbers for convenience."""

    mal_id = models.PositiveIntegerField(primary_key=True)
    title = models.CharField(max_length=500)
    title_english = models.CharField(max_length=500, blank=True)
    title_japanese = models.CharField(max_length=500, blank=True)
    # Every name Jikan gives the title (`titles[]`), in its order: [{"type": "Synonym", "title": "FMA"}, ...].
    titles = models.JSONField(default=list, blank=True)
    # All the names above, normalised for search (snapshots.search). Derived, so never edited by hand.
    search_text = models.TextField(blank=True, editable=False)
    # Jikan's enums are not closed ("CM", "PV", "TV Special"...): kept as text, never rejected.
    type = models.CharField(max_length=32, blank=True)
    source = models.CharField(max_length=64, blank=True)
    episodes = models.PositiveIntegerField(null=True, blank=True)
    # Minutes per episode, read from Jikan's `duration` ("24 min per ep"); None when unknown.
    episode_minutes = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=64, blank=True)
    airing = models.BooleanField(default=False)
    aired_from = models.DateField(null=True, blank=True)
    aired_to = models.DateField(null=True, blank=True)
    aired_string = models.CharField(max_length=200, blank=True)
    # From MAL's "premiered", or derived from aired_from when Jikan gives null.
    season = models.CharField(max_length=8, blank=True)
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    rating = models.CharField(max_length=64, blank=True)
    synopsis = models.TextField(blank=True)
    image_url = models.URLField(max_length=500, blank=True)
    url = models.URLField(max_length=500, blank=True)
    genres = models.ManyToManyField(Genre, related_name="anime", blank=True)
    studios = models.ManyToManyField(Studio, related_name="anime", blank=True)
    first_seen = models.DateField()
    last_seen = models.DateField()
    score = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True)
    scored_by = models.PositiveIntegerField(null=True, blank=True)
    rank = models.PositiveIntegerField(null=True, blank=True)
    popularity = models.PositiveIntegerField(null=True, blank=True)
    members = models.PositiveIntegerField(null=True, blank=True)
    favorites = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "anime"
        ordering = ["mal_id"]
        indexes = [models.Index(fields=["year", "season"]), models.Index(fields=["title"])]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The ETL writes search_text in SQL with the titles; this keeps it true for the admin's edits.
        self.search_text = search_text(
            [self.title, self.title_english, self.title_japanese, *_variant_names(self.titles)]
        )
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "search_text"}
        super().save(*args, **kwargs)


def _variant_names(titles: Any) -> list[str]:
    # Edited by hand in the admin, the JSON may hold any shape: only {"title": "..."} entries count.
    entries = titles if isinstance(titles, list) else []
    return [e["title"] for e in entries if isinstance(e, dict) and isinstance(e.get("title"), str)]


# What Jikan tells about a title (all but its id): written by the ETL, shown by the read side.
ANIME_FACT_FIELDS = (
    "title",
    "title_english",
    "title_japanese",
    "titles",
    "type",
    "source",
    "episodes",
    "status",
    "airing",
    "aired_from",
    "aired_to",
    "aired_string",
    "season",
    "year",
    "rating",
    "synopsis",
    "image_url",
    "url",
    "score",
    "scored_by",
    "rank",
    "popularity",
    "members",
    "favorites",
)


class EtlRun(models.Model):
    class Trigger(models.TextChoices):
        BEAT = "beat", "Celery beat"
        CLI = "cli", "Command line"
        API = "api", "API / admin"
        DEMO = "demo", "Demo seed"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCESS = "success", "Success"
        PARTIAL = "partial", "Partial"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"
        # Started from the API: waiting for a worker, which then runs this very row.
        QUEUED = "queued", "Queued"

    # The runs that committed their day (a partial run loaded all but its rejected items).
    OK_STATUSES = (Status.SUCCESS, Status.PARTIAL)

    feed = models.CharField(max_length=32)
    taken_on = models.DateField()
    trigger = models.CharField(max_length=8, choices=Trigger.choices, default=Trigger.CLI)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    pages = models.PositiveIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    rate_limited = models.PositiveIntegerField("429s", default=0)
    items_received = models.PositiveIntegerField(default=0)
    items_duplicate = models.PositiveIntegerField(default=0)
    items_loaded = models.PositiveIntegerField(default=0)
    items_rejected = models.PositiveIntegerField(default=0)
    # The full text (hosts, URLs, database messages) is for staff, in the admin and `etl logs`; public
    # pages and the API show only `public_error`, the kind of failure in words.
    error = models.TextField(blank=True)
    public_error = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["feed", "status", "taken_on"]),
            # Each feed's newest run (snapshots.selectors.feed_last_runs), read on every overview.
            models.Index(fields=["feed", "started_at"], name="etlrun_feed_started"),
        ]

    def __str__(self) -> str:
        return f"{self.feed} {self.taken_on} #{self.pk} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class Snapshot(models.Model):
    """Where one title stood in one feed on one day."""

    # Not indexed alone: the unique constraint below leads with the title.
    anime = models.ForeignKey(Anime, on_delete=models.CASCADE, related_name="snapshots", db_index=False)
    feed = models.CharField(max_length=32)
    taken_on = models.DateField()
    # 1-based order among the items loaded that day; duplicates and rejected items take none.
    position = models.PositiveIntegerField()
    rank = models.PositiveIntegerField(null=True, blank=True)
    popularity = models.PositiveIntegerField(null=True, blank=True)
    score = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True)
    scored_by = models.PositiveIntegerField(null=True, blank=True)
    members = models.PositiveIntegerField(null=True, blank=True)
    favorites = models.PositiveIntegerField(null=True, blank=True)
    run = models.ForeignKey(EtlRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="snapshots")

    class Meta:
        ordering = ["feed", "-taken_on", "position"]
        constraints = [
            # Lets the ETL be rerun safely: a (feed, day) is replaced, never duplicated. On PostgreSQL it also
            # carries the title's numbers (INCLUDE, migration 0012), so a title's history is read from it alone.
            models.UniqueConstraint(fields=["anime", "feed", "taken_on"], name="snapshot_unique_anime_feed_day"),
        ]
        indexes = [
            models.Index(fields=["feed", "taken_on", "position"], name="snapshot_feed_day_position"),
            # A day's titles in mal_id order: comparing two days (trends) and joining a day with the titles'
            # genres are merge joins of index-only scans, however large the day.
            models.Index(fields=["feed", "taken_on", "anime_id"], name="snapshot_feed_day_anime"),
            # The top lists (new entries, streaks: top <= 100) of the feeds ranked by MAL's rank or by
            # popularity read these small indexes, and only them, instead of the day's whole catalogue.
            models.Index(
                fields=["feed", "taken_on", "rank"],
                condition=models.Q(rank__lte=100),
                name="snapshot_feed_day_rank_top",
                include=["anime_id"],
            ),
            models.Index(
                fields=["feed", "taken_on", "popularity"],
                condition=models.Q(popularity__lte=100),
                name="snapshot_feed_day_popular_top",
                include=["anime_id"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.feed} {self.taken_on} #{self.position} {self.anime_id}"


class SnapshotDay(models.Model):
    """One row per (feed, day) with a committed snapshot: the days a feed has data, and how many rows.

    Written by the ETL in the same transaction as the day's snapshots, so the read side can list a
    feed's days and count its rows without scanning the snapshot table.
    """

    feed = models.CharField(max_length=32)
    taken_on = models.DateField()
    rows = models.PositiveIntegerField()
    run = models.ForeignKey(EtlRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # When the day's rows were last written: a re-run moves it, so what was derived from the day can tell.
    loaded_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["feed", "-taken_on"]
        constraints = [models.UniqueConstraint(fields=["feed", "taken_on"], name="snapshotday_unique_feed_day")]

    def __str__(self) -> str:
        return f"{self.feed} {self.taken_on} ({self.rows} rows)"


class RawPage(models.Model):
    """One Jikan page exactly as received; lets a re-run of the same day skip Jikan."""

    run = models.ForeignKey(EtlRun, on_delete=models.CASCADE, related_name="raw_pages")
    page = models.PositiveIntegerField()
    url = models.URLField(max_length=500)
    http_status = models.PositiveSmallIntegerField()
    fetched_at = models.DateTimeField(auto_now_add=True)
    # The body as received, not re-encoded JSON: storing it costs no encoding, and a resume parses it
    # exactly as the first run did. lz4-compressed on PostgreSQL.
    body = models.TextField()
    has_next_page = models.BooleanField()

    class Meta:
        ordering = ["run", "page"]
        constraints = [models.UniqueConstraint(fields=["run", "page"], name="rawpage_unique_run_page")]
        indexes = [models.Index(fields=["fetched_at"])]

    def __str__(self) -> str:
        return f"run #{self.run_id} page {self.page}"


class Rejection(models.Model):
    """A Jikan item that failed validation, kept with the reason so nothing is lost silently."""

    run = models.ForeignKey(EtlRun, on_delete=models.CASCADE, related_name="rejections")
    mal_id = models.IntegerField(null=True, blank=True)
    page = models.PositiveIntegerField(null=True, blank=True)
    field = models.CharField(max_length=64)
    reason = models.CharField(max_length=300)
    value = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "id"]

    def __str__(self) -> str:
        return f"{self.mal_id}: {self.field} {self.reason}"


class DataEdit(models.Model):
    """A change to the history made outside a run: an admin save or delete, a day removed by hand.

    The read side's data version counts these as it counts runs, so every process drops its cached
    answers at once, whatever changed.
    """

    edited_at = models.DateTimeField(auto_now_add=True)
    what = models.CharField(max_length=200)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.edited_at:%Y-%m-%d %H:%M} {self.what}"
