"""Every write to a person's list, with its rules: pages, the API, imports and the admin all come through here.

A broken rule raises django's ValidationError with a message per field, which forms show beside the field
and the API returns as a 400 naming it; nothing is written then. Each change is logged as ListEvents.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from snapshots.models import Anime
from snapshots.services import AnimeNotOnMal, AnimeUnavailable, anime_fetch
from tracking.mal_xml import MalEntry
from tracking.models import ApiToken, ImportJob, ListEntry, ListEvent, ListStatus, Profile

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


RECENT_SEARCHES = 10


def companion_set(*, user: User, action: str) -> None:
    """ "hide" or "show" the cat, or "dismiss" today's suggestion."""
    if action not in ("hide", "show", "dismiss"):
        raise ValidationError({"action": "Choose hide, show or dismiss."})
    changes: dict[str, Any] = (
        {"suggestion_dismissed_on": timezone.localdate()}
        if action == "dismiss"
        else {"companion_shown": action == "show"}
    )
    Profile.objects.update_or_create(user=user, defaults=changes)


def search_remember(*, user: User, query: str) -> None:
    """Keep `query` (a search's query string) first among the person's last RECENT_SEARCHES searches."""
    with transaction.atomic():
        profile, _ = Profile.objects.select_for_update().get_or_create(user=user)
        profile.recent_searches = [query, *(q for q in profile.recent_searches if q != query)][:RECENT_SEARCHES]
        profile.save(update_fields=["recent_searches"])


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


# Imports ------------------------------------------------------------------------------------------------

IMPORT_BATCH = 500
# Titles AnimeDash does not know yet that one import fetches from Jikan (about a second each at its rate
# limit); the rest are reported, and the next import fetches the next ones.
IMPORT_FETCHES = 50
NOT_FETCHED = "Not known to AnimeDash yet: the next import fetches it from MyAnimeList."
FETCHED_ON_APPLY = "Not known to AnimeDash yet: applying the import fetches it from MyAnimeList."
# Statuses an import leaves alone unless the person chose "overwrite": a finished story stays finished.
FINAL = (ListStatus.COMPLETED, ListStatus.DROPPED)


@dataclass
class ImportPlan:
    """What applying an import would do (a dry run), or did: each title once, with its name."""

    added: list[dict[str, Any]]
    changed: list[dict[str, Any]]
    unchanged: list[dict[str, Any]]
    not_found: list[dict[str, Any]]


def import_plan(*, user: User, items: list[MalEntry], overwrite: bool) -> ImportPlan:
    """The dry run: what importing `items` would add, change, leave alone and not find. Writes nothing."""
    plan = ImportPlan([], [], [], [])
    for batch in _batches(items):
        for item, outcome, _entry, changed in _merge_batch(user=user, items=batch, overwrite=overwrite):
            row = {"mal_id": item.mal_id, "title": item.title}
            if outcome == "added":
                plan.added.append(row | {"status": item.status})
            elif outcome == "changed":
                plan.changed.append(row | {"fields": list(changed)})
            elif outcome == "unchanged":
                plan.unchanged.append(row)
            else:
                plan.not_found.append(row | {"reason": outcome})
    return plan


def import_job_create(*, user: User, file_name: str, items: list[MalEntry], overwrite: bool) -> ImportJob:
    """Keep a parsed file as a dry run the person can look at, then apply (import_job_queue)."""
    return ImportJob.objects.create(
        user=user, file_name=file_name[:255], overwrite=overwrite, entries=[_jsonable_item(item) for item in items]
    )


def import_job_queue(*, job: ImportJob) -> bool:
    """Mark a dry run as queued for a worker, which the caller then asks for (after its transaction commits);
    False if it was queued already, so an import is never applied twice at once."""
    return bool(ImportJob.objects.filter(pk=job.pk, state=ImportJob.State.PREVIEW).update(state=ImportJob.State.QUEUED))


def import_items(job: ImportJob) -> list[MalEntry]:
    return [_item(row) for row in job.entries]


def import_apply(*, job_id: int) -> ImportJob:
    """Apply a queued import in batches, counting as it goes. Titles AnimeDash does not know are reported
    with why, and a later import tries them again. Safe to rerun: a rerun changes nothing more."""
    job = ImportJob.objects.select_related("user").get(pk=job_id)
    ImportJob.objects.filter(pk=job.pk).update(state=ImportJob.State.RUNNING, processed=0, unresolved=[])
    counts = {"added": 0, "changed": 0, "unchanged": 0}
    unresolved: list[dict[str, Any]] = []
    items = import_items(job)
    unknown = _fetch_unknown(items)
    for number, batch in enumerate(_batches(items), start=1):
        with transaction.atomic():
            created, updated, events = [], [], []
            now = timezone.now()
            merged = _merge_batch(user=job.user, items=batch, overwrite=job.overwrite, unknown=unknown)
            for item, outcome, entry, changed in merged:
                if entry is None:
                    unresolved.append({"mal_id": item.mal_id, "title": item.title, "reason": outcome})
                    continue
                if outcome == "added":
                    created.append(entry)
                    events.append(
                        ListEvent(user=job.user, anime_id=item.mal_id, kind="added", to_value=entry.status, at=now)
                    )
                elif outcome == "changed":
                    updated.append(entry)
                    events += _change_events(entry, changed, now)
                counts[outcome] += 1
            ListEntry.objects.bulk_create(created)
            ListEntry.objects.bulk_update(updated, [*EDITABLE, "updated_at"])
            ListEvent.objects.bulk_create(events)
            ImportJob.objects.filter(pk=job.pk).update(processed=min(number * IMPORT_BATCH, len(items)), **counts)
    ImportJob.objects.filter(pk=job.pk).update(
        state=ImportJob.State.DONE, unresolved=unresolved, finished_at=timezone.now(), **counts
    )
    job.refresh_from_db()
    return job


