"""How much history there is, how fresh each feed is, and the ETL runs that wrote it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response

from analytics import selectors
from analytics.api.base import AnalyticsApi, CsvExportMixin, EndpointSchema, KnownParametersMixin, Pagination, choice
from snapshots import services
from snapshots.feeds import FEEDS
from snapshots.models import EtlRun


class OverviewFilter(serializers.Serializer):
    as_of = serializers.DateField(required=False, help_text="Count only what existed on this day.")


class RunFacts(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    taken_on = serializers.DateField()
    finished_at = serializers.DateTimeField(allow_null=True)


class FeedExtent(serializers.Serializer):
    feed = serializers.CharField()
    first_day = serializers.DateField(allow_null=True)
    latest_day = serializers.DateField(allow_null=True)
    days = serializers.IntegerField(help_text="Snapshot days the feed has.")
    age_days = serializers.IntegerField(allow_null=True, help_text="Days since its latest snapshot day.")
    stale = serializers.BooleanField(help_text="No successful run in the last 24 hours.")


class OverviewFeed(FeedExtent):
    last_run = RunFacts(allow_null=True, help_text="Its newest run, whatever the outcome.")


class OverviewAnswer(serializers.Serializer):
    anime = serializers.IntegerField(help_text="Titles known.")
    snapshot_days = serializers.IntegerField(help_text="Days with at least one feed's snapshot.")
    rows = serializers.IntegerField(help_text="Snapshot rows in all feeds.")
    feeds = OverviewFeed(many=True)
    last_run = RunFacts(allow_null=True)


class OverviewApi(AnalyticsApi):
    """Overview.

    Titles tracked, snapshot days and rows, each feed's first and latest day, data age, staleness and last run.
    """

    endpoint = "overview"
    Filter = OverviewFilter
    Output = OverviewAnswer
    csv_rows = "feeds"
    compute = staticmethod(selectors.overview)


class FeedRow(FeedExtent):
    description = serializers.CharField()
    path = serializers.CharField(help_text="The Jikan request.")
    pages = serializers.IntegerField(allow_null=True, help_text="Page budget per run (null: every page).")
    last_success_at = serializers.DateTimeField(allow_null=True)


class FeedsApi(AnalyticsApi):
    """Feeds.

    Each feed with its Jikan query, page budget, first and latest day, data age and staleness.
    """

    endpoint = "feeds"
    Filter = serializers.Serializer
    Output = FeedRow
    many = True
    compute = staticmethod(selectors.feeds_summary)


class EtlRunSerializer(serializers.ModelSerializer):
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    # The failure in words: the full text (hosts, URLs, database messages) is for staff, in the admin.
    error = serializers.CharField(source="public_error", read_only=True, help_text="Why the run failed, in words.")

    class Meta:
        model = EtlRun
        fields = [
            "id",
            "feed",
            "taken_on",
            "trigger",
            "status",
            "started_at",
            "finished_at",
            "duration_seconds",
            "pages",
            "requests",
            "retries",
            "rate_limited",
            "items_received",
            "items_duplicate",
            "items_loaded",
            "items_rejected",
            "error",
        ]


class EtlRunFilter(serializers.Serializer):
    feed = serializers.CharField(max_length=32, required=False)
    status = choice(EtlRun.Status.values, required=False, help_text="Run outcome.")


class EtlRunStart(serializers.Serializer):
    feed = choice(list(FEEDS), help_text="The feed to snapshot now.")


class EtlRunsApi(KnownParametersMixin, CsvExportMixin, ListAPIView):
    """ETL runs.

    GET: the runs, newest first. POST (staff only): start a run of a feed now.
    """

    endpoint = "etl-runs"
    Filter = EtlRunFilter
    serializer_class = EtlRunSerializer
    pagination_class = Pagination
    schema = EndpointSchema()

    def get_permissions(self) -> list[Any]:
        # Reading the run log is public; starting work is for staff.
        return [IsAdminUser()] if self.request.method == "POST" else []

    def get_queryset(self) -> Any:
        filters = EtlRunFilter(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.etl_runs(**filters.validated_data)

    @extend_schema(
        summary="Start an ETL run (staff)",
        request=EtlRunStart,
        responses={
            202: OpenApiResponse(EtlRunSerializer, description="Queued for a worker: the run, with its id."),
            409: OpenApiResponse(description="No task queue (CELERY_BROKER_URL unset): use `manage.py etl run`."),
        },
    )
    def post(self, request: Request) -> Response:
        start = EtlRunStart(data=request.data)
        start.is_valid(raise_exception=True)
        from snapshots.tasks import feed_snapshot as feed_snapshot_task

        try:
            run = services.feed_snapshot_queue(feed=start.validated_data["feed"], trigger=EtlRun.Trigger.API)
        except services.QueueUnavailable as exc:
            return Response({"detail": str(exc)}, status=409)
        # The worker gets the run's id only once the queued row is committed.
        transaction.on_commit(lambda: feed_snapshot_task.delay(run.feed, run.trigger, run.pk))
        return Response(EtlRunSerializer(run).data, status=202)
