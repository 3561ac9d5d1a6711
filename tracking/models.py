"""A person's anime list, the log of every change to it, their list imports and their API tokens.

Every row here belongs to one person and goes with their account. Titles are protected: an admin cannot
delete a title someone keeps on their list.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class ListStatus(models.TextChoices):
    WATCHING = "watching", "Watching"
    COMPLETED = "completed", "Completed"
    ON_HOLD = "on_hold", "On hold"
    DROPPED = "dropped", "Dropped"
    PLAN_TO_WATCH = "plan_to_watch", "Plan to watch"


class ListEntry(models.Model):
    """One title on one person's list. The rules between the fields live in tracking/services.py."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="list_entries")
    anime = models.ForeignKey("snapshots.Anime", on_delete=models.PROTECT, related_name="list_entries")
    status = models.CharField(max_length=16, choices=ListStatus.choices)
    score = models.PositiveSmallIntegerField(null=True, blank=True)
    progress = models.PositiveIntegerField(default=0, help_text="Episodes watched.")
    rewatching = models.BooleanField(default=False)
    times_rewatched = models.PositiveSmallIntegerField(default=0)
    started_on = models.DateField(null=True, blank=True)
    finished_on = models.DateField(null=True, blank=True)
    notes = models.TextField(blank=True, max_length=5000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "list entries"
        constraints = [
            models.UniqueConstraint(fields=["user", "anime"], name="list_entry_unique_per_person"),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=1, score__lte=10),
                name="list_entry_score_1_to_10",
                violation_error_message="Pick a score from 1 to 10, or none.",
            ),
            models.CheckConstraint(
                condition=Q(started_on__isnull=True)
                | Q(finished_on__isnull=True)
                | Q(finished_on__gte=F("started_on")),
                name="list_entry_finished_after_started",
                violation_error_message="The finish date is before the start date.",
            ),
        ]
        indexes = [models.Index(fields=["user", "status", "-updated_at"])]

    def __str__(self) -> str:
        return f"{self.user} · {self.anime_id} · {self.status}"


class ListEvent(models.Model):
    """An append-only log of every change to a list: what changed, from what, to what, and when."""

    class Kind(models.TextChoices):
        ADDED = "added", "Added"
        STATUS = "status", "Status"
        SCORE = "score", "Score"
        PROGRESS = "progress", "Progress"
        REMOVED = "removed", "Removed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="list_events")
    anime = models.ForeignKey("snapshots.Anime", on_delete=models.PROTECT, related_name="list_events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    from_value = models.CharField(max_length=32, blank=True)
    to_value = models.CharField(max_length=32, blank=True)
    at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-at"])]

    def __str__(self) -> str:
        return f"{self.user} · {self.anime_id} · {self.kind} {self.from_value!r} -> {self.to_value!r}"


class ImportJob(models.Model):
    """One MyAnimeList list import: what the file held, and what applying it did. It starts as a dry run
    the person looks at; applying it queues it for a worker."""

    class State(models.TextChoices):
        PREVIEW = "preview", "Dry run"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="import_jobs")
    file_name = models.CharField(max_length=255)
    overwrite = models.BooleanField(default=False, help_text="Let the file downgrade completed or dropped titles.")
    # The file's entries as parsed (tracking/mal_xml.py), so the worker never reads the upload again.
    entries = models.JSONField(default=list)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PREVIEW)
    processed = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    # [{"mal_id": ..., "title": ..., "reason": ...}] for entries that could not be applied.
    unresolved = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user} · {self.file_name} · {self.state}"

    @property
    def total(self) -> int:
        return len(self.entries)


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 is stored: the token itself is shown once, when created."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    # The token's first characters, so a person can tell their tokens apart.
    prefix = models.CharField(max_length=12, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user} · {self.name} ({self.prefix}…)"


class Profile(models.Model):
    """A person's choices about their page: made when first needed, so every account need not have one."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    list_public = models.BooleanField(default=False, help_text="Anyone may see the list at /u/<username>/.")
    # The person's last searches, newest first: their query strings (tracking.services.search_remember).
    recent_searches = models.JSONField(default=list, blank=True)
    companion_shown = models.BooleanField(default=True, help_text="Show the cat on the list and the dashboard.")
    # The day the person said "not today" to the cat's suggestion: none more until the next day.
    suggestion_dismissed_on = models.DateField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user} ({'public' if self.list_public else 'private'} list)"
