"""`manage.py bench_alerts`: its report, and nothing timed that is not a real answer."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command


# transaction=True: the bench creates and drops a database of its own beside the test database.
@pytest.mark.django_db(transaction=True)
def test_bench_alerts_reports_evaluation_and_delivery():
    out = StringIO()
    call_command("bench_alerts", "--rules", "300", "--webhooks", "20", stdout=out)
    text = out.getvalue()
    # A command, not a timed test: check the report's shape, never its timings.
    assert "evaluation of 300 rules over a day of all six feeds" in text
    assert "  first " in text
    assert "  daily " in text
    assert "delivery of 20 signed webhooks to a loopback receiver" in text
