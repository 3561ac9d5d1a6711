"""Atom feeds: public ones per feed and metric for bloggers, and each person's private feed of their alerts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.syndication.views import Feed
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.feedgenerator import Atom1Feed
from django.utils.html import format_html, format_html_join

from alerts.models import AlertEvent, FeedKey
from analytics.cache import cached
from analytics.selectors import trends
from snapshots.feeds import FEEDS
from snapshots.models import SnapshotDay

# Days of history each public feed spans: a reader polling weekly misses nothing.
FEED_DAYS = 7
PER_DAY = 10
# The streak lengths (days in the top 10) worth an entry.
STREAK_MILESTONES = (7, 14, 30, 50, 100, 150, 200, 365, 500, 730, 1000)
METRICS = {
    "climbers-7d": "Biggest climbers over 7 days",
    "climbers-30d": "Biggest climbers over 30 days",
    "fallers-7d": "Biggest fallers over 7 days",
    "fallers-30d": "Biggest fallers over 30 days",
    "new-entries": "New entries to the top 50",
    "streaks": "Top-10 streak milestones",
}


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def _recent_days(feed: str) -> list[dt.date]:
    days = SnapshotDay.objects.filter(feed=feed).order_by("-taken_on").values_list("taken_on", flat=True)
    return list(days[:FEED_DAYS])


def public_items(feed: str, metric: str) -> list[dict[str, Any]]:
    """The entries of a public feed, newest first: one per day for movers, one per title for the others."""
    items: list[dict[str, Any]] = []
    for day in _recent_days(feed):
        if metric.startswith(("climbers", "fallers")):
            window = int(metric.split("-")[1].rstrip("d"))
            select = trends.rank_climbers if metric.startswith("climbers") else trends.rank_fallers
            rows = select(feed=feed, window=window, as_of=day, limit=PER_DAY)["results"]
            if rows:
                verb = "climbers" if metric.startswith("climbers") else "fallers"
                items.append(
                    {
                        "id": f"{feed}/{metric}/{day}",
                        "day": day,
                        "title": f"{feed.capitalize()}: the biggest {verb} over {window} days, {day:%d %B %Y}",
                        "link": reverse("analytics:trending") + f"?feed={feed}",
                        "rows": [
                            f"{row['title']}: #{row['previous_rank']} → #{row['rank']} ({row['change']:+d})"
                            for row in rows
                        ],
                    }
                )
        elif metric == "new-entries":
            rows = trends.new_entries(feed=feed, as_of=day, top=50, limit=100)["results"]
            items.extend(
                {
                    "id": f"{feed}/{metric}/{day}/{row['mal_id']}",
                    "day": day,
                    "title": f"{row['title']} entered the top 50 of {feed} at #{row['rank']}",
                    "link": reverse("analytics:anime-detail", args=[row["mal_id"]]),
                    "rows": [],
                }
                for row in rows
                if row["entered_on"] == day
            )
        else:
            rows = trends.top_streaks(feed=feed, as_of=day, top=10, limit=10)["results"]
            items.extend(
                {
                    "id": f"{feed}/{metric}/{day}/{row['mal_id']}",
                    "day": day,
                    "title": f"{row['title']} has been in the top 10 of {feed} for {row['days']} snapshot days",
                    "link": reverse("analytics:anime-detail", args=[row["mal_id"]]),
                    "rows": [],
                }
                for row in rows
                if row["days"] in STREAK_MILESTONES
            )
    return items


class PublicFeed(Feed):
    """`/feeds/<feed>/<metric>.atom`: the day's biggest movers, new entries and streak milestones."""

    feed_type = Atom1Feed

    def get_object(self, request: HttpRequest, feed: str, metric: str) -> tuple[str, str]:
        if feed not in FEEDS or metric not in METRICS:
            raise Http404("No such feed.")
        return feed, metric

    def title(self, obj: tuple[str, str]) -> str:
        return f"AnimeDash · {FEEDS[obj[0]].description}: {METRICS[obj[1]].lower()}"

    def link(self, obj: tuple[str, str]) -> str:
        return reverse("analytics:trending") + f"?feed={obj[0]}"

    def subtitle(self, obj: tuple[str, str]) -> str:
        return f"From MyAnimeList's rankings, snapshotted daily; the last {FEED_DAYS} snapshot days."

    def items(self, obj: tuple[str, str]) -> list[dict[str, Any]]:
        feed, metric = obj
        return cached(f"atom-{metric}", {"feed": feed}, lambda: public_items(feed, metric))

    def item_title(self, item: dict[str, Any]) -> str:
        return item["title"]

    def item_description(self, item: dict[str, Any]) -> str:
        if not item["rows"]:
            return item["title"]
        return format_html("<ol>{}</ol>", format_html_join("", "<li>{}</li>", ((row,) for row in item["rows"])))

    def item_link(self, item: dict[str, Any]) -> str:
        return item["link"]

    def item_guid(self, item: dict[str, Any]) -> str:
        return f"tag:animedash,{item['day']}:{item['id']}"

    item_guid_is_permalink = False

    def item_updateddate(self, item: dict[str, Any]) -> dt.datetime:
        return _at(item["day"])

    def item_pubdate(self, item: dict[str, Any]) -> dt.datetime:
        return _at(item["day"])


class PrivateFeed(Feed):
    """`/feeds/me/<key>.atom`: a person's alerts, for their feed reader. The key is the only credential."""

    feed_type = Atom1Feed
    title = "AnimeDash · my alerts"
    subtitle = "What your alert rules found in MyAnimeList's rankings."

    def __call__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().__call__(request, *args, **kwargs)
        # The URL is the credential: no shared cache keeps the answer, no search engine lists it.
        patch_cache_control(response, private=True, no_store=True)
        response["X-Robots-Tag"] = "noindex"
        return response

    def get_object(self, request: HttpRequest, key: str) -> FeedKey:
        return get_object_or_404(FeedKey.objects.select_related("user"), key=key)

    def link(self, obj: FeedKey) -> str:
        return reverse("alerts:rules")

    def items(self, obj: FeedKey) -> QuerySet[AlertEvent]:
        return AlertEvent.objects.filter(rule__user=obj.user, rule__atom=True).order_by("-day", "-id")[:50]

    def item_title(self, item: AlertEvent) -> str:
        return item.message

    def item_description(self, item: AlertEvent) -> str:
        return item.message

    def item_link(self, item: AlertEvent) -> str:
        return reverse("analytics:anime-detail", args=[item.anime_id])

    def item_guid(self, item: AlertEvent) -> str:
        return f"tag:animedash,{item.day}:alert/{item.pk}"

    item_guid_is_permalink = False

    def item_updateddate(self, item: AlertEvent) -> dt.datetime:
        return item.created_at

    def item_pubdate(self, item: AlertEvent) -> dt.datetime:
        return item.created_at
