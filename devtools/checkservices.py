"""Stop `make test` early, in one clear line, when PostgreSQL or Redis is not reachable.

Run as `python -m devtools.checkservices`; reads TEST_DATABASE_URL and TEST_REDIS_URL.
"""

from __future__ import annotations

import os
import sys

import psycopg
import redis

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/animedash"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/1"
START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'


def main() -> int:
    database_url = os.getenv("TEST_DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = os.getenv("TEST_REDIS_URL") or DEFAULT_REDIS_URL
    try:
        # The maintenance database always exists; the test database is created by pytest-django.
        psycopg.connect(database_url, dbname="postgres", connect_timeout=3).close()
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        print(f"PostgreSQL is unreachable at {database_url} ({first_line}); start it: {START_POSTGRES}")
        return 1
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        print(f"Redis is unreachable at {redis_url} ({exc}); start it: {START_REDIS}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
