from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import OperationalError
from django.test import RequestFactory

from animedash.middleware import DatabaseUnavailableMiddleware
from devtools.testing import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_answers_while_the_process_is_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_database_and_cache_ok(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}


def _readyz_in_a_process_with(**env: str) -> tuple[int, dict, str]:
    """Ask /readyz of a fresh Django process whose database or cache points at a closed port; also its log."""
    code = (
        "import django, json; django.setup(); from django.test import Client; "
        "r = Client().get('/readyz'); print(r.status_code); print(r.content.decode())"
    )
    full_env = {**os.environ, "DEBUG": "1", "ALLOWED_HOSTS": "testserver", **env}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full_env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.strip().splitlines()[-2:]
    return int(status), json.loads(body), result.stderr


def test_readyz_is_503_naming_only_the_failed_check_when_the_database_is_down():
    status, body, log = _readyz_in_a_process_with(DATABASE_URL="postgres://postgres@127.0.0.1:1/animedash")
    assert status == 503
    assert body == {"status": "unavailable", "checks": {"database": "failed", "cache": "ok"}}
    # The error text (host, port, driver message) goes to the log, never to the public body.
    assert "127.0.0.1" in log
    assert "readiness check database failed" in log


def test_readyz_is_200_degraded_when_only_the_cache_is_down():
    """The app answers from the database without Redis: a readiness probe must keep the pod in service."""
    status, body, log = _readyz_in_a_process_with(REDIS_URL="redis://127.0.0.1:1/0", DATABASE_URL="")
    assert status == 200
    assert body == {"status": "degraded", "checks": {"database": "ok", "cache": "failed"}}
    assert "readiness check cache failed" in log


@pytest.mark.django_db
def test_metrics_are_not_served_by_the_public_app(client):
    assert client.get("/metrics").status_code == 404


def test_the_web_process_serves_its_metrics_on_their_own_port_and_commands_do_not():
    """The WSGI application (what gunicorn loads) serves /metrics on WEB_METRICS_PORT; Django set up as a
    manage.py command sets it up, without the WSGI application, leaves the port alone."""
    port = free_port()
    code = """if True:
        import socket, sys, django, httpx
        def listening():
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0
        django.setup()
        print("a command listens:", listening())
        from django.test import Client
        import animedash.wsgi
        Client().get("/healthz")
        body = httpx.get(f"http://127.0.0.1:{sys.argv[1]}/metrics").text
        print("the web process serves:", "django_http_requests_total_by_view_transport_method_total" in body)
    """
    env = {
        **os.environ,
        "DEBUG": "1",
        "ALLOWED_HOSTS": "testserver",
        "WEB_METRICS_PORT": str(port),
        "WEB_METRICS_ADDR": "127.0.0.1",
    }
    result = subprocess.run(
        [sys.executable, "-c", code, str(port)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["a command listens: False", "the web process serves: True"]


def test_database_errors_become_a_503_json_answer():
    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    response = middleware.process_exception(RequestFactory().get("/api/v1/overview"), OperationalError("gone"))
    assert response is not None
    assert response.status_code == 503
    assert json.loads(response.content)["code"] == "database_unavailable"


def test_other_errors_are_left_to_django():
    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    assert middleware.process_exception(RequestFactory().get("/"), ValueError("bug")) is None


def test_with_the_database_down_people_get_an_html_503_page_and_the_api_keeps_json():
    code = (
        "import django; django.setup(); from django.test import Client; c = Client(); "
        "[print(r.status_code, r['Content-Type'], r.get('Retry-After'), repr(r.content.decode()[:2000])) "
        "for r in (c.get('/'), c.get('/status/'), c.get('/api/v1/overview'))]"
    )
    env = {**os.environ, "DEBUG": "0", "ALLOWED_HOSTS": "testserver", "SECURE_SSL_REDIRECT": "0"}
    env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:1/animedash"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    page, status_page, api = result.stdout.strip().splitlines()[-3:]
    assert page.startswith("503 text/html; charset=utf-8 30 ")
    assert status_page.startswith("503 text/html")
    assert "AnimeDash cannot reach its database" in page
    assert "127.0.0.1" not in page
    assert api.startswith("503 application/json 30 ")
    assert '"code": "database_unavailable"' in api
