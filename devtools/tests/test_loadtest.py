"""A smoke run of the load command: the figures are the command's business, not a test's."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from analytics.tests.seed import seed_history


@pytest.mark.django_db(transaction=True)
def test_loadtest_drives_gunicorn_with_wrk_and_reports(settings, tmp_path):
    seed_history()
    out = StringIO()
    call_command("loadtest", "--duration", "2", "--connections", "2", "--threads", "1", "--json", stdout=out)
    text = out.getvalue()
    result = json.loads(text.strip().splitlines()[-1])
    assert result["requests"] > 0
    assert result["error_count"] == 0, result["errors"]
    assert result["rps"] > 0
    assert {"p50", "p95", "p99"} <= result["latency_ms"].keys()
