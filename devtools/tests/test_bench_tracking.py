"""`manage.py bench_tracking`: its report, and nothing timed that is not a real answer."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command


# transaction=True: the bench creates and drops a database of its own beside the test database.
@pytest.mark.django_db(transaction=True)
def test_bench_tracking_reports_the_import_the_list_and_the_control_queries():
    out = StringIO()
    call_command("bench_tracking", "--entries", "150", "--requests", "1", stdout=out)
    text = out.getvalue()
    # A command, not a timed test: check the report's shape, never its timings.
    assert "import of 150 entries" in text
    for sort in ("updated", "title", "score", "progress", "rank"):
        assert f"sort={sort}" in text
    assert "quick controls: 1 query" in text


def test_bench_tracking_needs_a_whole_page():
    with pytest.raises(CommandError, match="--entries must be at least 100"):
        call_command("bench_tracking", "--entries", "10")
