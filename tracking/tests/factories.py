from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from snapshots.tests.factories import AnimeFactory
from tracking.models import ListEntry, ListStatus

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"fan{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password(PASSWORD)


class ListEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ListEntry

    user = factory.SubFactory(UserFactory)
    anime = factory.SubFactory(AnimeFactory)
    status = ListStatus.WATCHING
