"""The alerts pages in a real browser (Debian's chromium): follow a title, make a rule after looking at its
preview, add a webhook and send it a test; axe-core on every alerts page at desktop and phone width."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.models import AlertRule, Delivery, WebhookEndpoint
from alerts.tests.factories import AlertRuleFactory, WebhookEndpointFactory
from alerts.tests.receiver import Receiver
from analytics.tests.seed import seed_history
from analytics.tests.test_browser import CHROMIUM, VIEWPORTS, axe_violations, broken_references
from tracking.tests.factories import PASSWORD, UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: run `make browser`"),
]

# The narrowest phone the pages must fit (an iPhone SE or mini).
PHONE = {"width": 375, "height": 812}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def _problems(tab) -> list[str]:
    # A request the browser drops because the page navigated on (a form's submit) is no failure of ours.
    return [problem for problem in tab.problems if "net::ERR_ABORTED" not in problem]


def _sign_in(tab, username: str) -> None:
    tab.goto("/accounts/login/")
    tab.page.fill("#id_login", username)
    tab.page.fill("#id_password", PASSWORD)
    tab.page.get_by_role("button", name="Sign In").click()
    tab.page.wait_for_url("**/my/list/")


def test_follow_a_title_make_a_rule_from_its_preview_and_test_a_webhook(watched, receiver, settings):
    settings.ALERTS_ALLOW_PRIVATE_WEBHOOKS = True  # the receiver listens on loopback
    seed_history(days=40, titles=12)
    UserFactory(username="mikuru")
    tab = watched()
    _sign_in(tab, "mikuru")

    # Follow from the title's page: three digest rules, and the control says so.
    tab.goto("/anime/1003/")
    tab.page.get_by_role("button", name="Follow Series 03").click()
    tab.page.get_by_text("Following", exact=True).wait_for()
    assert AlertRule.objects.filter(anime_id=1003, email="digest").count() == 3
    tab.page.get_by_role("link", name="Edit alerts").click()
    tab.page.wait_for_url("**/my/alerts/")
    assert tab.page.get_by_text("Series 03 climbs at least 5 places in 7 days in top").is_visible()

    # A new rule: its preview first, then save it.
    tab.page.get_by_role("link", name="New rule").click()
    tab.page.select_option("#id_kind", "entered_top")
    tab.page.fill("#id_threshold", "3")
    tab.page.select_option("#id_scope", "feed")
    tab.page.get_by_role("button", name="Preview").click()
    tab.page.locator("#preview table").wait_for()
    assert tab.page.locator("#preview tbody tr").count() > 0
    assert not AlertRule.objects.filter(kind="entered_top").exists()
    tab.page.get_by_role("button", name="Save").click()
    tab.page.wait_for_url("**/my/alerts/")
    tab.page.get_by_text("Saved: Any title enters the top 3 in top.").wait_for()
    assert AlertRule.objects.filter(kind="entered_top", threshold=3, scope="feed").exists()

    # A webhook on loopback, and a test sent to it.
    tab.page.fill("#id_name", "My receiver")
    tab.page.fill("#id_url", receiver.url())
    tab.page.get_by_role("button", name="Add the webhook").click()
    tab.page.get_by_text("Webhook “My receiver” added.").wait_for()
    tab.page.get_by_role("button", name="Send a test to My receiver").click()
    tab.page.get_by_text("Test sent to “My receiver”: the receiver answered 200.").wait_for()
    assert len(receiver.requests) == 1
    assert Delivery.objects.get().status == "sent"

    tab.page.get_by_role("link", name="The delivery log").click()
    tab.page.wait_for_url("**/my/alerts/deliveries/")
    assert tab.page.locator("tbody tr", has_text="Test").count() == 1
    assert _problems(tab) == []


def test_axe_finds_no_violation_on_the_alerts_pages_at_desktop_and_phone_width(watched):
    seed_history(days=40, titles=12)
    fan = UserFactory(username="yuki")
    endpoint = WebhookEndpointFactory(user=fan, name="Discord #anime", preset=WebhookEndpoint.Preset.DISCORD)
    rule = AlertRuleFactory(user=fan, kind="climbed", threshold=2, scope="title", anime_id=1000)
    rule.webhooks.add(endpoint)
    AlertRuleFactory(user=fan, active=False)
    Delivery.objects.create(user=fan, channel="webhook", endpoint=endpoint, status="failed", error="x" * 300)
    Delivery.objects.create(user=fan, channel="webhook", endpoint=endpoint, status="sent", response_code=204)
    found = {}
    for viewport in VIEWPORTS:
        tab = watched(viewport, bypass_csp=True)
        if viewport == "phone":
            tab.page.set_viewport_size(PHONE)
        width = PHONE["width"] if viewport == "phone" else VIEWPORTS[viewport]["width"]
        _sign_in(tab, "yuki")
        pages = ["/my/alerts/", f"/my/alerts/{rule.pk}/", "/my/alerts/new/?anime=1000", "/my/alerts/deliveries/",
                 "/anime/1000/", "preview"]  # fmt: skip
        for path in pages:
            if path == "preview":
                tab.goto("/my/alerts/new/")
                tab.page.select_option("#id_scope", "feed")
                tab.page.fill("#id_threshold", "3")
                tab.page.get_by_role("button", name="Preview").click()
                tab.page.locator("#preview tbody tr").first.wait_for()
            else:
                tab.goto(path)
            scroll = tab.page.evaluate("document.documentElement.scrollWidth")
            problems = [f"overflows: {scroll}px"] if scroll > width else []
            if problems := problems + axe_violations(tab) + broken_references(tab):
                found[f"{path} at {viewport}"] = problems
        assert _problems(tab) == []
    assert not found, "\n".join(f"{where}:\n  " + "\n  ".join(problems) for where, problems in found.items())
