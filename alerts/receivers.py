from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction


def evaluate_after_commit(sender: Any, *, feed: str, taken_on: dt.date, **kwargs: Any) -> None:
    """A committed snapshot day: evaluate the feed's rules on it in the background."""
    from alerts.tasks import rules_evaluate

    transaction.on_commit(lambda: rules_evaluate.delay(feed, taken_on.isoformat()))
