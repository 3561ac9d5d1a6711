"""The person's own list over the API, under /api/v1/me/: signed in with a session (and its CSRF token) or
a personal API token (`Authorization: Bearer ad_...`). Nobody reaches anyone else's entries: every query
starts from _me(request)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.exceptions import APIException, AuthenticationFailed, ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import BaseParser, FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from snapshots.models import Anime
from snapshots.services import AnimeNotOnMal, AnimeUnavailable, anime_fetch
from tracking import exports, mal_xml, selectors, services
from tracking.companion import companion_for
from tracking.models import ApiToken, ImportJob, ListEntry, ListStatus
from tracking.stats import person_stats
from tracking.tasks import import_apply as import_apply_task

# A token's last use is written at most this often: reads need not write on every request.
LAST_USED_PRECISION = dt.timedelta(minutes=5)


class TitleUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "MyAnimeList cannot be reached right now to fetch this title; try again shortly."
    default_code = "title_unavailable"


class TokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token>` with a personal API token (stored as its SHA-256 only)."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        keyword, _, raw = header.partition(" ")
        if keyword != self.keyword:
            return None
        token = (
            ApiToken.objects.select_related("user")
            .filter(digest=services.token_digest(raw.strip()), user__is_active=True)
            .first()
        )
        if token is None:
            raise AuthenticationFailed("Invalid or revoked token.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class TokenScheme(OpenApiAuthenticationExtension):
    """How the schema shows the personal token: HTTP bearer."""

    target_class = TokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "A personal API token from /my/tokens/."}


class ListPagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 1000


class PersonalApi(APIView):
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]


class EntrySerializer(serializers.Serializer):
    """An entry as the API shows it: the person's fields and the title's."""

    mal_id = serializers.IntegerField(source="anime_id")
    title = serializers.CharField(source="anime.title")
    episodes = serializers.IntegerField(source="anime.episodes", allow_null=True)
    mal_rank = serializers.IntegerField(source="anime.rank", allow_null=True)
    status = serializers.ChoiceField(choices=ListStatus.choices)
    score = serializers.IntegerField(allow_null=True)
    progress = serializers.IntegerField()
    rewatching = serializers.BooleanField()
    times_rewatched = serializers.IntegerField()
    started_on = serializers.DateField(allow_null=True)
    finished_on = serializers.DateField(allow_null=True)
    notes = serializers.CharField(allow_blank=True)
    updated_at = serializers.DateTimeField()


class EntryPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = EntrySerializer(many=True)


class ChangesSerializer(serializers.Serializer):
    """What a person may set on an entry; the rules between fields are the service's."""

    status = serializers.ChoiceField(choices=ListStatus.choices, required=False)
    score = serializers.IntegerField(min_value=1, max_value=10, allow_null=True, required=False)
    progress = serializers.IntegerField(min_value=0, required=False)
    rewatching = serializers.BooleanField(required=False)
    times_rewatched = serializers.IntegerField(min_value=0, max_value=32767, required=False)
    started_on = serializers.DateField(allow_null=True, required=False)
    finished_on = serializers.DateField(allow_null=True, required=False)
    notes = serializers.CharField(allow_blank=True, max_length=services.NOTES_MAX, required=False)


class NewEntrySerializer(ChangesSerializer):
    mal_id = serializers.IntegerField(min_value=1)


class ListFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=ListStatus.choices, required=False)
    sort = serializers.ChoiceField(choices=list(selectors.SORTS), default="updated")
    q = serializers.CharField(required=False, max_length=200, help_text="Words in the title.")


class MyListApi(PersonalApi):
    """The person's list: filter by status or words of the title, sort, page with limit/offset; add a title."""

    @extend_schema(
        parameters=[
            ListFilterSerializer,
            OpenApiParameter(
                "limit", int, description=f"Entries per page (default 100, at most {ListPagination.max_limit})."
            ),
            OpenApiParameter("offset", int, description="Entries to skip."),
        ],
        responses=EntryPageSerializer,
        operation_id="v1_me_list_list",
    )
    def get(self, request: Request) -> Response:
        filters = ListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        chosen = filters.validated_data
        entries = selectors.list_entries(user=_me(request), status=chosen.get("status", ""), sort=chosen["sort"])
        if chosen.get("q"):
            entries = entries.filter(
                Q(anime__title__icontains=chosen["q"]) | Q(anime__search_text__icontains=chosen["q"])
            )
        paginator = ListPagination()
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response(EntrySerializer(page, many=True).data)

    @extend_schema(request=NewEntrySerializer, responses={201: EntrySerializer})
    def post(self, request: Request) -> Response:
        data = NewEntrySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        try:
            anime = anime_fetch(mal_id=changes.pop("mal_id"))
        except AnimeNotOnMal as exc:
            raise ValidationError({"mal_id": ["No such title on MyAnimeList."]}) from exc
        except AnimeUnavailable as exc:
            raise TitleUnavailable(str(exc)) from exc
        if ListEntry.objects.filter(user=_me(request), anime=anime).exists():
            raise ValidationError({"mal_id": ["This title is on your list already: PATCH its entry instead."]})
        entry = _save(request, anime, changes)
        return Response(EntrySerializer(entry).data, status=status.HTTP_201_CREATED)


