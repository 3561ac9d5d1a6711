"""The people side's pages: a person's list, its public copy, and deleting an account.

Every form works without JavaScript: a POST changes one thing through tracking/services.py and redirects
back (post/redirect/get), with what happened, or what was wrong, as a message.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from snapshots.models import Anime
from snapshots.services import AnimeNotOnMal, AnimeUnavailable, anime_fetch, anime_search_mal, mal_search_kept
from tracking import exports, mal_xml, selectors, services
from tracking.forms import (
    AccountDeleteForm,
    ApiTokenForm,
    ImportForm,
    ListEntryForm,
    ListFilterForm,
    ProfileForm,
    StatusForm,
)
from tracking.models import ApiToken, ImportJob, ListStatus, Profile
from tracking.stats import person_stats
from tracking.tasks import import_apply as import_apply_task

PAGE_SIZE = 100
UNDO_KEY = "tracking_undo"


@login_required
@require_safe
def my_list(request: HttpRequest) -> HttpResponse:
    profile = Profile.objects.filter(user=_me(request)).first()
    return render(
        request,
        "tracking/my_list.html",
        {
            **_list_context(request, _me(request)),
            "statuses": ListStatus.choices,
            "scores": range(10, 0, -1),
            "undo": request.session.get(UNDO_KEY),
            "list_public": bool(profile and profile.list_public),
            "companion_shown": profile is None or profile.companion_shown,
        },
    )


@login_required
@require_safe
def my_stats(request: HttpRequest) -> HttpResponse:
    return _stats_page(request, _me(request), own=True)


@require_safe
def public_stats(request: HttpRequest, username: str) -> HttpResponse:
    """A person's stats for anyone, when they made their list public (else a 404, as if there were none)."""
    person = _public_person(request, username)
    if person is None:
        return render(request, "404.html", status=404)
    return _stats_page(request, person, own=person == request.user)


def _stats_page(request: HttpRequest, person: Any, *, own: bool) -> HttpResponse:
    stats = person_stats(user=person)
    charts = _stats_charts(stats)
    context = {"person": person, "own": own, "stats": stats, "chart_data": charts, "summaries": _summaries(charts)}
    return render(request, "tracking/stats.html", context)


def _stats_charts(stats: dict[str, Any]) -> dict[str, Any]:
    """What static/js/stats.js draws; the page shows the same numbers in tables."""
    return {
        "statuses": [[label, stats["by_status"][value]] for value, label in ListStatus.choices],
        "genres": [[row["name"], row["count"]] for row in stats["top_genres"]],
        "scores": [[score, count] for score, count in stats["score_distribution"].items()],
        "activity": [[row["month"], row["events"], row["episodes"]] for row in stats["activity"]],
    }


def _summaries(charts: dict[str, Any]) -> dict[str, str]:
    """Each chart in one sentence, for those who do not see it."""

    def most(rows: list[list[Any]], i: int = 1) -> list[Any] | None:
        counted = [row for row in rows if row[i]]
        return max(counted, key=lambda row: row[i]) if counted else None

    status, genre, score, month = (most(charts[name]) for name in ("statuses", "genres", "scores", "activity"))
    return {
        "statuses": f"Most titles are {status[0].lower()} ({status[1]})." if status else "",
        "genres": f"The genre met most often is {genre[0]} ({genre[1]} titles)." if genre else "No genre known yet.",
        "scores": f"The score given most often is {score[0]} ({score[1]} titles)." if score else "No scores yet.",
        "activity": f"The busiest month was {month[0]}, with {month[1]} changes." if month else "No changes this year.",
    }


def public_list(request: HttpRequest, username: str) -> HttpResponse:
    """A person's list for anyone to see, when they made it public (else a 404, as if there were none)."""
    person = _public_person(request, username)
    if person is None:
        return render(request, "404.html", status=404)
    return render(request, "tracking/public_list.html", {"person": person, **_list_context(request, person)})


def _public_person(request: HttpRequest, username: str) -> Any:
    """The person named, when their list is public or it is their own; None otherwise (as if there were none)."""
    person = get_object_or_404(get_user_model(), username=username)
    if person != request.user and not Profile.objects.filter(user=person, list_public=True).exists():
        return None
    return person


def _list_context(request: HttpRequest, person: Any) -> dict[str, Any]:
    """A page of the person's list, in the status tab and sort the query asks for (bad values: the defaults)."""
    filters = ListFilterForm(request.GET)
    chosen = filters.cleaned_data if filters.is_valid() else {}
    status, sort = chosen.get("status") or "", chosen.get("sort") or "updated"
    entries = selectors.list_entries(user=person, status=status, sort=sort)
    return {
        "page": Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page")),
        "status": status,
        "sort": sort,
        "sorts": filters.fields["sort"].choices,  # type: ignore[attr-defined]
        "tabs": _tabs(selectors.status_counts(user=person)),
    }


