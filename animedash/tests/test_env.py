from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from animedash.env import env_bool, env_float, env_int, env_list, env_required, env_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("TRUE", True), ("yes", True), ("on", True), ("0", False), ("off", False)]
)
def test_env_bool_reads_common_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("FLAG", raw)
    assert env_bool("FLAG", default=not expected) is expected


def test_env_bool_uses_default_when_unset(monkeypatch):
    monkeypatch.delenv("FLAG", raising=False)
    assert env_bool("FLAG", default=True) is True


def test_env_bool_rejects_an_unknown_word_naming_the_variable(monkeypatch):
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="FLAG"):
        env_bool("FLAG", default=False)


def test_env_int_parses_and_checks_bounds(monkeypatch):
    monkeypatch.setenv("PAGES", "4")
    assert env_int("PAGES", default=1, minimum=1) == 4
    monkeypatch.setenv("PAGES", "0")
    with pytest.raises(ImproperlyConfigured, match="PAGES must be at least 1"):
        env_int("PAGES", default=1, minimum=1)
    monkeypatch.setenv("PAGES", "2000")
    with pytest.raises(ImproperlyConfigured, match="PAGES must be at most 1000"):
        env_int("PAGES", default=1, maximum=1000)
    monkeypatch.setenv("PAGES", "four")
    with pytest.raises(ImproperlyConfigured, match="PAGES must be an integer"):
        env_int("PAGES", default=1)
    monkeypatch.setenv("PAGES", " ")
    assert env_int("PAGES", default=7) == 7


def test_env_float_parses_and_rejects(monkeypatch):
    monkeypatch.setenv("RATE", "0.5")
    assert env_float("RATE", default=1.0) == 0.5
    monkeypatch.setenv("RATE", "fast")
    with pytest.raises(ImproperlyConfigured, match="RATE must be a number"):
        env_float("RATE", default=1.0)
    monkeypatch.setenv("RATE", "-1")
    with pytest.raises(ImproperlyConfigured, match="RATE must be at least 0"):
        env_float("RATE", default=1.0)


def test_env_list_splits_and_trims(monkeypatch):
    monkeypatch.setenv("HOSTS", " a.example , b.example,,")
    assert env_list("HOSTS", default=[]) == ["a.example", "b.example"]


def test_env_url_checks_the_scheme(monkeypatch):
    monkeypatch.setenv("SOME_URL", "mysql://x")
    with pytest.raises(ImproperlyConfigured, match="SOME_URL must start with one of postgres://"):
        env_url("SOME_URL", schemes=("postgres",))
    monkeypatch.setenv("SOME_URL", "postgres://db/x")
    assert env_url("SOME_URL", schemes=("postgres",)) == "postgres://db/x"


def test_env_required_says_why(monkeypatch):
    monkeypatch.delenv("SECRET", raising=False)
    with pytest.raises(ImproperlyConfigured, match="SECRET is required: because"):
        env_required("SECRET", why="because")


def _start_django(**env: str) -> subprocess.CompletedProcess[str]:
    """Load the settings in a fresh interpreter with exactly this environment."""
    clean = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "animedash.settings", **env}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings as s; print(s.DEBUG)"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_settings_refuse_to_start_without_secret_key_when_debug_is_off():
    result = _start_django(DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_settings_name_the_variable_holding_a_bad_value():
    result = _start_django(DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be one of" in result.stderr


def test_settings_start_embedded_with_debug_and_nothing_else():
    result = _start_django(DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_settings_choose_backends_from_the_environment():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CACHES['default']['BACKEND'], s.CELERY_TASK_ALWAYS_EAGER)"
    )
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "animedash.settings",
        "DEBUG": "1",
        "DATABASE_URL": "postgres://u@h/db",
        "REDIS_URL": "redis://h:6379/0",
        "CELERY_BROKER_URL": "redis://h:6379/1",
    }
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django_prometheus.db.backends.postgresql",
        "django_prometheus.cache.backends.redis.RedisCache",
        "False",
    ]


def test_settings_reject_a_database_url_of_an_unsupported_kind():
    result = _start_django(DEBUG="1", DATABASE_URL="mysql://u@h/db")
    assert result.returncode != 0
    assert "DATABASE_URL must start with one of" in result.stderr


@pytest.mark.parametrize(
    ("env", "installed"),
    [
        ({"DEBUG": "1"}, True),
        ({"DEBUG": "0", "SECRET_KEY": "x" * 50}, False),
        ({"DEBUG": "0", "SECRET_KEY": "x" * 50, "DEVTOOLS": "1"}, True),
        ({"DEBUG": "1", "DEVTOOLS": "0"}, False),
    ],
)
def test_devtools_are_installed_with_debug_or_when_asked(env, installed):
    code = "import django; django.setup(); from django.apps import apps; print(apps.is_installed('devtools'))"
    clean = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "animedash.settings", **env}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(installed)