@extend_schema(parameters=[OpenApiParameter("mal_id", int, OpenApiParameter.PATH, description="MyAnimeList id.")])
class MyListEntryApi(PersonalApi):
    """One entry of the person's list, by the title's MyAnimeList id."""

    @extend_schema(responses=EntrySerializer)
    def get(self, request: Request, mal_id: int) -> Response:
        return Response(EntrySerializer(self._entry(request, mal_id)).data)

    @extend_schema(request=ChangesSerializer, responses=EntrySerializer)
    def patch(self, request: Request, mal_id: int) -> Response:
        entry = self._entry(request, mal_id)
        data = ChangesSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(EntrySerializer(_save(request, entry.anime, dict(data.validated_data))).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, mal_id: int) -> Response:
        entry = self._entry(request, mal_id)
        services.list_entry_remove(user=_me(request), anime=entry.anime)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _entry(self, request: Request, mal_id: int) -> ListEntry:
        return get_object_or_404(ListEntry.objects.select_related("anime"), user=_me(request), anime_id=mal_id)


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A MyAnimeList export, .xml or .xml.gz, up to 5 MB.")
    overwrite = serializers.BooleanField(default=False, help_text="Let the file change completed or dropped titles.")
    apply = serializers.BooleanField(default=False, help_text="Apply at once (a job); otherwise a dry run.")


class ImportPlanSerializer(serializers.Serializer):
    job = serializers.IntegerField(help_text="POST apply=true with the same file, or open the job to apply it.")
    added = serializers.ListField(child=serializers.DictField())
    changed = serializers.ListField(child=serializers.DictField())
    unchanged = serializers.ListField(child=serializers.DictField())
    not_found = serializers.ListField(child=serializers.DictField())
    rejected = serializers.ListField(child=serializers.DictField(), help_text="Entries the file could not give.")


class ImportJobSerializer(serializers.ModelSerializer):
    total = serializers.IntegerField()

    class Meta:
        model = ImportJob
        fields = ("id", "file_name", "overwrite", "state", "total", "processed", "added", "changed", "unchanged",
                  "unresolved", "error", "created_at", "finished_at")  # fmt: skip


class MyImportApi(PersonalApi):
    """Import a MyAnimeList export: a dry run (what it would add, change, leave alone, not find), or with
    `apply` a job that a worker runs (poll it at /api/v1/me/import/<id>)."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": ImportUploadSerializer},
        responses={200: ImportPlanSerializer, 202: ImportJobSerializer},
    )
    def post(self, request: Request) -> Response:
        upload = ImportUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        file = upload.validated_data["file"]
        if file.size > mal_xml.MAX_UPLOAD_BYTES:
            raise ValidationError({"file": [f"The file is larger than {mal_xml.MAX_UPLOAD_BYTES // 2**20} MB."]})
        try:
            export = mal_xml.parse_export(file.read())
        except mal_xml.MalFileError as exc:
            raise ValidationError({"file": [str(exc)]}) from exc
        if not export.entries:
            raise ValidationError({"file": ["The file holds no anime entries that could be read."]})
        overwrite = upload.validated_data["overwrite"]
        job = services.import_job_create(
            user=_me(request), file_name=file.name or "animelist.xml", items=export.entries, overwrite=overwrite
        )
        if upload.validated_data["apply"]:
            services.import_job_queue(job=job)
            transaction.on_commit(lambda: import_apply_task.delay(job.pk))
            job.refresh_from_db()
            return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
        plan = services.import_plan(user=_me(request), items=export.entries, overwrite=overwrite)
        rejected = [asdict(row) for row in export.rejected]
        return Response({"job": job.pk, **asdict(plan), "rejected": rejected})


@extend_schema(parameters=[OpenApiParameter("job_id", int, OpenApiParameter.PATH, description="The import's id.")])
class MyImportJobApi(PersonalApi):
    """One of the person's imports: its state, progress, counts and the entries it could not apply."""

    @extend_schema(responses=ImportJobSerializer)
    def get(self, request: Request, job_id: int) -> Response:
        return Response(ImportJobSerializer(get_object_or_404(ImportJob, pk=job_id, user=_me(request))).data)


