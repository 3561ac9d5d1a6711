from __future__ import annotations

import pytest
from django.urls import reverse

from snapshots.models import EtlRun, RawPage
from snapshots.tests.factories import AnimeFactory, EtlRunFactory, GenreFactory, RejectionFactory, SnapshotFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("admin", "admin@example.org", "correct horse battery")
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "model", ["anime", "snapshot", "snapshotday", "etlrun", "rawpage", "rejection", "genre", "studio"]
)
def test_every_model_has_a_working_changelist(staff_client, model):
    SnapshotFactory(anime=AnimeFactory(genres=[GenreFactory()]))
    RejectionFactory()
    response = staff_client.get(reverse(f"admin:snapshots_{model}_changelist"), {"q": "a"})
    assert response.status_code == 200


def test_run_detail_shows_its_rejections_read_only(staff_client):
    run = EtlRunFactory(status=EtlRun.Status.PARTIAL)
    RejectionFactory(run=run, reason="must not be negative", value="-42")
    response = staff_client.get(reverse("admin:snapshots_etlrun_change", args=[run.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    assert "must not be negative" in content
    assert 'name="_save"' not in content, "runs are history, not editable"


def test_a_raw_page_shows_its_body_indented_and_escaped(staff_client):
    run = EtlRunFactory()
    body = '{"pagination":{"has_next_page":false},"data":[{"mal_id":1,"title":"<b>Kimi</b> \u306e"}]}'
    raw = RawPage.objects.create(run=run, page=1, url="u", http_status=200, body=body, has_next_page=False)

    page = staff_client.get(reverse("admin:snapshots_rawpage_change", args=[raw.pk])).content.decode()

    assert "<pre>{\n  &quot;pagination&quot;: {\n    &quot;has_next_page&quot;: false" in page
    assert "&lt;b&gt;Kimi&lt;/b&gt; の" in page, "escaped, and decoded for reading"
    assert staff_client.get(reverse("admin:snapshots_rawpage_changelist")).status_code == 200


def test_runs_and_rejections_cannot_be_added(staff_client):
    assert staff_client.get(reverse("admin:snapshots_etlrun_add")).status_code == 403
    assert staff_client.get(reverse("admin:snapshots_rejection_add")).status_code == 403


def test_admin_says_when_the_data_is_simulated(staff_client):
    assert "Demo data." not in staff_client.get(reverse("admin:index")).content.decode()
    EtlRunFactory(trigger=EtlRun.Trigger.DEMO)
    assert "Demo data." in staff_client.get(reverse("admin:index")).content.decode()


def test_beat_schedule_is_editable_in_the_admin(staff_client):
    response = staff_client.get(reverse("admin:django_celery_beat_periodictask_changelist"))
    assert response.status_code == 200
    assert "snapshot top" in response.content.decode()
