"""A person's list pages: what they show, every form without JavaScript, and whose data each can reach."""

from __future__ import annotations

import pytest
from django.urls import reverse

from snapshots.tests.factories import AnimeFactory
from tracking import services
from tracking.models import ApiToken, ListEntry, ListEvent, Profile
from tracking.tests.factories import ListEntryFactory, UserFactory

pytestmark = pytest.mark.django_db

MY_LIST = reverse("tracking:my-list")


@pytest.fixture
def fan(client):
    user = UserFactory(username="haruhi")
    Profile.objects.create(user=user, companion_shown=False)  # the cat's suggestions would name titles too
    client.force_login(user)
    return user


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_the_list_asks_an_anonymous_visitor_to_sign_in(client):
    response = client.get(MY_LIST)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_the_list_shows_tabs_with_counts_and_only_the_persons_own_entries(client, fan):
    ListEntryFactory(user=fan, anime=AnimeFactory(title="Mine, watching"), status="watching")
    ListEntryFactory(user=fan, anime=AnimeFactory(title="Mine, dropped"), status="dropped")
    ListEntryFactory(anime=AnimeFactory(title="Somebody else's"))
    page = client.get(MY_LIST).content.decode()
    assert "Mine, watching" in page
    assert "Mine, dropped" in page
    assert "Somebody else" not in page
    assert 'All <span class="count">2</span>' in page
    assert 'Dropped <span class="count">1</span>' in page
    only_dropped = client.get(MY_LIST, {"status": "dropped"}).content.decode()
    assert "Mine, watching" not in only_dropped


@pytest.mark.parametrize("sort", ["title", "score", "progress", "updated", "rank", "nonsense"])
def test_every_sort_works_and_a_bad_one_falls_back(client, fan, sort):
    ListEntryFactory(user=fan, anime=AnimeFactory(title="B", rank=2), score=5)
    ListEntryFactory(user=fan, anime=AnimeFactory(title="A", rank=None), score=None)
    assert client.get(MY_LIST, {"sort": sort}).status_code == 200


def test_sorting_by_title_and_by_score(client, fan):
    ListEntryFactory(user=fan, anime=AnimeFactory(title="Beta"), score=9)
    ListEntryFactory(user=fan, anime=AnimeFactory(title="Alpha"), score=3)
    by_title = client.get(MY_LIST, {"sort": "title"}).content.decode()
    assert by_title.index("Alpha") < by_title.index("Beta")
    by_score = client.get(MY_LIST, {"sort": "score"}).content.decode()
    assert by_score.index("Beta") < by_score.index("Alpha")


