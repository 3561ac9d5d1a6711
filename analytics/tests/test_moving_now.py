""" "Moving now" on the dashboard: each feed's latest climbers and new entries, its refresh endpoint and
the tiny data-version endpoint it polls (304 while nothing has changed)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from analytics.selectors import moving_now
from analytics.tests.seed import TODAY, seed_history
from snapshots.tests.factories import AnimeFactory, EtlRunFactory, SnapshotFactory
from tracking.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_each_feed_gets_its_latest_climbers_and_new_entries_with_the_snapshot_time():
    seed_history(days=20, titles=8)
    (top,) = moving_now()
    assert top["feed"] == "top"
    assert top["date"] == TODAY
    assert top["climbers"]
    assert all(row["change"] > 0 for row in top["climbers"])


def test_no_snapshot_no_widget_rows():
    assert moving_now() == []


def test_the_dashboard_shows_it_without_javascript_and_asks_visitors_to_sign_in(client):
    seed_history(days=20, titles=8)
    page = client.get("/").content.decode()
    assert 'id="moving-now"' in page
    assert "Sign in to follow" in page
    fragment = client.get(reverse("analytics:moving-now")).content.decode()
    assert fragment.startswith('<div id="moving-now"') or 'id="moving-now"' in fragment
    client.force_login(UserFactory())
    assert "Sign in to follow" not in client.get("/").content.decode()


def test_the_data_version_answers_304_until_a_snapshot_commits(client):
    seed_history(days=3, titles=3)
    url = reverse("analytics:data-version")
    first = client.get(url)
    assert first.status_code == 200
    assert first["ETag"] == f'W/"{first.json()["version"]}"'
    unchanged = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    run = EtlRunFactory(feed="top", taken_on=TODAY)
    SnapshotFactory(anime=AnimeFactory(), feed="top", taken_on=TODAY, position=99, run=run)
    moved = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert moved.status_code == 200
    assert moved["ETag"] != first["ETag"]
    assert client.post(url).status_code == 405