@login_required
@require_POST
def entry_update(request: HttpRequest, mal_id: int) -> HttpResponse:
    """Save one row of the list: its fields, or one more episode watched ("+1")."""
    anime = get_object_or_404(Anime, mal_id=mal_id)
    entry = selectors.statuses_of(user=_me(request), anime_ids=[mal_id]).get(mal_id)
    if "increment" in request.POST:
        changes: dict[str, Any] = {"progress": (entry.progress if entry else 0) + 1}
    else:
        form = ListEntryForm(request.POST, instance=entry)
        if not form.is_valid():
            _say_errors(request, anime, form.errors.get_json_data())
            return _back(request)
        # Only what the form sent: a row without JavaScript sends every field, a script only the one changed.
        changes = {name: form.cleaned_data[name] for name in form.fields if name in request.POST}
    _save(request, anime, changes)
    return _back(request)


@login_required
@require_POST
def entry_status(request: HttpRequest, mal_id: int) -> HttpResponse:
    """The quick control: add a title to the list (any MyAnimeList title: fetched if new here), or change its
    status. Its script asks for JSON and changes the control in place; without it the page reloads with a
    message."""
    try:
        anime = anime_fetch(mal_id=mal_id)
    except (AnimeNotOnMal, AnimeUnavailable) as exc:
        reason = str(exc) if isinstance(exc, AnimeUnavailable) else "No such title on MyAnimeList."
        if "application/json" in request.headers.get("Accept", ""):
            return JsonResponse({"errors": {"mal_id": [reason]}}, status=404 if isinstance(exc, AnimeNotOnMal) else 503)
        messages.error(request, reason)
        return _back(request)
    form = StatusForm(request.POST)
    wants_json = "application/json" in request.headers.get("Accept", "")
    if not form.is_valid():
        if wants_json:
            return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
        _say_errors(request, anime, form.errors.get_json_data())
        return _back(request)
    if wants_json:
        try:
            entry = services.list_entry_save(user=_me(request), anime=anime, changes=form.cleaned_data)
        except ValidationError as exc:
            return JsonResponse({"errors": exc.message_dict}, status=400)
        return JsonResponse({"status": entry.status, "said": f"{entry.get_status_display()}: saved."})
    _save(request, anime, {"status": form.cleaned_data["status"]})
    return _back(request)


@login_required
@require_POST
def entry_remove(request: HttpRequest, mal_id: int) -> HttpResponse:
    anime = get_object_or_404(Anime, mal_id=mal_id)
    removed = services.list_entry_remove(user=_me(request), anime=anime)
    if removed is not None:
        request.session[UNDO_KEY] = {"mal_id": anime.mal_id, "title": anime.title, "values": _jsonable(removed.values)}
        messages.success(request, f"Removed {anime.title} from your list.")
    return _back(request)


@login_required
@require_POST
def entry_undo(request: HttpRequest) -> HttpResponse:
    """Put back the entry removed last, as it was."""
    undo = request.session.pop(UNDO_KEY, None)
    if undo:
        anime = get_object_or_404(Anime, mal_id=undo["mal_id"])
        values = {
            name: dt.date.fromisoformat(value) if name.endswith("_on") and value else value
            for name, value in undo["values"].items()
        }
        _save(request, anime, values, said=f"{anime.title} is back on your list.")
    return _back(request)


