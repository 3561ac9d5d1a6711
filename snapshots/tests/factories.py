from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from snapshots.models import Anime, EtlRun, Genre, Rejection, Snapshot, SnapshotDay, Studio


class GenreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Genre
        django_get_or_create = ("mal_id",)

    mal_id = factory.Sequence(lambda n: 1000 + n)
    name = factory.Sequence(lambda n: f"Genre {n}")
    kind = Genre.Kind.GENRE


class StudioFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Studio
        django_get_or_create = ("mal_id",)

    mal_id = factory.Sequence(lambda n: 5000 + n)
    name = factory.Sequence(lambda n: f"Studio {n}")


class AnimeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Anime
        django_get_or_create = ("mal_id",)
        skip_postgeneration_save = True

    mal_id = factory.Sequence(lambda n: 100_000 + n)
    title = factory.Faker("sentence", nb_words=3)
    type = "TV"
    status = "Finished Airing"
    season = "spring"
    year = 2020
    first_seen = dt.date(2024, 1, 1)
    last_seen = dt.date(2024, 1, 1)
    score = Decimal("7.50")
    members = 10_000
    popularity = 500
    favorites = 100

    @factory.post_generation
    def genres(self, create: bool, extracted: list[Genre] | None, **kwargs: object) -> None:
        if create and extracted:
            self.genres.set(extracted)


class EtlRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EtlRun

    feed = "top"
    taken_on = dt.date(2024, 1, 1)
    trigger = EtlRun.Trigger.CLI
    status = EtlRun.Status.SUCCESS
    finished_at = factory.LazyFunction(timezone.now)


class SnapshotFactory(factory.django.DjangoModelFactory):
    """One row of history. Pass `run=None` to skip creating a run for it."""

    class Meta:
        model = Snapshot
        skip_postgeneration_save = True

    anime = factory.SubFactory(AnimeFactory)
    feed = "top"
    taken_on = dt.date(2024, 1, 1)
    position = factory.Sequence(lambda n: n + 1)
    rank = factory.SelfAttribute("position")
    score = Decimal("8.00")
    members = 10_000
    popularity = 100
    favorites = 10
    run = factory.SubFactory(
        EtlRunFactory, feed=factory.SelfAttribute("..feed"), taken_on=factory.SelfAttribute("..taken_on")
    )

    @factory.post_generation
    def day(self, create: bool, extracted: object, **kwargs: object) -> None:
        """Keep the feed's day list as the ETL does: one SnapshotDay per (feed, day) with its row count."""
        if create:
            rows = Snapshot.objects.filter(feed=self.feed, taken_on=self.taken_on).count()
            SnapshotDay.objects.update_or_create(feed=self.feed, taken_on=self.taken_on, defaults={"rows": rows})


class RejectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rejection

    run = factory.SubFactory(EtlRunFactory)
    mal_id = 1
    field = "members"
    reason = "must not be negative"
    value = "-1"
