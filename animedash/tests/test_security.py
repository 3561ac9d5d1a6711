"""Security: response headers, the Content-Security-Policy, admin login lockout, which API endpoints
accept writes, no inline code in templates and no secret in the repository.

The suite runs with production settings (DEBUG=0, see the Makefile); `check --deploy` is in test_deploy_check.
Rendered pages are checked for inline scripts and on*= handlers in analytics/tests/test_views.py; here the
template sources are, so templates no page test renders (admin overrides, error pages) are covered too.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from analytics.tests.seed import seed_history

ROOT = Path(settings.BASE_DIR)
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https://cdn.myanimelist.net; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
)
RELAXED_STYLE = POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
ADMIN_PASSWORD = "pw-admin-123456"

pytestmark = pytest.mark.django_db


def _policy(response) -> str:
    # django-csp writes the directives in the order of the settings; compare them as a set of directives.
    return "; ".join(sorted(response["Content-Security-Policy"].split("; ")))


def _sorted(policy: str) -> str:
    return "; ".join(sorted(policy.split("; ")))


# Headers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", "/api/v1/feeds"])
def test_page_and_api_answers_carry_the_security_headers(client, url):
    seed_history(days=2)
    response = client.get(url, secure=True)
    assert response.status_code == 200
    assert _policy(response) == _sorted(POLICY)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


@pytest.mark.skipif(settings.DEBUG, reason="HSTS is a production setting (the suite runs with DEBUG=0)")
def test_https_answers_carry_hsts_under_production_settings(client):
    response = client.get("/api/v1/feeds", secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def test_only_the_api_docs_admin_and_browsable_api_allow_inline_styles(client):
    assert _policy(client.get("/api/docs/")) == _sorted(RELAXED_STYLE)
    assert _policy(client.get("/admin/login/")) == _sorted(RELAXED_STYLE)
    assert _policy(client.get("/api/v1/feeds", HTTP_ACCEPT="text/html")) == _sorted(RELAXED_STYLE)
    # Swagger UI's start-up code is a script of its own, served from our origin.
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")


# Templates --------------------------------------------------------------------------------------------

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>")
EVENT_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)


def test_templates_have_no_inline_script_or_event_handler():
    templates = sorted((ROOT / "templates").rglob("*.html"))
    assert templates
    for template in templates:
        source = template.read_text()
        assert not INLINE_SCRIPT.search(source), template
        assert not EVENT_HANDLER.search(source), template


# Admin login lockout (django-axes) -------------------------------------------------------------------


@pytest.fixture(params=["axes.handlers.database.AxesDatabaseHandler", "axes.handlers.cache.AxesCacheHandler"])
def axes_handler(request, settings) -> Iterator[str]:
    """Each test runs with each handler; attempts live in the test's database or in the cache, both
    emptied after every test (rollback, and the autouse cache fixture), so no test inherits a lockout."""
    settings.AXES_HANDLER = request.param
    AxesProxyHandler.get_implementation(force=True)
    yield request.param
    settings.AXES_HANDLER = request.param
    AxesProxyHandler.get_implementation(force=True)


def _login(client, password: str):
    return client.post("/admin/login/?next=/admin/", {"username": "admin", "password": password})


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("admin", "admin@example.org", ADMIN_PASSWORD)


def test_a_good_admin_login_works_after_fewer_failures_than_the_limit(client, admin_user, axes_handler):
    assert settings.AXES_FAILURE_LIMIT == 5
    for _ in range(4):
        assert _login(client, "wrong").status_code == 200  # the form again, with an error
    response = _login(client, ADMIN_PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_admin_login_locks_out_after_five_failures_even_with_the_right_password(client, admin_user, axes_handler):
    for _ in range(5):
        _login(client, "wrong")
    response = _login(client, ADMIN_PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert settings.AXES_COOLOFF_TIME.total_seconds() == 15 * 60


# Endpoints that accept writes ------------------------------------------------------------------------

# Every (API URL, method) that changes something, and who may call it. A new one must be added here.
# Staff only: starting an ETL run. Each person's own list and alerts (tracking/tests/test_api.py and
# alerts/tests/test_api.py test who reaches whose).
STAFF_WRITES = {("/api/v1/etl/runs", "POST")}
PERSONAL_WRITES = {
    ("/api/v1/me/list", "POST"),
    ("/api/v1/me/list/1", "PATCH"),
    ("/api/v1/me/list/1", "DELETE"),
    ("/api/v1/me/import", "POST"),
    ("/api/v1/me/alerts", "POST"),
    ("/api/v1/me/alerts/1", "PATCH"),
    ("/api/v1/me/alerts/1", "DELETE"),
    ("/api/v1/me/alerts/preview", "POST"),
    ("/api/v1/me/alerts/webhooks", "POST"),
    ("/api/v1/me/alerts/webhooks/1", "PATCH"),
    ("/api/v1/me/alerts/webhooks/1", "DELETE"),
    ("/api/v1/me/alerts/webhooks/1/test", "POST"),
    ("/api/v1/me/alerts/webhooks/1/rotate", "POST"),
    ("/api/v1/me/alerts/feed", "POST"),
}
UNSAFE_METHODS = ("post", "put", "patch", "delete")


def _api_views(resolver: URLResolver | None = None, prefix: str = "") -> Iterator[tuple[str, type[APIView]]]:
    """Every URL pattern served by a DRF view, with its path (int parameters filled with 1)."""
    for pattern in (resolver or get_resolver()).url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _api_views(pattern, route)
        elif isinstance(pattern, URLPattern):
            view_class = getattr(pattern.callback, "cls", None) or getattr(pattern.callback, "view_class", None)
            if isinstance(view_class, type) and issubclass(view_class, APIView):
                yield "/" + re.sub(r"<int:\w+>", "1", route).lstrip("^").rstrip("$"), view_class


def test_the_api_writes_are_a_staff_run_and_a_persons_own_list_and_anonymous_clients_make_none(
    client, django_user_model
):
    views = dict(_api_views())
    assert {"/api/v1/etl/runs", "/api/docs/"} <= set(views)
    writes = {
        (url, method.upper()) for url, view in views.items() for method in UNSAFE_METHODS if hasattr(view, method)
    }
    assert writes == STAFF_WRITES | PERSONAL_WRITES
    for url in views:
        for method in UNSAFE_METHODS:
            status = getattr(client, method)(url, {}, content_type="application/json").status_code
            assert status in (401, 403, 404, 405), f"anonymous {method.upper()} {url} answered {status}"
    client.force_login(django_user_model.objects.create_user("fan", password="pw-fan-123456"))
    for url, method in STAFF_WRITES:
        assert client.generic(method, url, "{}", content_type="application/json").status_code == 403


# Secrets ----------------------------------------------------------------------------------------------

SECRET_PATTERNS = {
    "private key": re.compile("-" * 5 + r"BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY" + "-" * 5),
    "AWS access key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "Slack webhook": re.compile(r"https://hooks\.slack\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{16,}"),
    "SECRET_KEY value": re.compile(r"SECRET_KEY\s*=\s*[\"']?([^\s\"'$]{20,})"),
}
# Values that say what they are: test and example keys, build-time dummies.
PLACEHOLDER = re.compile(r"test|example|dummy|placeholder|change|insecure|not-a-secret|dev-only|build-only", re.I)


def find_secrets(text: str) -> list[str]:
    found = []
    for name, pattern in SECRET_PATTERNS.items():
        for match in pattern.finditer(text):
            value = match.group(match.lastindex or 0)
            if name == "SECRET_KEY value" and PLACEHOLDER.search(value):
                continue
            found.append(f"{name}: {match.group(0)[:40]}")
    return found


def test_the_secret_scan_finds_each_kind_of_secret():
    planted = "\n".join(
        [
            "-" * 5 + "BEGIN RSA PRIVATE KEY" + "-" * 5,
            "aws_access_key_id = AKIA" + "Q" * 16,
            "https://hooks.slack.com/services/" + "T0123ABCD/B0123ABCD/" + "a1" * 12,
            "SECRET_KEY=" + "Zq8#mP2xvL9!" * 3,
        ]
    )
    assert len(find_secrets(planted)) == 4
    assert find_secrets("SECRET_KEY=test-only-secret-key-not-for-production-use-0123456789abcdef") == []


def test_no_secret_in_tracked_files():
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    findings = []
    for name in filter(None, listed.decode().split("\0")):
        path = ROOT / name
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # binary files
        findings += [f"{name}: {finding}" for finding in find_secrets(text)]
    assert findings == []
