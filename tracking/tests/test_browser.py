"""The people side in a real browser (Debian's chromium): sign up, track a title from its page and from the
dashboard, import and export a MyAnimeList list, delete the account; axe-core on every new page; and one
person's statuses never showing in another's pages or a visitor's, at desktop and phone width."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from analytics.tests.seed import seed_history
from analytics.tests.test_browser import CHROMIUM, VIEWPORTS, axe_violations, broken_references
from snapshots.tests.factories import AnimeFactory
from tracking.models import ImportJob, ListEntry
from tracking.tests.factories import PASSWORD, ListEntryFactory, UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: run `make browser`"),
]

SAMPLE = Path(settings.BASE_DIR) / "tracking" / "tests" / "data" / "animelist.xml"


def _problems(tab) -> list[str]:
    # A request the browser drops because the page navigated on (a form's submit) is no failure of ours.
    return [problem for problem in tab.problems if "net::ERR_ABORTED" not in problem]


def _sign_in(tab, username: str) -> None:
    tab.goto("/accounts/login/")
    tab.page.fill("#id_login", username)
    tab.page.fill("#id_password", PASSWORD)
    tab.page.get_by_role("button", name="Sign In").click()
    tab.page.wait_for_url("**/my/list/")


def test_sign_up_track_import_export_and_delete_the_account(watched, etl, tmp_path):
    seed_history(days=40, titles=12)
    for mal_id in (1, 32281, 37999, 5114, 20):
        AnimeFactory(mal_id=mal_id)
    tab = watched()
    tab.goto("/accounts/signup/")
    tab.page.fill("#id_username", "haruhi")
    tab.page.fill("#id_email", "haruhi@example.com")
    tab.page.fill("#id_password1", PASSWORD)
    tab.page.fill("#id_password2", PASSWORD)
    tab.page.get_by_role("button", name="Sign Up").click()
    tab.page.wait_for_url("**/my/list/")
    assert tab.page.locator("summary", has_text="haruhi").is_visible()

    # From a title's page: the control saves in place.
    tab.goto("/anime/1000/")
    tab.page.select_option(".track-detail select", "watching")
    tab.page.wait_for_function(
        "() => document.querySelector('.track-detail .track-said').textContent.includes('saved')"
    )
    # From the dashboard's top 10.
    tab.goto("/")
    row = tab.page.locator("#top-table tbody tr", has_text="Series 01")
    row.locator("select").select_option("completed")
    row.locator(".track-said", has_text="saved").wait_for()
    statuses = dict(ListEntry.objects.values_list("anime_id", "status"))
    assert statuses == {1000: "watching", 1001: "completed"}

    # Import: a dry run first, then the job.
    tab.goto("/my/list/import/")
    tab.page.set_input_files("#id_file", str(SAMPLE))
    tab.page.get_by_role("button", name="Check the file").click()
    tab.page.get_by_text("to add").first.wait_for()
    tab.page.get_by_role("button", name="Apply the import").click()
    tab.page.get_by_text("Done:").wait_for()
    assert ImportJob.objects.get().added == 5
    assert ListEntry.objects.count() == 7

    # Export as MyAnimeList XML.
    tab.goto("/my/list/")
    with tab.page.expect_download() as download:
        tab.page.get_by_role("link", name="MyAnimeList XML").click()
    saved = tmp_path / "export.xml"
    download.value.save_as(saved)
    assert saved.read_bytes().count(b"<anime>") == 7

    # Delete the account.
    tab.goto("/accounts/delete/")
    tab.page.fill("#id_password", PASSWORD)
    tab.page.get_by_role("button", name="Delete my account").click()
    tab.page.get_by_text("Your account and everything in it are deleted.").wait_for()
    assert not ListEntry.objects.exists()
    assert _problems(tab) == []


def test_axe_finds_no_violation_on_the_people_pages_at_desktop_and_phone_width(watched):
    seed_history(days=10, titles=5)
    fan = UserFactory(username="kyon")
    ListEntryFactory(user=fan, anime_id=1000, score=7)
    job = ImportJob.objects.create(user=fan, file_name="animelist.xml", entries=[])
    signed_out = ["/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"]
    signed_in = ["/my/list/", "/my/stats/", "/my/list/import/", f"/my/list/import/{job.pk}/", "/my/tokens/",
                 "/accounts/delete/", "/accounts/email/", "/accounts/password/change/", "/", "/trending/",
                 "/anime/1000/"]  # fmt: skip
    found = {}
    for viewport in VIEWPORTS:
        tab = watched(viewport, bypass_csp=True)
        for path in signed_out:
            tab.goto(path)
            if problems := axe_violations(tab) + broken_references(tab):
                found[f"{path} at {viewport}"] = problems
        _sign_in(tab, "kyon")
        for path in signed_in:
            tab.goto(path)
            width = tab.page.evaluate("document.documentElement.scrollWidth")
            if width > VIEWPORTS[viewport]["width"]:
                found[f"{path} at {viewport}"] = [f"overflows: {width}px"]
            if problems := axe_violations(tab) + broken_references(tab):
                found[f"{path} at {viewport}"] = problems
        assert _problems(tab) == []
    assert not found, "\n".join(f"{where}:\n  " + "\n  ".join(problems) for where, problems in found.items())


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_one_persons_statuses_never_reach_anothers_pages_or_a_visitors_warm_or_cold(watched, viewport):
    seed_history(days=10, titles=5)
    UserFactory(username="alice")
    UserFactory(username="bob")
    ListEntryFactory(user_id=UserFactory._meta.model.objects.get(username="alice").pk, anime_id=1000, status="dropped")
    visitor, alice, bob = watched(viewport), watched(viewport), watched(viewport)
    _sign_in(alice, "alice")
    _sign_in(bob, "bob")
    for _ in range(2):  # cold, then from the caches
        for path in ("/", "/trending/", "/anime/1000/"):
            visitor.goto(path)
            alice.goto(path)
            bob.goto(path)
            assert alice.page.locator("select option[value=dropped]:checked").count() >= 1, path
            assert bob.page.locator("select option[value=dropped]:checked").count() == 0, path
            assert "alice" not in bob.page.content()
            assert "alice" not in visitor.page.content()
            assert visitor.page.get_by_text("Sign in to track").count() >= 1
    for tab in (visitor, alice, bob):
        assert _problems(tab) == []


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_stats_page_draws_every_chart(watched, viewport):
    seed_history(days=10, titles=5)
    fan = UserFactory(username="ritsu")
    for mal_id, status in ((1000, "completed"), (1001, "watching"), (1002, "dropped")):
        ListEntryFactory(user=fan, anime_id=mal_id, status=status, score=mal_id % 10 + 1, progress=1)
    tab = watched(viewport)
    _sign_in(tab, "ritsu")
    tab.goto("/my/stats/")
    for canvas in ("status-chart", "score-chart", "genre-chart", "activity-chart"):
        tab.page.wait_for_function(f"() => window.Chart && Chart.getChart(document.getElementById('{canvas}'))")
    width = tab.page.evaluate("document.documentElement.scrollWidth")
    assert width <= VIEWPORTS[viewport]["width"]
    assert _problems(tab) == []
