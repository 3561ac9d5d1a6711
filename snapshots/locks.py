"""One ETL run per feed at a time, across every worker process."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from functools import cache

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

# Used when Redis is not configured or not reachable: still one run per feed within this process.
_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()


@cache
def _redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)


def _local_lock(name: str) -> threading.Lock:
    with _local_guard:
        return _local_locks.setdefault(name, threading.Lock())


@contextlib.contextmanager
def feed_lock(feed: str, *, ttl: int | None = None) -> Iterator[bool]:
    """Hold the feed's lock for the block; yields False at once if another run holds it.

    The Redis lock has a TTL, so a worker killed mid-run (SIGKILL, OOM) frees the feed when the TTL
    runs out instead of blocking it forever. A run that takes the Redis lock also takes the
    in-process lock when it is free, so if Redis dies mid-run, a second run of the feed in this
    process (which falls back to the in-process lock) still sees the first one.
    """
    name = f"animedash:etl-lock:{feed}"
    timeout = ttl or settings.ETL_LOCK_TTL
    local = _local_lock(name)
    lock = None
    if settings.REDIS_URL:
        try:
            lock = _redis_client(settings.REDIS_URL).lock(name, timeout=timeout, blocking=False)
            acquired = lock.acquire()
        except redis.RedisError as exc:
            logger.warning("Redis unavailable for the %s lock, using an in-process lock: %s", feed, exc)
            lock = None
    if lock is None:
        acquired = local.acquire(blocking=False)
        holds_local = acquired
    else:
        # Best effort: Redis decides; the in-process lock only guards against a Redis outage.
        holds_local = acquired and local.acquire(blocking=False)
    try:
        yield acquired
    finally:
        if lock is not None and acquired:
            with contextlib.suppress(redis.RedisError):  # expired or Redis gone: nothing left to free
                lock.release()
        if holds_local:
            local.release()
