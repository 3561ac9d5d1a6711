from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("cookie", ["abc\x00defghij", "short", "ünïcödé-kéy-123"])
def test_a_malformed_session_cookie_is_ignored_not_an_error(client, cookie):
    client.cookies["sessionid"] = cookie
    response = client.get("/admin/login/")
    assert response.status_code == 200


def test_a_real_session_still_logs_in(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("admin", "a@example.org", "pw-admin-123456"))
    assert client.get("/admin/").status_code == 200


def test_an_authorization_header_is_not_a_login_attempt(client):
    # HTTP Basic is off: a forged header (here with a NUL byte) is ignored, never a 500.
    response = client.post(
        "/api/v1/etl/runs",
        {"feed": "top"},
        HTTP_AUTHORIZATION="Basic YWRtaW4APTpwdw==",
        content_type="application/json",
    )
    assert response.status_code == 403
