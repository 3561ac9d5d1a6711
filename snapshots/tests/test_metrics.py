from __future__ import annotations

import datetime as dt

import pytest
from django.db import DatabaseError
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from snapshots import services
from snapshots.metrics import EtlFactsCollector
from snapshots.models import EtlRun
from snapshots.tests.factories import EtlRunFactory

pytestmark = pytest.mark.django_db


def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """This process's metrics, as its metrics port serves them: {(sample name, sorted labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(generate_latest().decode())
        for sample in family.samples
    }


def test_web_metrics_report_etl_facts_and_counters_after_a_run(etl):
    before = scrape()
    run = services.feed_snapshot(feed="airing", taken_on=dt.date(2024, 5, 1))
    after = scrape()

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("etl_runs_total", feed="airing", status="success") == 1
    assert grew("etl_items_total", feed="airing", outcome="loaded") == run.items_loaded == 25
    assert grew("etl_run_duration_seconds_count", feed="airing") == 1
    assert grew("jikan_requests_total", endpoint="/top/anime", status="200") == 1
    assert after[("etl_facts_up", ())] == 1
    assert after[("etl_last_success_timestamp_seconds", (("feed", "airing"),))] == pytest.approx(
        run.finished_at.timestamp()
    )
    assert 0 <= after[("etl_data_age_seconds", (("feed", "airing"),))] < 60
    assert after[("etl_consecutive_failures", (("feed", "airing"),))] == 0
    assert ("etl_data_age_seconds", (("feed", "top"),)) not in after, "no success yet: no age"


def test_consecutive_failures_count_back_to_the_last_success_past_skipped_and_queued_runs():
    EtlRunFactory(feed="top", status=EtlRun.Status.SUCCESS)
    EtlRunFactory(feed="top", status=EtlRun.Status.FAILED)
    EtlRunFactory(feed="top", status=EtlRun.Status.SKIPPED)
    EtlRunFactory(feed="top", status=EtlRun.Status.FAILED)
    EtlRunFactory(feed="top", status=EtlRun.Status.QUEUED)
    assert scrape()[("etl_consecutive_failures", (("feed", "top"),))] == 2


def test_backfill_runs_share_one_feed_label(etl):
    etl.serve("/seasons/2018/winter", ["v4_seasons_2018_winter_page1_2022-12-05.json"])
    before = scrape().get(("etl_runs_total", (("feed", "backfill"), ("status", "success"))), 0)
    services.seasons_backfill(from_year=2018, to_year=2018)
    after = scrape()
    assert after[("etl_runs_total", (("feed", "backfill"), ("status", "success")))] == before + 4
    assert not any(labels and dict(labels).get("feed", "").startswith("backfill-") for _, labels in after)


def test_the_facts_collector_reports_down_when_the_database_fails(monkeypatch):
    def broken(self):
        raise DatabaseError("gone")

    monkeypatch.setattr(EtlFactsCollector, "_facts", broken)
    families = list(EtlFactsCollector().collect())
    assert [(f.name, f.samples[0].value) for f in families] == [("etl_facts_up", 0)]
