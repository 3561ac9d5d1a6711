"""What the read side keeps beside the history: each feed's biggest moves per day, read instead of two whole days."""

from __future__ import annotations

from django.db import models


class FeedMoves(models.Model):
    """The biggest moves of a feed between a day D and its baseline B in one window: the first MOVES_KEPT of each list.

    Comparing two whole days of the whole catalogue (28,000 titles) costs tens of milliseconds a list; these
    rows make a trend list one indexed read. They are written once a day's snapshot is committed
    (analytics.apps) and trusted only while D's and B's snapshot days are the ones they were computed from
    (their `loaded_at`) and no hand edit came since (`edits`, the newest DataEdit id); otherwise the
    selectors compare the days themselves, with the same query.
    """

    feed = models.CharField(max_length=32)
    taken_on = models.DateField()
    window = models.PositiveSmallIntegerField()
    baseline = models.DateField()
    day_loaded_at = models.DateTimeField()
    baseline_loaded_at = models.DateTimeField()
    edits = models.BigIntegerField()
    # Each a list of [mal_id, feed rank, previous feed rank, MAL rank, score, previous score], in list order.
    climbers = models.JSONField()
    fallers = models.JSONField()
    gains = models.JSONField()

    class Meta:
        verbose_name_plural = "feed moves"
        constraints = [
            models.UniqueConstraint(fields=["feed", "taken_on", "window"], name="feedmoves_unique_feed_day_window")
        ]

    def __str__(self) -> str:
        return f"{self.feed} {self.taken_on} vs {self.baseline}"
