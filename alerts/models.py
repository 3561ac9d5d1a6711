"""Alert rules on ranking moves, what they found (events) and how each event reached its person (deliveries).

Every row belongs to one person and goes with their account.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from snapshots.feeds import FEEDS
from tracking.models import ListStatus

FEED_CHOICES = [(name, f"{name.capitalize()} ({feed.description})") for name, feed in FEEDS.items()]


def webhook_secret_new() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def feed_key_new() -> str:
    return secrets.token_urlsafe(24)


class AlertRule(models.Model):
    """A person's rule: tell me when a title in this scope does this in this feed."""

    class Kind(models.TextChoices):
        ENTERED_TOP = "entered_top", "Enters the top N"
        LEFT_TOP = "left_top", "Leaves the top N"
        CLIMBED = "climbed", "Climbs at least N feed ranks"
        FELL = "fell", "Falls at least N feed ranks"
        SCORE_MOVED = "score_moved", "Score moves at least N points"
        NEW_BEST = "new_best", "Reaches its best feed rank yet"

    class Scope(models.TextChoices):
        TITLE = "title", "One title"
        LIST = "list", "Titles on my list"
        FEED = "feed", "Every title in the feed"

    class Email(models.TextChoices):
        OFF = "off", "No e-mail"
        INSTANT = "instant", "An e-mail at once"
        DIGEST = "digest", "A daily digest"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_rules")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    feed = models.CharField(max_length=32, choices=FEED_CHOICES, default="top")
    # N: the top N (entered, left), feed ranks (climbed, fell) or score points (score moved); unused by new best.
    threshold = models.DecimalField(max_digits=6, decimal_places=2, default=10)
    # Climbed, fell and score moved compare with the snapshot 7 or 30 days back, as the trend tables do.
    window = models.PositiveSmallIntegerField(choices=[(7, "7 days"), (30, "30 days")], default=7)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.TITLE)
    anime = models.ForeignKey(
        "snapshots.Anime", on_delete=models.CASCADE, null=True, blank=True, related_name="alert_rules"
    )
    # The list statuses a "my list" rule watches; empty means every status.
    statuses = models.JSONField(default=list, blank=True)
    email = models.CharField(max_length=8, choices=Email.choices, default=Email.INSTANT)
    webhooks: models.ManyToManyField[WebhookEndpoint, Any] = models.ManyToManyField(
        "WebhookEndpoint", blank=True, related_name="rules"
    )
    atom = models.BooleanField("in my Atom feed", default=True)
    active = models.BooleanField(default=True)
    # The last snapshot day this rule was evaluated on. Null: never, so its first evaluation takes the
    # state before that day from the history (a new rule reports what starts, not what already holds).
    evaluated_on = models.DateField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(scope="title") | Q(anime__isnull=False),
                name="alert_rule_title_scope_has_title",
                violation_error_message="Pick the title this rule watches.",
            ),
            models.CheckConstraint(
                condition=Q(threshold__gt=0),
                name="alert_rule_threshold_positive",
                violation_error_message="The threshold must be above 0.",
            ),
        ]
        indexes = [models.Index(fields=["feed", "active"])]

    def __str__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        """The rule in words: "Frieren climbs at least 5 feed ranks in 7 days (top)"."""
        n = f"{self.threshold.normalize():f}" if self.threshold is not None else "N"
        what = {
            self.Kind.ENTERED_TOP: f"enters the top {n}",
            self.Kind.LEFT_TOP: f"leaves the top {n}",
            self.Kind.CLIMBED: f"climbs at least {n} places in {self.window} days",
            self.Kind.FELL: f"falls at least {n} places in {self.window} days",
            self.Kind.SCORE_MOVED: f"moves at least {n} score points in {self.window} days",
            self.Kind.NEW_BEST: "reaches its best place yet",
        }[self.Kind(self.kind)]
        if self.scope == self.Scope.TITLE:
            who = self.anime.title if self.anime_id and self.anime else "A title"
        elif self.scope == self.Scope.LIST:
            labels = [ListStatus(s).label.lower() for s in self.statuses if s in ListStatus.values]
            who = "A title on my list" + (f" ({', '.join(labels)})" if labels else "")
        else:
            who = "Any title"
        return f"{who} {what} in {self.feed}"


class AlertState(models.Model):
    """The rule's condition holds for this title (since `since`): a rule fires when it starts, never while it holds."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="states")
    anime = models.ForeignKey("snapshots.Anime", on_delete=models.CASCADE, related_name="+")
    since = models.DateField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "anime"], name="alert_state_unique_rule_anime")]

    def __str__(self) -> str:
        return f"rule {self.rule_id} · {self.anime_id} since {self.since}"


class AlertEvent(models.Model):
    """A rule fired for a title on a snapshot day: at most once per (rule, title, day)."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="events")
    anime = models.ForeignKey("snapshots.Anime", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    # What the event says: the numbers that made the rule fire (rank, previous_rank, change, score, ...).
    data = models.JSONField(default=dict)
    message = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-day", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "anime", "day"], name="alert_event_once_per_rule_title_day")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.message}"


class WebhookEndpoint(models.Model):
    """A URL that receives a person's alerts, signed per the Standard Webhooks spec with its own secret."""

    class Preset(models.TextChoices):
        STANDARD = "standard", "Standard Webhooks JSON"
        DISCORD = "discord", "Discord"
        SLACK = "slack", "Slack"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoints")
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    preset = models.CharField(max_length=8, choices=Preset.choices, default=Preset.STANDARD)
    secret = models.CharField(max_length=64, default=webhook_secret_new, editable=False)
    # After a rotation, requests are signed with the old secret too for a day (Standard Webhooks allows
    # several signatures), so the receiver can switch over without dropping a message.
    previous_secret = models.CharField(max_length=64, blank=True, editable=False)
    rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    active = models.BooleanField(default=True)
    # Why the endpoint stopped receiving (a 410 from the receiver), shown to its owner.
    disabled_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.url})"


class Delivery(models.Model):
    """One event sent on one channel (or a test send): its attempts, outcome and next try."""

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        DIGEST = "digest", "Daily digest"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_deliveries")
    # Null for a test send.
    event = models.ForeignKey(AlertEvent, on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    next_try_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            # A re-run or a redelivered task never sends an event twice on a channel.
            models.UniqueConstraint(
                fields=["event", "channel"],
                condition=Q(event__isnull=False, endpoint__isnull=True),
                name="delivery_once_per_event_channel",
            ),
            models.UniqueConstraint(
                fields=["event", "endpoint"],
                condition=Q(event__isnull=False, endpoint__isnull=False),
                name="delivery_once_per_event_endpoint",
            ),
        ]
        indexes = [models.Index(fields=["status", "next_try_at"], name="delivery_due")]

    def __str__(self) -> str:
        return f"{self.channel} {self.status} ({self.attempts} attempts)"


class FeedKey(models.Model):
    """The secret in a person's private Atom feed URL; resetting it makes the old URL answer 404."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_feed_key")
    key = models.CharField(max_length=64, unique=True, default=feed_key_new)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user}'s private feed"
