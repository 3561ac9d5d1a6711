"""Every write to a person's list, with its rules: pages, the API, imports and the admin all come through here.

A broken rule raises django's ValidationError with a message per field, which forms show beside the field
and the API returns as a 400 naming it; nothing is written then. Each change is logged as ListEvents.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from snapshots.models import Anime
from tracking.models import ApiToken, ListEntry, ListEvent, ListStatus

EDITABLE = ("status", "score", "progress", "rewatching", "times_rewatched", "started_on", "finished_on", "notes")
LOGGED = {"status": ListEvent.Kind.STATUS, "score": ListEvent.Kind.SCORE, "progress": ListEvent.Kind.PROGRESS}
NOTES_MAX = 5000
TOKEN_PREFIX = "ad_"


@dataclass(frozen=True)
class Removed:
    """What a removed entry held, so the person can put it back (undo)."""

    anime_id: int
    values: dict[str, Any]


def list_entry_save(*, user: User, anime: Anime, changes: Mapping[str, Any]) -> ListEntry:
    """Add `anime` to the person's list or change its entry. A new entry is "plan to watch" unless told.

    Completing a title sets its progress to the episode count (when known) and its finish date to today
    (when empty).
    """
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValidationError({name: "This field cannot be changed." for name in sorted(unknown)})
    with transaction.atomic():
        entry = ListEntry.objects.select_for_update().filter(user=user, anime=anime).first()
        created = entry is None
        if entry is None:
            entry = ListEntry(user=user, anime=anime, status=ListStatus.PLAN_TO_WATCH)
        before = {name: getattr(entry, name) for name in LOGGED}
        for name, value in changes.items():
            setattr(entry, name, value)
        if (
            "status" in changes
            and changes["status"] == ListStatus.COMPLETED
            and before["status"] != ListStatus.COMPLETED
        ):
            _complete(entry)
        list_entry_check(entry=entry)
        entry.save()
        _log(entry, before, created=created)
    return entry


def list_entry_remove(*, user: User, anime: Anime) -> Removed | None:
    """Take `anime` off the person's list; returns what it held (None when it was not there)."""
    with transaction.atomic():
        entry = ListEntry.objects.select_for_update().filter(user=user, anime=anime).first()
        if entry is None:
            return None
        removed = Removed(anime_id=anime.pk, values={name: getattr(entry, name) for name in EDITABLE})
        entry.delete()
        ListEvent.objects.create(
            user=user, anime=anime, kind=ListEvent.Kind.REMOVED, from_value=removed.values["status"], at=timezone.now()
        )
    return removed


def account_delete(*, user: User) -> None:
    """Delete the account and every personal row with it (list, events, imports, tokens, e-mail addresses,
    two-factor devices): all of them point at the user with ON DELETE CASCADE."""
    user.delete()


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """A new token for the person: (its row, the token itself, which is never stored and shown only now)."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the token a name, so you can tell it from the others."})
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name[:100], digest=token_digest(raw), prefix=raw[:10])
    return token, raw


def api_token_revoke(*, user: User, token_id: int) -> bool:
    """Revoke one of the person's tokens; False when they have no such token."""
    deleted, _ = ApiToken.objects.filter(user=user, pk=token_id).delete()
    return bool(deleted)


def token_digest(raw: str) -> str:
    # A token has 256 random bits, so a fast hash is enough: nothing to guess from the digest.
    return hashlib.sha256(raw.encode()).hexdigest()


def _complete(entry: ListEntry) -> None:
    if entry.anime.episodes:
        entry.progress = entry.anime.episodes
    if entry.finished_on is None:
        entry.finished_on = timezone.localdate()


def list_entry_check(*, entry: ListEntry) -> None:
    """Raise ValidationError naming each field of `entry` that breaks a rule."""
    errors: dict[str, str] = {}
    if entry.status not in ListStatus.values:
        errors["status"] = f"Choose one of: {', '.join(ListStatus.values)}."
    if entry.score is not None and not (isinstance(entry.score, int) and 1 <= entry.score <= 10):
        errors["score"] = "Pick a score from 1 to 10, or none."
    if not isinstance(entry.progress, int) or entry.progress < 0:
        errors["progress"] = "Episodes watched is a whole number, 0 or more."
    elif entry.anime.episodes and entry.progress > entry.anime.episodes:
        errors["progress"] = f"{entry.anime.title} has {entry.anime.episodes} episodes."
    if not isinstance(entry.times_rewatched, int) or entry.times_rewatched < 0:
        errors["times_rewatched"] = "Times rewatched is a whole number, 0 or more."
    today = timezone.localdate()
    for name in ("started_on", "finished_on"):
        value = getattr(entry, name)
        if value is not None and not isinstance(value, dt.date):
            errors[name] = "Enter a date as YYYY-MM-DD."
        elif value is not None and value > today:
            errors[name] = "A date cannot be in the future."
    if (
        "started_on" not in errors
        and "finished_on" not in errors
        and entry.started_on
        and entry.finished_on
        and entry.finished_on < entry.started_on
    ):
        errors["finished_on"] = "The finish date is before the start date."
    if len(entry.notes or "") > NOTES_MAX:
        errors["notes"] = f"Notes can be at most {NOTES_MAX} characters."
    if errors:
        raise ValidationError(errors)


def _log(entry: ListEntry, before: Mapping[str, Any], *, created: bool) -> None:
    now = timezone.now()
    events = [ListEvent(user=entry.user, anime=entry.anime, kind=ListEvent.Kind.ADDED, to_value=entry.status, at=now)]
    for name, kind in LOGGED.items():
        old, new = before[name], getattr(entry, name)
        if old != new and not (created and name == "status"):
            events.append(
                ListEvent(
                    user=entry.user,
                    anime=entry.anime,
                    kind=kind,
                    from_value="" if old is None else str(old),
                    to_value="" if new is None else str(new),
                    at=now,
                )
            )
    ListEvent.objects.bulk_create(events if created else events[1:])
