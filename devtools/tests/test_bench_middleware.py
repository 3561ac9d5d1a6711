"""`manage.py bench_middleware`: every middleware in its table, and nothing timed without data."""

from __future__ import annotations

import io

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from analytics.tests.seed import seed_history

pytestmark = pytest.mark.django_db


def test_bench_middleware_prices_every_middleware_on_both_paths():
    seed_history(days=10, titles=5)
    out = io.StringIO()
    call_command("bench_middleware", "-n", "2", "--url", "/api/v1/overview", "--url", "/", stdout=out)
    table = out.getvalue()
    assert table.count("short path") == 2
    for middleware in settings.MIDDLEWARE:
        assert table.count(middleware) == 2, middleware
    # Sessions are needed the whole way (authentication reads them), so they cannot be left out there.
    session_row = next(
        line for line in table.splitlines() if line.startswith("django.contrib.sessions.middleware.SessionMiddleware")
    )
    assert session_row.split()[-1] == "needed"


def test_bench_middleware_refuses_to_time_an_empty_database():
    with pytest.raises(CommandError, match="No data to measure"):
        call_command("bench_middleware", "-n", "2")
