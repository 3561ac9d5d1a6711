"""Helpers the test suites share: free ports, a killable redis-server, polling, real Celery workers.

Importable before Django is set up (the root conftest imports it): what needs Django imports it
when called.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from devtools.fakejikan import FakeJikan

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A `redis-server` of one test's own on a free loopback port: no persistence, killable, restartable."""

    def __init__(self) -> None:
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_connect_timeout=0.5, socket_timeout=1)

    def start(self) -> RedisServer:
        """Start on a free port; a restart keeps the port so clients find the server again."""
        attempts = 1 if self.port else 3  # a probed free port may be taken before redis binds it
        for _ in range(attempts):
            port = self.port or free_port()
            command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self._ready(port):
                self.port = port
                return self
            self.kill()
        raise RuntimeError(f"redis-server did not start on 127.0.0.1:{self.port or 'a free port'}")

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-conversation, as in a crash or an OOM kill."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait(timeout=10)
        self.process = None

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts connections but nothing answers, as with a hung host."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def _ready(self, port: int, timeout: float = 10.0) -> bool:
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2, socket_timeout=0.5)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    return False
                with contextlib.suppress(redis.RedisError):
                    if client.ping():
                        return True
                time.sleep(0.02)
            return False
        finally:
            client.close()


def postgres_url(database: str) -> str:
    """The configured PostgreSQL server's URL, for `database` on it."""
    from django.db import connection

    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{database}"


def current_database_url() -> str:
    """The URL of the database this process really uses (under pytest: the test database)."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "postgresql":
        return postgres_url(db["NAME"])
    return f"sqlite:///{Path(db['NAME']).resolve()}"


def wait_until(condition: Callable[[], object], *, timeout: float, message: str, interval: float = 0.02) -> None:
    """Poll `condition` until it is true; fail with `message` at the deadline (never a bare sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for: {message}")
        time.sleep(interval)


def start_celery_worker(
    queue: str, *, jikan: FakeJikan, stderr: int = subprocess.DEVNULL, **env: str
) -> subprocess.Popen:
    """A real `celery worker` process (solo pool) on `queue`, against this test's database and `jikan`.

    `env` adds to or overrides its environment (CELERY_BROKER_URL is required).
    """
    worker_env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "test-only-secret-key-for-the-worker-process-0123456789",
        "DATABASE_URL": current_database_url(),
        "JIKAN_BASE_URL": jikan.base_url,
        "JIKAN_RATE_PER_SECOND": "0",
        "COVERAGE_PROCESS_START": "",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    command = [sys.executable, "-m", "celery", "-A", "animedash", "worker", "-Q", queue, "-P", "solo", "-l", "WARNING"]
    # Gossip, mingle and heartbeats only slow a lone test worker's start.
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    return subprocess.Popen(command, cwd=ROOT, env=worker_env, stdout=subprocess.DEVNULL, stderr=stderr, text=True)


def admin_change_data(instance: Any, **changes: Any) -> dict[str, Any]:
    """What the admin's change form of `instance` posts when saved with `changes`: its own form's values."""
    from django.contrib import admin
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = get_user_model()(is_active=True, is_staff=True, is_superuser=True)
    form = admin.site._registry[type(instance)].get_form(request, instance)(instance=instance)
    data = {name: form[name].value() for name in form.fields}
    data.update(changes)
    return {name: "" if value is None else value for name, value in data.items()}
