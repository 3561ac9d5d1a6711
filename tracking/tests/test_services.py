"""The list's rules, each with its message, and the log of changes."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.exceptions import ValidationError

from snapshots.tests.factories import AnimeFactory
from tracking import services
from tracking.models import ApiToken, ImportJob, ListEntry, ListEvent, ListStatus
from tracking.tests.factories import ListEntryFactory, UserFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 12, 4)


@pytest.fixture(autouse=True)
def _today():
    with time_machine.travel(dt.datetime(2026, 12, 4, 12, tzinfo=dt.UTC), tick=False):
        yield


def _errors(changes, *, episodes=12):
    anime = AnimeFactory(episodes=episodes, title="Twelve")
    with pytest.raises(ValidationError) as raised:
        services.list_entry_save(user=UserFactory(), anime=anime, changes=changes)
    return raised.value.message_dict


def test_a_new_entry_is_plan_to_watch_and_logged_as_added():
    user, anime = UserFactory(), AnimeFactory()
    entry = services.list_entry_save(user=user, anime=anime, changes={})
    assert entry.status == ListStatus.PLAN_TO_WATCH
    assert list(ListEvent.objects.values_list("kind", "to_value")) == [("added", "plan_to_watch")]


def test_each_change_of_status_score_and_progress_is_logged_from_and_to():
    entry = ListEntryFactory(anime=AnimeFactory(episodes=12))
    changes = {"status": "on_hold", "score": 8, "progress": 3}
    services.list_entry_save(user=entry.user, anime=entry.anime, changes=changes)
    logged = set(ListEvent.objects.values_list("kind", "from_value", "to_value"))
    assert logged == {("status", "watching", "on_hold"), ("score", "", "8"), ("progress", "0", "3")}


def test_an_unchanged_save_logs_nothing():
    entry = ListEntryFactory()
    services.list_entry_save(user=entry.user, anime=entry.anime, changes={"status": entry.status})
    assert not ListEvent.objects.exists()


def test_completing_sets_progress_to_the_episode_count_and_finished_on_to_today():
    entry = ListEntryFactory(anime=AnimeFactory(episodes=24), progress=5)
    done = services.list_entry_save(user=entry.user, anime=entry.anime, changes={"status": "completed"})
    assert (done.progress, done.finished_on) == (24, TODAY)


def test_completing_keeps_a_finish_date_already_set_and_unknown_episode_counts_keep_progress():
    entry = ListEntryFactory(anime=AnimeFactory(episodes=None), progress=5, finished_on=dt.date(2026, 1, 2))
    done = services.list_entry_save(user=entry.user, anime=entry.anime, changes={"status": "completed"})
    assert (done.progress, done.finished_on) == (5, dt.date(2026, 1, 2))


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"score": 11}, "score", "from 1 to 10"),
        ({"score": 0}, "score", "from 1 to 10"),
        ({"progress": -1}, "progress", "0 or more"),
        ({"progress": None}, "progress", "0 or more"),
        ({"progress": 13}, "progress", "Twelve has 12 episodes"),
        ({"status": "binging"}, "status", "Choose one of"),
        ({"started_on": dt.date(2026, 12, 5)}, "started_on", "cannot be in the future"),
        ({"finished_on": dt.date(2027, 1, 1)}, "finished_on", "cannot be in the future"),
        ({"started_on": dt.date(2026, 5, 2), "finished_on": dt.date(2026, 5, 1)}, "finished_on", "before the start"),
        ({"times_rewatched": -2}, "times_rewatched", "0 or more"),
        ({"notes": "x" * 5001}, "notes", "at most 5000"),
        ({"user": 7}, "user", "cannot be changed"),
    ],
)
def test_every_rule_broken_names_its_field_and_writes_nothing(changes, field, words):
    errors = _errors(changes)
    assert field in errors
    assert words in " ".join(errors[field])
    assert not ListEntry.objects.exists()
    assert not ListEvent.objects.exists()


def test_progress_has_no_ceiling_while_the_episode_count_is_unknown():
    entry = services.list_entry_save(user=UserFactory(), anime=AnimeFactory(episodes=None), changes={"progress": 500})
    assert entry.progress == 500


def test_removing_logs_it_and_returns_what_the_entry_held():
    entry = ListEntryFactory(score=7, progress=2)
    removed = services.list_entry_remove(user=entry.user, anime=entry.anime)
    assert removed is not None
    assert removed.values["score"] == 7
    assert not ListEntry.objects.exists()
    assert ListEvent.objects.get().kind == "removed"
    assert services.list_entry_remove(user=entry.user, anime=entry.anime) is None


def test_deleting_an_account_deletes_every_personal_row_and_nobody_elses():
    keep = ListEntryFactory()
    gone = ListEntryFactory()
    services.list_entry_save(user=gone.user, anime=gone.anime, changes={"score": 5})
    services.api_token_create(user=gone.user, name="laptop")
    ImportJob.objects.create(user=gone.user, file_name="animelist.xml")
    services.account_delete(user=gone.user)
    assert list(ListEntry.objects.all()) == [keep]
    assert not ListEvent.objects.filter(user_id=gone.user_id).exists()
    assert not ApiToken.objects.exists()
    assert not ImportJob.objects.exists()


def test_a_token_is_stored_only_as_its_digest_and_can_be_revoked_by_its_owner_only():
    owner, other = UserFactory(), UserFactory()
    token, raw = services.api_token_create(user=owner, name=" laptop ")
    assert raw.startswith("ad_")
    assert len(raw) > 40
    assert token.name == "laptop"
    assert raw not in {token.digest, token.prefix}
    assert token.digest == services.token_digest(raw)
    assert services.api_token_revoke(user=other, token_id=token.pk) is False
    assert services.api_token_revoke(user=owner, token_id=token.pk) is True


def test_a_token_needs_a_name():
    with pytest.raises(ValidationError) as raised:
        services.api_token_create(user=UserFactory(), name="  ")
    assert "name" in raised.value.message_dict