def test_a_row_is_saved_without_javascript_and_back_to_where_it_was(client, fan):
    anime = AnimeFactory(episodes=12)
    ListEntryFactory(user=fan, anime=anime)
    response = client.post(
        reverse("tracking:entry-update", args=[anime.mal_id]),
        {
            "status": "on_hold",
            "score": "8",
            "progress": "4",
            "started_on": "2026-01-02",
            "notes": "slow start",
            "next": f"{MY_LIST}?sort=title",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == f"{MY_LIST}?sort=title"
    entry = ListEntry.objects.get()
    assert (entry.status, entry.score, entry.progress, entry.notes) == ("on_hold", 8, 4, "slow start")


def test_plus_one_adds_an_episode(client, fan):
    anime = AnimeFactory(episodes=12)
    ListEntryFactory(user=fan, anime=anime, progress=4)
    client.post(reverse("tracking:entry-update", args=[anime.mal_id]), {"increment": "1"})
    assert ListEntry.objects.get().progress == 5


def test_a_broken_rule_is_a_message_naming_the_field_and_changes_nothing(client, fan):
    anime = AnimeFactory(episodes=12, title="Twelve")
    ListEntryFactory(user=fan, anime=anime, progress=4)
    url = reverse("tracking:entry-update", args=[anime.mal_id])
    response = client.post(url, {"status": "watching", "progress": "13"}, follow=True)
    assert any("progress" in m and "12 episodes" in m for m in _messages(response))
    response = client.post(
        url,
        {"status": "watching", "progress": "1", "started_on": "2026-05-02", "finished_on": "2026-05-01"},
        follow=True,
    )
    assert any("before the start date" in m for m in _messages(response))
    response = client.post(url, {"status": "bingeing"}, follow=True)
    assert any("status" in m for m in _messages(response))
    assert ListEntry.objects.get().progress == 4


def test_the_quick_control_adds_a_title_and_changes_its_status(client, fan):
    anime = AnimeFactory()
    url = reverse("tracking:entry-status", args=[anime.mal_id])
    client.post(url, {"status": "plan_to_watch"})
    client.post(url, {"status": "watching"})
    assert ListEntry.objects.get().status == "watching"
    assert list(ListEvent.objects.order_by("pk").values_list("kind", flat=True)) == ["added", "status"]


def test_remove_then_undo_puts_the_entry_back_as_it_was(client, fan):
    anime = AnimeFactory(episodes=24)
    ListEntryFactory(user=fan, anime=anime, score=7, progress=3, notes="keep me")
    client.post(reverse("tracking:entry-remove", args=[anime.mal_id]))
    assert not ListEntry.objects.exists()
    assert "Undo" in client.get(MY_LIST).content.decode()
    client.post(reverse("tracking:entry-undo"))
    entry = ListEntry.objects.get()
    assert (entry.score, entry.progress, entry.notes) == (7, 3, "keep me")


def test_next_never_leads_off_the_site(client, fan):
    anime = AnimeFactory()
    response = client.post(
        reverse("tracking:entry-status", args=[anime.mal_id]), {"status": "watching", "next": "https://evil.example/"}
    )
    assert response["Location"] == MY_LIST


def test_a_list_is_private_until_its_owner_makes_it_public(client, fan):
    ListEntryFactory(user=fan, anime=AnimeFactory(title="Secret title"))
    public = reverse("tracking:public-list", args=["haruhi"])
    stranger = client.__class__()
    assert stranger.get(public).status_code == 404
    client.post(reverse("tracking:list-visibility"), {"list_public": "on"})
    assert Profile.objects.get(user=fan).list_public
    assert "Secret title" in stranger.get(public).content.decode()
    client.post(reverse("tracking:list-visibility"), {})
    assert stranger.get(public).status_code == 404


@pytest.mark.parametrize(
    ("name", "args"),
    [("entry-update", [1]), ("entry-status", [1]), ("entry-remove", [1]), ("entry-undo", []), ("list-visibility", [])],
)
def test_no_write_is_possible_without_signing_in(client, name, args):
    AnimeFactory(mal_id=1)
    response = client.post(reverse(f"tracking:{name}", args=args), {"status": "watching"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert not ListEntry.objects.exists()


def test_one_person_cannot_change_or_remove_anothers_entry(client, fan):
    theirs = ListEntryFactory(anime=AnimeFactory(), status="completed", score=10)
    client.post(reverse("tracking:entry-update", args=[theirs.anime_id]), {"status": "dropped", "score": "1"})
    # What the person did went to their own list...
    assert ListEntry.objects.get(user=fan).status == "dropped"
    client.post(reverse("tracking:entry-remove", args=[theirs.anime_id]))
    assert not ListEntry.objects.filter(user=fan).exists()
    # ...and never to anyone else's.
    theirs.refresh_from_db()
    assert (theirs.status, theirs.score) == ("completed", 10)


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("entry-update", [1]),
        ("entry-status", [1]),
        ("entry-remove", [1]),
        ("entry-undo", []),
        ("list-visibility", []),
        ("import", []),
        ("api-tokens", []),
        ("api-token-revoke", [1]),
        ("account-delete", []),
        ("companion", []),
    ],
)
def test_csrf_is_required_on_every_write(fan, name, args):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(fan)
    ListEntryFactory(user=fan, anime=AnimeFactory(mal_id=1))
    assert (
        strict.post(reverse(f"tracking:{name}", args=args), {"status": "dropped", "password": "x"}).status_code == 403
    )
    assert ListEntry.objects.get(user=fan).status == "watching"


def test_a_token_is_shown_once_then_listed_by_its_prefix_and_revoked(client, fan):
    created = client.post(reverse("tracking:api-tokens"), {"name": "sync script"}).content.decode()
    token = ApiToken.objects.get(user=fan)
    raw = created.split('<code class="token">')[1].split("</code>")[0]
    assert services.token_digest(raw) == token.digest
    listed = client.get(reverse("tracking:api-tokens")).content.decode()
    assert raw not in listed
    assert token.prefix in listed
    other = UserFactory()
    client.force_login(other)
    client.post(reverse("tracking:api-token-revoke", args=[token.pk]))
    assert ApiToken.objects.filter(pk=token.pk).exists()  # not theirs to revoke
    client.force_login(fan)
    client.post(reverse("tracking:api-token-revoke", args=[token.pk]))
    assert not ApiToken.objects.exists()
