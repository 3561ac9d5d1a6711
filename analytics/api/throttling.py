"""The anonymous API throttle: GCRA per client, one Redis round trip per request, open when the cache is away.

GCRA (the generic cell rate algorithm) keeps one number per client, its theoretical arrival time (TAT): when
its next request would be due had it asked at exactly the configured rate. A request goes on while the TAT
is at most a tenth of the rate's period ahead of now, and moves the TAT one emission interval (period /
requests) on; a refused request leaves it where it was. So in any window of one period, wherever it starts,
a client gets at most 10% (plus one request) over the rate: no fixed windows to burst across.

With django-redis (production) reading, deciding and writing the TAT is one Lua script on Redis's clock, so
every process and host shares a client's budget. Any other cache (the embedded demo's local memory) runs the
same arithmetic in Python under a lock: the budget then holds per process.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.core.cache import BaseCache, caches
from django.http import HttpRequest
from django_redis import get_redis_connection
from django_redis.cache import RedisCache
from redis import Redis
from redis.commands.core import Script
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle

from analytics.cache import cache_failed, cache_skipped

MICROSECONDS = 1_000_000

# KEYS[1]: the client's TAT, in whole microseconds. ARGV: emission interval, burst tolerance (microseconds).
# Returns {1, 0} when the request may go on (and moves the TAT), else {0, microseconds to wait}: gcra() below.
GCRA_LUA = """
-- Redis's clock, not the callers': processes whose clocks differ still share one timeline.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
-- No TAT (never seen, or lapsed) is the same as a TAT in the past: the client is due now.
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
if tat - now > tolerance then
  return {0, tat - now - tolerance}
end
tat = tat + interval
-- '%d': tostring() would round the 16-digit TAT to 14 digits. The key lapses once its TAT has passed.
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000))
return {1, 0}
"""

_VERDICT = "_anonymous_throttle_wait"  # where a request keeps its verdict, so it is counted once
_script: Script | None = None
# The local path's read-decide-write must not interleave between gunicorn's threads.
_local_lock = threading.Lock()


class AnonThrottle(AnonRateThrottle):
    """DRF's anonymous throttle over `anonymous_wait()`; signed-in users are never throttled."""

    # Set by DRF's __init__ from the rate (the stubs do not declare them).
    num_requests: int
    duration: int
    remaining: float | None = None

    @property
    def THROTTLE_RATES(self) -> dict[str, str | None]:  # type: ignore[override]
        # DRF copies the rates once, at import; read them now, so a changed REST_FRAMEWORK setting applies.
        return api_settings.DEFAULT_THROTTLE_RATES  # type: ignore[return-value]

    def allow_request(self, request: Request, view: Any) -> bool:
        if request.user and request.user.is_authenticated:
            return True
        self.remaining = _counted_wait(request._request, self)
        return self.remaining is None

    def wait(self) -> float | None:
        """Seconds until the client may ask again (the 429's Retry-After)."""
        return self.remaining


def anonymous_wait(request: HttpRequest) -> float | None:
    """None when this anonymous client may go on; else the seconds until it may. Counts the request once:
    later calls for the same request return the first verdict (stored on the request)."""
    return _counted_wait(request, AnonThrottle())


def gcra(*, tat: int | None, now: int, interval: int, tolerance: int) -> tuple[int, int]:
    """One GCRA step in whole microseconds: (the client's TAT after a request at `now`, microseconds it must
    wait, 0 when it may go on). The Lua script above is the same step inside Redis."""
    tat = max(tat or now, now)
    if tat - now > tolerance:
        return tat, tat - now - tolerance
    return tat + interval, 0


def _counted_wait(request: HttpRequest, throttle: AnonThrottle) -> float | None:
    if not hasattr(request, _VERDICT):
        setattr(request, _VERDICT, _wait(request, throttle))
    return getattr(request, _VERDICT)


def _wait(request: HttpRequest, throttle: AnonThrottle) -> float | None:
    # A hung Redis would cost every request its socket timeout: skip it while the cache is failing.
    if throttle.rate is None or cache_skipped():
        return None
    period = throttle.duration * MICROSECONDS
    interval = -(-period // throttle.num_requests)  # rounded up: never above the rate
    tolerance = period // 10  # the 10% a client may go over the rate in any window of one period
    # DRF's ident reads only META and the headers, which Django's request has as well as DRF's.
    key = f"throttle:anon:{throttle.get_ident(request)}"  # type: ignore[arg-type]
    cache = caches["default"]
    try:
        if isinstance(cache, RedisCache):
            wait = _redis_gcra(cache.make_key(key), interval, tolerance)
        else:
            wait = _local_gcra(cache, key, interval, tolerance)
    except Exception as exc:  # the cache client's errors vary (ConnectionError, TimeoutError, ResponseError...)
        # Throttling protects the service; refusing every request because Redis is away would defeat it.
        cache_failed("throttle", exc)
        return None
    return wait / MICROSECONDS if wait else None


def _redis_gcra(key: str, interval: int, tolerance: int) -> int:
    # One round trip: EVALSHA (redis-py loads the script first only when the server does not know it yet).
    client = get_redis_connection("default")
    _allowed, wait = _gcra_script(client)(keys=[key], args=[interval, tolerance], client=client)
    return int(wait)


def _gcra_script(client: Redis) -> Script:
    global _script
    if _script is None:
        _script = client.register_script(GCRA_LUA)
    return _script


def _local_gcra(cache: BaseCache, key: str, interval: int, tolerance: int) -> int:
    with _local_lock:
        now = time.time_ns() // 1000
        tat, wait = gcra(tat=cache.get(key), now=now, interval=interval, tolerance=tolerance)
        if not wait:
            cache.set(key, tat, timeout=-(-(tat - now) // MICROSECONDS))
        return wait
