"""Accounts through allauth: sign up, sign in and out, password reset by e-mail, deleting the account; and
pages kept for anonymous visitors never reach a signed-in person, nor one person's page another."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from snapshots.tests.factories import AnimeFactory
from tracking.models import ListEntry
from tracking.tests.factories import PASSWORD, ListEntryFactory, UserFactory

pytestmark = pytest.mark.django_db

User = get_user_model()


def test_sign_up_signs_the_person_in_and_sends_a_verification_mail(client):
    response = client.post(
        reverse("account_signup"),
        {"username": "Mikuru", "email": "mikuru@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    user = User.objects.get(username="mikuru")
    assert client.get(reverse("tracking:my-list")).status_code == 200
    assert [message.to for message in mail.outbox] == [["mikuru@example.com"]]
    assert user.emailaddress_set.get().verified is False  # optional verification: signed in all the same


def test_sign_up_applies_the_password_validators_and_names_the_field(client):
    response = client.post(
        reverse("account_signup"), {"username": "x", "email": "x@example.com", "password1": "1234", "password2": "1234"}
    )
    assert response.status_code == 200
    assert "password1" in response.context["form"].errors
    assert not User.objects.exists()


@pytest.mark.parametrize("login", ["itsuki", "itsuki@example.com"])
def test_sign_in_with_username_or_email_and_sign_out(client, login):
    UserFactory(username="itsuki")
    response = client.post(reverse("account_login"), {"login": login, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("tracking:my-list")
    assert "itsuki" in client.get("/").content.decode()
    client.post(reverse("account_logout"))
    assert client.get(reverse("tracking:my-list")).status_code == 302


def test_a_wrong_password_is_refused(client):
    UserFactory(username="kyon")
    response = client.post(reverse("account_login"), {"login": "kyon", "password": "wrong"})
    assert response.status_code == 200
    assert response.context["form"].errors


def test_password_reset_by_email(client):
    UserFactory(username="yuki", email="yuki@example.com")
    client.post(reverse("account_reset_password"), {"email": "yuki@example.com"})
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/]+(/accounts/password/reset/key/\S+)", mail.outbox[0].body).group(1)
    form_url = client.get(link)["Location"]
    new = "a brand new passphrase 42"
    assert client.post(form_url, {"password1": new, "password2": new}).status_code == 302
    signed_in = client.post(reverse("account_login"), {"login": "yuki", "password": new})
    assert signed_in["Location"] == reverse("tracking:my-list")


def test_deleting_the_account_needs_the_password_and_takes_every_personal_row(client):
    fan = UserFactory(username="tsuruya")
    ListEntryFactory(user=fan)
    client.force_login(fan)
    url = reverse("tracking:account-delete")
    refused = client.post(url, {"password": "not it"})
    assert "That is not your password" in refused.content.decode()
    assert User.objects.filter(username="tsuruya").exists()
    response = client.post(url, {"password": PASSWORD})
    assert response.status_code == 302
    assert not User.objects.filter(username="tsuruya").exists()
    assert not ListEntry.objects.exists()
    assert client.get(reverse("tracking:my-list")).status_code == 302  # signed out


def test_the_header_says_sign_in_to_visitors_and_shows_a_person_their_name(client):
    assert "Sign in" in client.get("/").content.decode()
    client.force_login(UserFactory(username="koizumi"))
    page = client.get("/").content.decode()
    assert "koizumi" in page
    assert "Sign in" not in page


@pytest.mark.parametrize("url", ["/", "/trending/", "/anime/1/", "/search/?q=nothing+like+it"])
def test_pages_kept_for_visitors_never_reach_a_person_nor_one_persons_page_another(url):
    AnimeFactory(mal_id=1, title="Haruhi")
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    ListEntryFactory(user=alice, anime_id=1)
    visitor, as_alice, as_bob = Client(), Client(), Client()
    as_alice.force_login(alice)
    as_bob.force_login(bob)
    for _ in range(2):  # cold, then warm
        anonymous = visitor.get(url).content.decode()
        alices = as_alice.get(url).content.decode()
        bobs = as_bob.get(url).content.decode()
        assert "alice" not in anonymous
        assert "bob" not in anonymous
        assert "alice" in alices
        assert "Sign in" not in alices
        assert "alice" not in bobs
        assert "bob" in bobs


def test_repeated_failed_sign_ins_lock_the_address_out_even_with_the_right_password(client):
    UserFactory(username="mikoto")
    for _ in range(5):
        client.post(reverse("account_login"), {"login": "mikoto", "password": "wrong"})
    locked = client.post(reverse("account_login"), {"login": "mikoto", "password": PASSWORD})
    assert locked.status_code in (200, 429)
    assert client.get(reverse("tracking:my-list")).status_code == 302  # not signed in


def test_password_change_and_the_account_pages_open(client):
    fan = UserFactory(username="touma")
    client.force_login(fan)
    for name in ("account_email", "account_change_password", "mfa_index"):
        assert client.get(reverse(name)).status_code == 200, name
    # Two-factor authentication waits for a verified address (allauth's rule): recovery must reach the person.
    assert client.get(reverse("mfa_activate_totp")).status_code == 302
    EmailAddress.objects.update_or_create(user=fan, email=fan.email, defaults={"verified": True, "primary": True})
    # Then it asks for the password again before showing the secret.
    asked = client.get(reverse("mfa_activate_totp"))
    assert asked["Location"].startswith(reverse("account_reauthenticate"))
    client.post(asked["Location"], {"password": PASSWORD})
    assert client.get(reverse("mfa_activate_totp")).status_code == 200
    new = "another long passphrase 77"
    response = client.post(
        reverse("account_change_password"), {"oldpassword": PASSWORD, "password1": new, "password2": new}
    )
    assert response.status_code == 302
    fan.refresh_from_db()
    assert fan.check_password(new)
