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


def _readyz_in_a_process_with(**env: str) -> tuple[int, dict]:
    """Ask /readyz of a fresh Django process whose database or cache points at a closed port."""
    code = (
        "import django, json; django.setup(); from django.test import Client; "
        "r = Client().get('/readyz'); print(r.status_code); print(r.content.decode())"
    )
    full_env = {**os.environ, "DEBUG": "1", "ALLOWED_HOSTS": "testserver", **env}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full_env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.strip().splitlines()[-2:]
    return int(status), json.loads(body)


def test_readyz_is_503_naming_the_database_when_it_is_down():
    status, body = _readyz_in_a_process_with(DATABASE_URL="postgres://postgres@127.0.0.1:1/animedash")
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("error: OperationalError")
    assert body["checks"]["cache"] == "ok"


def test_readyz_is_503_naming_the_cache_when_redis_is_down():
    status, body = _readyz_in_a_process_with(REDIS_URL="redis://127.0.0.1:1/0", DATABASE_URL="")
    assert status == 503
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["cache"].startswith("error:")


def test_database_errors_become_a_503_json_answer():
    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    response = middleware.process_exception(RequestFactory().get("/api/v1/overview"), OperationalError("gone"))
    assert response is not None
    assert response.status_code == 503
    assert json.loads(response.content)["code"] == "database_unavailable"


def test_other_errors_are_left_to_django():
    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    assert middleware.process_exception(RequestFactory().get("/"), ValueError("bug")) is None
