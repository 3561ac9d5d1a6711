from __future__ import annotations

import json

import pytest
from django.urls import reverse

from devtools.testing import admin_change_data
from snapshots.models import DataEdit, EtlRun, RawPage, Snapshot
from snapshots.tests.factories import (
    AnimeFactory,
    EtlRunFactory,
    GenreFactory,
    RejectionFactory,
    SnapshotFactory,
    StudioFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("admin", "admin@example.org", "correct horse battery")
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "model", ["anime", "snapshot", "snapshotday", "etlrun", "rawpage", "rejection", "genre", "studio", "dataedit"]
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


def test_a_run_shows_staff_its_full_error_text(staff_client):
    raw = 'Database error: value too long for type character varying(500) CONTEXT: COPY "etl_stage_title"'
    run = EtlRunFactory(status=EtlRun.Status.FAILED, error=raw, public_error="Database error.")
    page = staff_client.get(reverse("admin:snapshots_etlrun_change", args=[run.pk])).content.decode()
    assert "value too long for type character varying(500) CONTEXT: COPY &quot;etl_stage_title&quot;" in page


def test_a_title_edited_in_the_admin_is_found_by_its_new_names_and_recorded_as_an_edit(staff_client):
    anime = AnimeFactory(mal_id=7, title="Old name")
    changes = {"title": "Nouveau nom", "titles": json.dumps([{"type": "Synonym", "title": "Éclair"}])}
    response = staff_client.post(reverse("admin:snapshots_anime_change", args=[7]), admin_change_data(anime, **changes))
    assert response.status_code == 302, response.content.decode()[:2000]
    anime.refresh_from_db()
    assert anime.search_text == "nouveau nom eclair"
    assert DataEdit.objects.get().what == "changed anime 7: Nouveau nom"


@pytest.mark.parametrize(
    ("factory", "model"), [(AnimeFactory, "anime"), (GenreFactory, "genre"), (StudioFactory, "studio")]
)
def test_every_admin_save_and_delete_of_what_the_read_side_shows_is_recorded_as_an_edit(staff_client, factory, model):
    thing = factory()
    change = reverse(f"admin:snapshots_{model}_change", args=[thing.pk])
    assert staff_client.post(change, admin_change_data(thing)).status_code == 302
    delete = reverse(f"admin:snapshots_{model}_delete", args=[thing.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 302
    assert [edit.what.split()[0] for edit in DataEdit.objects.order_by("id")] == ["changed", "deleted"]


def test_snapshots_deleted_in_bulk_in_the_admin_are_recorded_as_an_edit(staff_client):
    rows = [SnapshotFactory(), SnapshotFactory()]
    response = staff_client.post(
        reverse("admin:snapshots_snapshot_changelist"),
        {"action": "delete_selected", "_selected_action": [row.pk for row in rows], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Snapshot.objects.exists()
    assert DataEdit.objects.get().what == "deleted 2 snapshot(s)"
