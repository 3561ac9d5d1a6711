from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.apps import AppConfig
from django.db import DatabaseError, transaction

logger = logging.getLogger(__name__)


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from snapshots.models import DataEdit, EtlRun
        from snapshots.signals import snapshot_committed

        # Cached answers are keyed by the data version: a run saved, deleted or committed, or a hand
        # edit of the history recorded, moves it.
        post_save.connect(_run_changed, sender=EtlRun, dispatch_uid="analytics-data-version-save")
        post_delete.connect(_run_changed, sender=EtlRun, dispatch_uid="analytics-data-version-delete")
        post_save.connect(_run_changed, sender=DataEdit, dispatch_uid="analytics-data-version-edit")
        snapshot_committed.connect(_run_changed, dispatch_uid="analytics-data-version-commit")
        snapshot_committed.connect(_moves_write, dispatch_uid="analytics-feed-moves")


def _moves_write(*, feed: str, taken_on: dt.date, **kwargs: Any) -> None:
    from analytics.services import feed_moves_write

    # The run has committed: a failure here costs only speed (the trend lists compare the days themselves).
    try:
        with transaction.atomic():
            feed_moves_write(feed=feed, day=taken_on)
    except DatabaseError:
        logger.exception("could not keep the moves of %s %s", feed, taken_on)


def _run_changed(**kwargs: Any) -> None:
    from analytics.selectors.status import forget_data_version

    # Now, and again at commit, in case a request read the old version in between and kept it.
    forget_data_version()
    transaction.on_commit(forget_data_version)
