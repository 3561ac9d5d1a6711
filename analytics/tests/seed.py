"""A small, deterministic ranking history for the page tests (views and browser)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from snapshots.models import Genre, Snapshot, SnapshotDay
from snapshots.tests.factories import AnimeFactory, EtlRunFactory, GenreFactory

TODAY = timezone.now().date()


def seed_history(*, days=40, titles=12, feed="top", end=TODAY):
    """`titles` anime ranked in `feed` on each of `days` days ending at `end`; ranks rotate every 5 days."""
    action = GenreFactory(mal_id=1, name="Action")
    drama = GenreFactory(mal_id=8, name="Drama")
    school = GenreFactory(mal_id=23, name="School", kind=Genre.Kind.THEME)
    anime = [
        AnimeFactory(
            mal_id=1000 + i,
            title=f"Series {i:02d}",
            year=2020 + i % 3,
            season=["winter", "spring", "summer", "fall"][i % 4],
            genres=[action] + ([drama] if i % 2 else []) + ([school] if i % 3 == 0 else []),
            image_url="https://cdn.myanimelist.net/images/anime/0/cover.jpg",
        )
        for i in range(titles)
    ]
    rows = []
    for offset in range(days):
        day = end - dt.timedelta(days=days - 1 - offset)
        run = EtlRunFactory(feed=feed, taken_on=day)
        shift = offset // 5
        for i, title in enumerate(anime):
            rank = (i + shift) % titles + 1
            rows.append(
                Snapshot(
                    anime=title,
                    feed=feed,
                    taken_on=day,
                    position=rank,
                    rank=rank,
                    score=Decimal("9.00") - Decimal(rank) / 20 + Decimal(offset) / 100,
                    members=10_000 + 100 * offset + i,
                    popularity=rank,
                    favorites=10 * i,
                    run=run,
                )
            )
    Snapshot.objects.bulk_create(rows)
    # As the ETL does, record each day the feed has data.
    SnapshotDay.objects.bulk_create(
        SnapshotDay(feed=feed, taken_on=end - dt.timedelta(days=days - 1 - offset), rows=titles)
        for offset in range(days)
    )
    return anime
