from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from devtools.endpoints import ENDPOINTS


# transaction=True: the bench creates and drops a database of its own beside the test database.
@pytest.mark.django_db(transaction=True)
def test_bench_api_prints_a_table_of_every_endpoint():
    out = StringIO()
    call_command("bench_api", "--rows", "2000", "--requests", "2", stdout=out)
    text = out.getvalue()
    # The bench is a command, not a timed test: check the report's shape, never its timings.
    assert "endpoint" in text
    assert "cold p95" in text
    assert "warm p95" in text
    for endpoint in ENDPOINTS:
        assert f"\n{endpoint.label} " in text


@pytest.mark.parametrize("rows", ["many", "100"])
def test_bench_api_rejects_a_bad_row_count(rows):
    with pytest.raises(CommandError, match="--rows"):
        call_command("bench_api", "--rows", rows)
