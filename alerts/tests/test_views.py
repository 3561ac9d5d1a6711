"""The alerts pages: what each shows, every form without JavaScript, and whose rows each can reach."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.test import Client, override_settings
from django.urls import reverse

from alerts.models import AlertEvent, AlertRule, Delivery, FeedKey, WebhookEndpoint
from alerts.tests.factories import AlertRuleFactory, WebhookEndpointFactory, day
from alerts.tests.receiver import Receiver
from snapshots.tests.factories import AnimeFactory, SnapshotFactory
from tracking.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

RULES = reverse("alerts:rules")
NEW = reverse("alerts:rule-new")
DELIVERIES = reverse("alerts:deliveries")


@pytest.fixture
def fan(client):
    user = UserFactory(username="haruhi")
    client.force_login(user)
    return user


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def _rule_post(**changes: object) -> dict[str, object]:
    """What the rule form posts for a whole-feed "enters the top 3" rule, with `changes`."""
    data: dict[str, object] = {
        "kind": "entered_top",
        "feed": "top",
        "threshold": "3",
        "window": "7",
        "scope": "feed",
        "anime": "",
        "email": "instant",
        "atom": "on",
        "active": "on",
        "save": "1",
    }
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}


def _history() -> None:
    """Snapshots on days 0, 31, 32 and 33: title 1 climbs into the top 3 on day 32; titles 2 and 3 were in it
    before the last 30 days began, so they enter nothing."""
    days = [day(0), day(31), day(32), day(33)]
    for mal_id, ranks in {1: [5, 4, 2, 2], 2: [1, 1, 1, 1], 3: [2, 2, 3, 3]}.items():
        anime = AnimeFactory(mal_id=mal_id, title=f"Title {mal_id}")
        for taken_on, rank in zip(days, ranks, strict=True):
            SnapshotFactory(anime=anime, feed="top", taken_on=taken_on, position=rank, rank=rank, run=None)


# Who may see what


@pytest.mark.parametrize(
    "url",
    [RULES, NEW, DELIVERIES, reverse("alerts:rule-edit", args=[1])],
)
def test_every_page_asks_an_anonymous_visitor_to_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize(
    "name",
    ["feed-reset", "endpoint-new"],
)
def test_a_post_from_an_anonymous_visitor_changes_nothing(client, name):
    response = client.post(reverse(f"alerts:{name}"), {"name": "x", "url": "https://example.com/"})
    assert response.status_code == 302
    assert not WebhookEndpoint.objects.exists()
    assert not FeedKey.objects.exists()


def test_another_persons_rule_is_a_404_to_edit_toggle_and_delete(client, fan):
    theirs = AlertRuleFactory(active=True)
    assert client.get(reverse("alerts:rule-edit", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("alerts:rule-edit", args=[theirs.pk]), _rule_post(threshold="9")).status_code == 404
    assert client.post(reverse("alerts:rule-toggle", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("alerts:rule-delete", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.active
    assert theirs.threshold == 3


@pytest.mark.parametrize("action", ["toggle", "rotate", "delete", "test"])
def test_another_persons_webhook_is_a_404(client, fan, action):
    theirs = WebhookEndpointFactory()
    secret = theirs.secret
    assert client.post(reverse(f"alerts:endpoint-{action}", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert (theirs.active, theirs.secret) == (True, secret)
    assert not Delivery.objects.exists()


def test_the_rules_page_shows_only_the_persons_own_rules_and_webhooks(client, fan):
    anime = AnimeFactory(title="Frieren")
    AlertRuleFactory(user=fan, kind="climbed", threshold=5, scope="title", anime=anime)
    AlertRuleFactory(kind="fell", threshold=7)
    WebhookEndpointFactory(user=fan, name="Mine")
    WebhookEndpointFactory(name="Somebody else's")
    page = client.get(RULES).content.decode()
    assert "Frieren climbs at least 5 places in 7 days in top" in page
    assert "falls at least 7" not in page
    assert "Mine" in page
    assert "Somebody else" not in page
    assert f'href="{NEW}"' in page
    assert f'href="{DELIVERIES}"' in page
    assert reverse("alerts:public-feed", args=["airing", "climbers-30d"]) in page


def test_the_private_feed_url_is_absolute_and_reset_changes_it(client, fan):
    page = client.get(RULES).content.decode()
    old = FeedKey.objects.get(user=fan).key
    assert f"http://testserver/feeds/me/{old}.atom" in page
    response = client.post(reverse("alerts:feed-reset"), follow=True)
    new = FeedKey.objects.get(user=fan).key
    assert new != old
    page = response.content.decode()
    assert f"http://testserver/feeds/me/{new}.atom" in page
    assert old not in page
    assert any("new URL" in m for m in _messages(response))
    assert client.get(f"/feeds/me/{old}.atom").status_code == 404
    assert client.get(f"/feeds/me/{new}.atom").status_code == 200


def test_posts_need_the_csrf_token():
    user = UserFactory()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    rule = AlertRuleFactory(user=user)
    assert strict.post(reverse("alerts:rule-delete", args=[rule.pk])).status_code == 403
    assert strict.post(reverse("alerts:feed-reset")).status_code == 403
    assert strict.post(NEW, _rule_post()).status_code == 403
    assert AlertRule.objects.count() == 1


# Rules


def test_a_new_rule_is_saved_and_listed(client, fan):
    endpoint = WebhookEndpointFactory(user=fan)
    response = client.post(NEW, _rule_post(webhooks=[endpoint.pk], email="digest"), follow=True)
    assert response.redirect_chain == [(RULES, 302)]
    rule = AlertRule.objects.get(user=fan)
    assert (rule.kind, rule.threshold, rule.scope, rule.email) == ("entered_top", 3, "feed", "digest")
    assert list(rule.webhooks.all()) == [endpoint]
    assert any("Saved: Any title enters the top 3 in top" in m for m in _messages(response))


def test_the_form_offers_only_the_persons_own_webhooks_and_refuses_anothers(client, fan):
    WebhookEndpointFactory(user=fan, name="Mine")
    theirs = WebhookEndpointFactory(name="Theirs")
    page = client.get(NEW).content.decode()
    assert "Mine" in page
    assert "Theirs" not in page
    response = client.post(NEW, _rule_post(webhooks=[theirs.pk]))
    assert response.status_code == 400
    assert "webhooks" in response.context["form"].errors
    assert not AlertRule.objects.exists()


def test_new_prefills_the_title_from_the_query(client, fan):
    AnimeFactory(mal_id=5114)
    form = client.get(NEW, {"anime": "5114"}).context["form"]
    assert form["anime"].value() == 5114
    assert form["scope"].value() == "title"


@pytest.mark.parametrize(
    ("changes", "field", "said"),
    [
        ({"threshold": "2.5"}, "threshold", "whole number of places"),
        ({"kind": "score_moved", "threshold": "11"}, "threshold", "0.01 to 10"),
        ({"threshold": ""}, "threshold", "Enter a number"),
        ({"scope": "title"}, "anime", "Pick the title"),
        ({"scope": "title", "anime": "999999"}, "anime", "No title with this MAL id"),
        ({"kind": "bingeing"}, "kind", "valid choice"),
        ({"window": "14"}, "window", "valid choice"),
    ],
)
def test_a_broken_rule_shows_the_error_beside_its_field_and_saves_nothing(client, fan, changes, field, said):
    response = client.post(NEW, _rule_post(**changes))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors
    assert said in " ".join(errors[field])
    assert said in response.content.decode()
    assert not AlertRule.objects.exists()


def test_new_best_needs_no_threshold(client, fan):
    client.post(NEW, _rule_post(kind="new_best", threshold=""))
    assert AlertRule.objects.get().threshold == 1


def test_editing_a_rule_changes_it_and_the_form_starts_from_it(client, fan):
    anime = AnimeFactory(mal_id=20, title="Naruto")
    rule = AlertRuleFactory(user=fan, kind="fell", threshold=4, scope="title", anime=anime, window=30)
    url = reverse("alerts:rule-edit", args=[rule.pk])
    form = client.get(url).context["form"]
    assert (form["kind"].value(), form["anime"].value(), form["window"].value()) == ("fell", 20, 30)
    response = client.post(url, _rule_post(kind="fell", threshold="8", scope="title", anime="20", window="30"))
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.threshold, rule.anime_id) == (Decimal(8), 20)


def test_a_list_rule_keeps_the_statuses_ticked(client, fan):
    client.post(NEW, _rule_post(scope="list", statuses=["watching", "completed"]))
    assert AlertRule.objects.get().statuses == ["watching", "completed"]


def test_pause_resume_and_delete(client, fan):
    rule = AlertRuleFactory(user=fan)
    client.post(reverse("alerts:rule-toggle", args=[rule.pk]))
    rule.refresh_from_db()
    assert not rule.active
    assert "Paused" in client.get(RULES).content.decode()
    client.post(reverse("alerts:rule-toggle", args=[rule.pk]))
    rule.refresh_from_db()
    assert rule.active
    response = client.post(reverse("alerts:rule-delete", args=[rule.pk]), follow=True)
    assert not AlertRule.objects.exists()
    assert "The rule is deleted." in _messages(response)


# Preview


def test_preview_shows_what_the_rule_would_have_sent_and_saves_nothing(client, fan):
    _history()
    response = client.post(NEW, _rule_post(save=None, preview="1"))
    assert response.status_code == 200
    assert not AlertRule.objects.exists()
    events = response.context["preview"]
    assert [(e.day, e.mal_id) for e in events] == [(day(32), 1)]
    page = response.content.decode()
    assert "Preview: the last 30 days" in page
    assert reverse("analytics:anime-detail", args=[1]) in page
    assert "Title 1" in page
    assert events[0].message in page


def test_preview_of_an_edited_rule_uses_the_form_not_the_saved_rule(client, fan):
    _history()
    rule = AlertRuleFactory(user=fan, kind="entered_top", threshold=3)
    url = reverse("alerts:rule-edit", args=[rule.pk])
    response = client.post(url, _rule_post(save=None, preview="1", threshold="1"))
    assert response.context["preview"] == []
    assert "Nothing in the last 30 days" in response.content.decode()
    rule.refresh_from_db()
    assert rule.threshold == 3


def test_preview_shows_a_broken_rules_errors_beside_the_fields(client, fan):
    response = client.post(NEW, _rule_post(save=None, preview="1", threshold="0.5"))
    assert response.status_code == 400
    assert "threshold" in response.context["form"].errors
    assert response.context["preview"] is None


# Webhooks


def test_a_webhook_is_added_and_a_bad_url_is_refused_beside_the_field(client, fan):
    url = reverse("alerts:endpoint-new")
    response = client.post(url, {"name": "Discord", "url": "https://discord.com/api/webhooks/1/x", "preset": "discord"})
    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get(user=fan)
    assert (endpoint.name, endpoint.preset) == ("Discord", "discord")
    page = client.get(RULES).content.decode()
    assert endpoint.secret in page  # inside its <details>
    response = client.post(url, {"name": "Bad", "url": "ftp://example.com/x", "preset": "standard"})
    assert response.status_code == 400
    assert "url" in response.context["endpoint_form"].errors
    assert "Use an http:// or https:// URL." in response.content.decode()
    assert WebhookEndpoint.objects.count() == 1


def test_rotate_disable_enable_and_delete_a_webhook(client, fan):
    endpoint = WebhookEndpointFactory(user=fan, active=False, disabled_reason="410 Gone")
    old = endpoint.secret
    client.post(reverse("alerts:endpoint-rotate", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert endpoint.secret != old
    assert endpoint.previous_secret == old
    client.post(reverse("alerts:endpoint-toggle", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert endpoint.active
    assert endpoint.disabled_reason == ""
    client.post(reverse("alerts:endpoint-toggle", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert not endpoint.active
    client.post(reverse("alerts:endpoint-delete", args=[endpoint.pk]))
    assert not WebhookEndpoint.objects.exists()


@override_settings(ALERTS_ALLOW_PRIVATE_WEBHOOKS=True)
def test_send_a_test_to_a_loopback_receiver_says_it_was_sent_with_the_code(client, fan, receiver):
    receiver.answer(204)
    endpoint = WebhookEndpointFactory(user=fan, url=receiver.url())
    response = client.post(reverse("alerts:endpoint-test", args=[endpoint.pk]), follow=True)
    assert any("the receiver answered 204" in m for m in _messages(response))
    assert len(receiver.requests) == 1
    assert b'"alert.test"' in receiver.requests[0].body
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.response_code, delivery.event) == ("sent", 204, None)


@override_settings(ALERTS_ALLOW_PRIVATE_WEBHOOKS=False)
def test_send_a_test_to_a_private_address_says_it_is_not_public(client, fan, receiver):
    endpoint = WebhookEndpointFactory(user=fan, url=receiver.url())
    response = client.post(reverse("alerts:endpoint-test", args=[endpoint.pk]), follow=True)
    said = _messages(response)
    assert any("failed" in m and "not a public address" in m for m in said), said
    assert receiver.requests == []
    assert Delivery.objects.get().status == "failed"


# The delivery log


def test_the_delivery_log_shows_the_persons_deliveries_newest_first_50_a_page(client, fan):
    endpoint = WebhookEndpointFactory(user=fan, name="Hook")
    rule = AlertRuleFactory(user=fan)
    anime = AnimeFactory()
    event = AlertEvent.objects.create(rule=rule, anime=anime, day=day(0), message="Frieren entered the top 3")
    Delivery.objects.create(user=fan, event=event, channel="email", status="sent", attempts=1)
    Delivery.objects.bulk_create(
        Delivery(user=fan, channel="webhook", endpoint=endpoint, status="failed", response_code=500, error="boom")
        for _ in range(55)
    )
    Delivery.objects.create(user=UserFactory(), channel="email", error="somebody else's")
    response = client.get(DELIVERIES)
    page = response.context["page"]
    assert page.paginator.count == 57 - 1
    assert len(page.object_list) == 50
    html = response.content.decode()
    assert "Test" in html
    assert "Hook" in html
    assert "boom" in html
    assert "somebody else" not in html
    last = client.get(DELIVERIES, {"page": 2}).content.decode()
    assert "Frieren entered the top 3" in last


# Follow


def test_follow_makes_three_digest_rules_and_unfollow_removes_them(client, fan):
    anime = AnimeFactory(mal_id=5114, title="Fullmetal")
    detail = reverse("analytics:anime-detail", args=[5114])
    response = client.post(reverse("alerts:follow", args=[5114]), {"next": detail})
    assert response["Location"] == detail
    rules = AlertRule.objects.filter(user=fan, anime=anime)
    assert sorted(rules.values_list("kind", flat=True)) == ["climbed", "fell", "new_best"]
    assert set(rules.values_list("email", flat=True)) == {"digest"}
    client.post(reverse("alerts:follow", args=[5114]))  # twice: still three
    assert rules.count() == 3
    response = client.post(reverse("alerts:unfollow", args=[5114]), {"next": "https://evil.example/"})
    assert response["Location"] == detail
    assert not rules.exists()


def test_follow_of_an_unknown_title_is_a_404(client, fan):
    assert client.post(reverse("alerts:follow", args=[999999])).status_code == 404


def test_the_title_page_shows_follow_following_or_sign_in(client):
    AnimeFactory(mal_id=5114, title="Fullmetal")
    detail = reverse("analytics:anime-detail", args=[5114])
    assert "Sign in to follow" in client.get(detail).content.decode()
    fan = UserFactory()
    client.force_login(fan)
    page = client.get(detail).content.decode()
    assert reverse("alerts:follow", args=[5114]) in page
    assert ">Follow</button>" in page
    client.post(reverse("alerts:follow", args=[5114]))
    page = client.get(detail).content.decode()
    assert "Following" in page
    assert "Edit alerts" in page
    assert reverse("alerts:unfollow", args=[5114]) in page


def test_the_follow_control_does_one_query(rf, django_assert_num_queries):
    AnimeFactory(mal_id=7)
    request = rf.get("/anime/7/")
    request.user = UserFactory()
    template = Template("{% load alerts_tags %}{% follow_control 7 'Seven' %}")
    with django_assert_num_queries(1):
        html = template.render(Context({"request": request}))
    assert "Follow" in html


def test_the_account_menu_links_to_my_alerts(client, fan):
    assert f'href="{RULES}"' in client.get(reverse("tracking:my-list")).content.decode()


def test_toggling_a_webhook_whose_url_is_no_longer_allowed_says_why_and_changes_nothing(client, fan):
    endpoint = WebhookEndpointFactory(user=fan, active=False)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url="ftp://example.com/x")
    response = client.post(reverse("alerts:endpoint-toggle", args=[endpoint.pk]), follow=True)
    assert any("Use an http:// or https:// URL." in m for m in _messages(response))
    endpoint.refresh_from_db()
    assert not endpoint.active
