"""The person's own list over the API, under /api/v1/me/: signed in with a session (and its CSRF token) or
a personal API token (`Authorization: Bearer ad_...`). Nobody reaches anyone else's entries: every query
starts from _me(request)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from snapshots.models import Anime
from tracking import selectors, services
from tracking.models import ApiToken, ListEntry, ListStatus

# A token's last use is written at most this often: reads need not write on every request.
LAST_USED_PRECISION = dt.timedelta(minutes=5)


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

    @extend_schema(parameters=[ListFilterSerializer], responses=EntrySerializer(many=True))
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
        anime = Anime.objects.filter(mal_id=changes.pop("mal_id")).first()
        if anime is None:
            raise ValidationError({"mal_id": ["No title with this MyAnimeList id is known to AnimeDash."]})
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


def _me(request: Request) -> User:
    assert isinstance(request.user, User)  # IsAuthenticated let the request in
    return request.user


def _save(request: Request, anime: Anime, changes: dict[str, Any]) -> ListEntry:
    try:
        return services.list_entry_save(user=_me(request), anime=anime, changes=changes)
    except DjangoValidationError as exc:
        raise ValidationError(exc.message_dict) from exc