def import_fail(*, job_id: int, error: str) -> None:
    ImportJob.objects.filter(pk=job_id).update(state=ImportJob.State.FAILED, error=error, finished_at=timezone.now())


Changes = dict[str, tuple[Any, Any]]  # field -> (before, after)


def _fetch_unknown(items: list[MalEntry]) -> dict[int, str]:
    """Fetch the titles AnimeDash does not know yet (up to IMPORT_FETCHES); why each other one is missing."""
    known = set(Anime.objects.filter(mal_id__in=[item.mal_id for item in items]).values_list("mal_id", flat=True))
    missing = [item.mal_id for item in items if item.mal_id not in known]
    reasons = dict.fromkeys(missing[IMPORT_FETCHES:], NOT_FETCHED)
    for mal_id in missing[:IMPORT_FETCHES]:
        try:
            anime_fetch(mal_id=mal_id)
        except AnimeNotOnMal:
            reasons[mal_id] = "No such title on MyAnimeList."
        except AnimeUnavailable as exc:
            reasons[mal_id] = f"{exc} The next import tries again."
    return reasons


def _merge_batch(
    *, user: User, items: list[MalEntry], overwrite: bool, unknown: Mapping[int, str] | None = None
) -> list[tuple[MalEntry, str, ListEntry | None, Changes]]:
    """Each item's outcome ("added", "changed", "unchanged" or why it cannot be applied), the entry as it
    would be after the import, and the fields that change. Two queries per batch. `unknown`: why titles
    AnimeDash does not know could not be fetched (the dry run fetches nothing)."""
    ids = [item.mal_id for item in items]
    titles = Anime.objects.in_bulk(ids)
    current = {entry.anime_id: entry for entry in ListEntry.objects.filter(user=user, anime_id__in=ids)}
    results: list[tuple[MalEntry, str, ListEntry | None, Changes]] = []
    for item in items:
        anime = titles.get(item.mal_id)
        if anime is None:
            reason = (unknown or {}).get(
                item.mal_id, "Not known to AnimeDash yet: applying fetches it from MyAnimeList."
            )
            results.append((item, reason, None, {}))
            continue
        entry = current.get(item.mal_id)
        values = _merged(entry, item, overwrite=overwrite)
        if entry is None:
            entry = ListEntry(user=user, anime=anime, **values)
            changed = {name: (None, value) for name, value in values.items()}
        else:
            changed = {name: (getattr(entry, name), new) for name, new in values.items() if getattr(entry, name) != new}
            entry.anime = anime
            for name, (_before, after) in changed.items():
                setattr(entry, name, after)
            entry.updated_at = timezone.now()
        try:
            list_entry_check(entry=entry)
        except ValidationError as exc:
            reason = "; ".join(f"{name}: {' '.join(problems)}" for name, problems in exc.message_dict.items())
            results.append((item, reason, None, {}))
            continue
        outcome = "added" if item.mal_id not in current else "changed" if changed else "unchanged"
        results.append((item, outcome, entry, changed))
    return results


def _merged(entry: ListEntry | None, item: MalEntry, *, overwrite: bool) -> dict[str, Any]:
    """The merge rules: a final status stays unless overwriting; the larger progress; the earlier start and
    the later finish; a date the file does not know stays as it was (an import never invents one)."""
    from_file = {
        "status": item.status,
        "score": item.score,
        "progress": item.watched_episodes,
        "rewatching": item.rewatching,
        "times_rewatched": item.times_watched,
        "started_on": item.started_on,
        "finished_on": item.finished_on,
        "notes": item.notes,
    }
    if entry is None:
        return from_file
    keep_status = entry.status in FINAL and item.status != entry.status and not overwrite
    return {
        "status": entry.status if keep_status else item.status,
        "score": item.score if item.score is not None else entry.score,
        "progress": max(entry.progress, item.watched_episodes),
        "rewatching": item.rewatching,
        "times_rewatched": max(entry.times_rewatched, item.times_watched),
        "started_on": min(filter(None, (entry.started_on, item.started_on)), default=None),
        "finished_on": max(filter(None, (entry.finished_on, item.finished_on)), default=None),
        "notes": item.notes or entry.notes,
    }


def _change_events(entry: ListEntry, changed: Changes, at: dt.datetime) -> list[ListEvent]:
    return [
        ListEvent(
            user=entry.user,
            anime=entry.anime,
            kind=LOGGED[name],
            from_value="" if before is None else str(before),
            to_value="" if after is None else str(after),
            at=at,
        )
        for name, (before, after) in changed.items()
        if name in LOGGED
    ]


def _batches(items: list[MalEntry]) -> list[list[MalEntry]]:
    return [items[start : start + IMPORT_BATCH] for start in range(0, len(items), IMPORT_BATCH)]


def _jsonable_item(item: MalEntry) -> dict[str, Any]:
    row = asdict(item)
    for name in ("started_on", "finished_on"):
        row[name] = row[name] and row[name].isoformat()
    return row


def _item(row: dict[str, Any]) -> MalEntry:
    dates = {name: row[name] and dt.date.fromisoformat(row[name]) for name in ("started_on", "finished_on")}
    return MalEntry(**(row | dates))