class AnyFormat(BaseContentNegotiation):
    """The export answers its own ?format= (xml, csv, json): DRF must not read it as a renderer's."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class MyExportApi(PersonalApi):
    """The person's whole list as a file: MyAnimeList XML (MAL and other trackers import it), CSV or JSON."""

    content_negotiation_class = AnyFormat

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=list(exports.FORMATS), default="xml")],
        responses={(200, "application/xml"): OpenApiTypes.BINARY, (200, "text/csv"): OpenApiTypes.BINARY,
                   (200, "application/json"): OpenApiTypes.OBJECT},
    )  # fmt: skip
    def get(self, request: Request) -> HttpResponse:
        fmt = request.query_params.get("format", "xml")
        if fmt not in exports.FORMATS:
            raise ValidationError({"format": [f"Choose one of: {', '.join(exports.FORMATS)}."]})
        file = exports.list_export(user=_me(request), fmt=fmt)
        response = HttpResponse(file.body, content_type=file.content_type)
        response["Content-Disposition"] = f'attachment; filename="{file.filename}"'
        return response


class NamedCountSerializer(serializers.Serializer):
    name = serializers.CharField()
    count = serializers.IntegerField()
    mean_score = serializers.FloatField(allow_null=True)


class CrowdSerializer(serializers.Serializer):
    genre = serializers.CharField()
    titles = serializers.IntegerField()
    your_mean = serializers.FloatField()
    mal_mean = serializers.FloatField()
    difference = serializers.FloatField()


class MonthSerializer(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM")
    events = serializers.IntegerField()
    episodes = serializers.IntegerField()


class EarlyPickSerializer(serializers.Serializer):
    mal_id = serializers.IntegerField()
    title = serializers.CharField()
    added_on = serializers.DateField()
    entered_top_50_on = serializers.DateField()


class FinishedRankSerializer(serializers.Serializer):
    mal_id = serializers.IntegerField()
    title = serializers.CharField()
    finished_on = serializers.DateField()
    mal_rank = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_status = serializers.DictField(child=serializers.IntegerField())
    episodes_watched = serializers.IntegerField()
    watch_minutes = serializers.IntegerField(help_text="Episodes watched times minutes per episode.")
    watch_estimated_titles = serializers.IntegerField(
        help_text="Titles of unknown length counted at the median length of their type."
    )
    mean_score = serializers.FloatField(allow_null=True)
    score_distribution = serializers.DictField(child=serializers.IntegerField(), help_text="Titles per score 1-10.")
    completion_rate = serializers.FloatField(allow_null=True, help_text="Completed / (completed + dropped).")
    drop_rate = serializers.FloatField(allow_null=True)
    top_genres = NamedCountSerializer(many=True)
    top_studios = NamedCountSerializer(many=True)
    taste_vs_crowd = CrowdSerializer(many=True)
    activity = MonthSerializer(many=True)
    early_picks = EarlyPickSerializer(many=True)
    finished_ranks = FinishedRankSerializer(many=True)


class MyStatsApi(PersonalApi):
    """The person's stats, as /my/stats/ shows them."""

    @extend_schema(responses=StatsSerializer)
    def get(self, request: Request) -> Response:
        return Response(StatsSerializer(person_stats(user=_me(request))).data)


class SuggestionSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["next_episode", "climbing", "new_in_genre"])
    mal_id = serializers.IntegerField()
    text = serializers.CharField()


class CompanionSerializer(serializers.Serializer):
    shown = serializers.BooleanField(help_text="False when the person hid the cat (nothing else is given then).")
    mood = serializers.ChoiceField(choices=["excited", "happy", "bored", "neutral"], allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    napping = serializers.BooleanField()
    greeting = serializers.CharField(allow_blank=True)
    suggestion = SuggestionSerializer(allow_null=True)


class MyCompanionApi(PersonalApi):
    """The cat: its mood from the last 14 days of the list, why, and at most one suggestion a day."""

    @extend_schema(responses=CompanionSerializer)
    def get(self, request: Request) -> Response:
        cat = companion_for(user=_me(request))
        if cat is None:
            body: dict[str, Any] = {"shown": False, "mood": None, "reason": "", "napping": False, "greeting": "",
                                    "suggestion": None}  # fmt: skip
        else:
            mood, suggestion = cat["mood"], cat["suggestion"]
            body = {"shown": True, **asdict(mood), "suggestion": asdict(suggestion) if suggestion else None}
        return Response(CompanionSerializer(body).data)


def _me(request: Request) -> User:
    assert isinstance(request.user, User)  # IsAuthenticated let the request in
    return request.user


def _save(request: Request, anime: Anime, changes: dict[str, Any]) -> ListEntry:
    try:
        return services.list_entry_save(user=_me(request), anime=anime, changes=changes)
    except DjangoValidationError as exc:
        raise ValidationError(exc.message_dict) from exc