@login_required
@require_POST
def companion(request: HttpRequest) -> HttpResponse:
    """Hide or show the cat, or say "not today" to its suggestion."""
    try:
        services.companion_set(user=_me(request), action=request.POST.get("action", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return _back(request)


@login_required
@require_POST
def list_visibility(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST)
    form.is_valid()
    public = bool(form.cleaned_data.get("list_public"))
    Profile.objects.update_or_create(user=_me(request), defaults={"list_public": public})
    where = reverse("tracking:public-list", args=[_me(request).get_username()])
    messages.success(request, f"Your list is public at {where}." if public else "Your list is private.")
    return redirect("tracking:my-list")


@login_required
def list_import(request: HttpRequest) -> HttpResponse:
    """Upload a MyAnimeList export: a bad file is refused with why; a good one becomes a dry run to look at."""
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            export = mal_xml.parse_export(upload.read(mal_xml.MAX_UPLOAD_BYTES + 1))
        except mal_xml.MalFileError as exc:
            form.add_error("file", str(exc))
        else:
            if not export.entries:
                form.add_error("file", "The file holds no anime entries that could be read.")
            else:
                job = services.import_job_create(
                    user=_me(request),
                    file_name=upload.name or "animelist.xml",
                    items=export.entries,
                    overwrite=form.cleaned_data["overwrite"],
                )
                request.session[f"import_rejected_{job.pk}"] = [asdict(r) for r in export.rejected]
                return redirect("tracking:import-job", job_id=job.pk)
    jobs = ImportJob.objects.filter(user=_me(request)).defer("entries")[:10]
    return render(request, "tracking/import.html", {"form": form, "jobs": jobs})


@login_required
def import_job(request: HttpRequest, job_id: int) -> HttpResponse:
    """A dry run (what applying would do, with the button to apply it) or an applied import's progress."""
    job = get_object_or_404(ImportJob, pk=job_id, user=_me(request))
    if request.method == "POST":
        if services.import_job_queue(job=job):
            transaction.on_commit(lambda: import_apply_task.delay(job.pk))
            messages.success(request, f"Importing {job.file_name}.")
        return redirect("tracking:import-job", job_id=job.pk)
    plan = None
    if job.state == ImportJob.State.PREVIEW:
        plan = services.import_plan(user=_me(request), items=services.import_items(job), overwrite=job.overwrite)
    rejected = request.session.get(f"import_rejected_{job.pk}", [])
    return render(request, "tracking/import_job.html", {"job": job, "plan": plan, "rejected": rejected})


@login_required
@require_safe
def list_export(request: HttpRequest) -> HttpResponse:
    fmt = request.GET.get("format", "xml")
    if fmt not in exports.FORMATS:
        messages.error(request, f"Export as one of: {', '.join(exports.FORMATS)}.")
        return redirect("tracking:my-list")
    file = exports.list_export(user=_me(request), fmt=fmt)
    response = HttpResponse(file.body, content_type=file.content_type)
    response["Content-Disposition"] = f'attachment; filename="{file.filename}"'
    return response


# One MyAnimeList search (a Jikan request) per person this often; searches already made cost nothing.
MAL_SEARCH_EVERY = 5


@login_required
@require_safe
def search_myanimelist(request: HttpRequest) -> HttpResponse:
    """Titles MyAnimeList has that AnimeDash may not know yet, found through Jikan, to open or add."""
    query = " ".join(request.GET.get("q", "").split())[:200]
    titles: list[Anime] = []
    problem = ""
    if query:
        waited = mal_search_kept(q=query) or cache.add(f"mal-search-wait:{_me(request).pk}", True, MAL_SEARCH_EVERY)
        if not waited:
            problem = f"One MyAnimeList search every {MAL_SEARCH_EVERY} seconds: try again in a moment."
        else:
            try:
                titles = anime_search_mal(q=query)
            except AnimeUnavailable as exc:
                problem = str(exc)
    return render(request, "tracking/search_myanimelist.html", {"query": query, "titles": titles, "problem": problem})


@login_required
def api_tokens(request: HttpRequest) -> HttpResponse:
    """The person's API tokens: create one (shown this once), see when each was last used, revoke one."""
    form = ApiTokenForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            _token, created = services.api_token_create(user=_me(request), name=form.cleaned_data["name"])
        except ValidationError as exc:
            form.add_error(None, exc)
    tokens = ApiToken.objects.filter(user=_me(request))
    return render(request, "tracking/api_tokens.html", {"form": form, "created": created, "tokens": tokens})


@login_required
@require_POST
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    if services.api_token_revoke(user=_me(request), token_id=token_id):
        messages.success(request, "The token is revoked: requests with it are refused from now on.")
    return redirect("tracking:api-tokens")


@login_required
def account_delete(request: HttpRequest) -> HttpResponse:
    """Delete the account and everything in it, once the person has typed their password again."""
    form = AccountDeleteForm(request.POST or None, user=_me(request))
    if request.method == "POST" and form.is_valid():
        user = _me(request)
        logout(request)
        services.account_delete(user=user)
        messages.success(request, "Your account and everything in it are deleted.")
        return redirect("analytics:dashboard")
    return render(request, "tracking/account_delete.html", {"form": form})


def _me(request: HttpRequest) -> User:
    """The signed-in person (these views are behind login_required)."""
    assert isinstance(request.user, User)
    return request.user


def _save(request: HttpRequest, anime: Anime, changes: dict[str, Any], *, said: str = "") -> None:
    try:
        entry = services.list_entry_save(user=_me(request), anime=anime, changes=changes)
    except ValidationError as exc:
        _say_errors(request, anime, {name: [{"message": m} for m in msgs] for name, msgs in exc.message_dict.items()})
        return
    messages.success(request, said or f"{anime.title}: {entry.get_status_display()}, {_progress(entry)}.")


def _progress(entry: Any) -> str:
    return f"{entry.progress}/{entry.anime.episodes or '?'} episodes"


def _say_errors(request: HttpRequest, anime: Anime, errors: dict[str, list[dict[str, str]]]) -> None:
    for name, problems in errors.items():
        for problem in problems:
            label = "" if name == "__all__" else f"{name.replace('_', ' ')}: "
            messages.error(request, f"{anime.title}: {label}{problem['message']}")


def _back(request: HttpRequest) -> HttpResponse:
    """Back where the form was, when that is on this site; else to the list."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return HttpResponseRedirect(target)
    return redirect("tracking:my-list")


def _tabs(counts: dict[str, int]) -> list[tuple[str, str, int]]:
    return [("", "All", counts["all"]), *[(value, label, counts[value]) for value, label in ListStatus.choices]]


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value.isoformat() if isinstance(value, dt.date) else value for name, value in values.items()}
