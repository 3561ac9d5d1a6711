"""The anonymous API throttle: GCRA per client, shared through Redis, open when the cache is away.

GCRA (the generic cell rate algorithm) keeps one number per client, its theoretical arrival time (TAT): when
its next request would be due had it asked at exactly the configured rate. A request goes on while the TAT
is at most a burst allowance (a twentieth of the rate's period) ahead of now, and moves the TAT one emission
interval (period / requests) on; a refused request leaves it where it was. No fixed windows to burst across.

With django-redis (production) reading, deciding and writing the TAT is one Lua script on Redis's clock, so
every process and host shares a client's budget. A process asking for a busy client takes a lease of up to
LEASE_MAX requests in that one round trip (as many back-to-back requests as the burst allows) and lets the
next requests through without asking again, until the lease runs out or half the tolerance has passed; a
refusal is remembered until the wait is over (no other process can bring the TAT back). A client that asks
rarely takes leases of one. Tokens are counted when Redis hands them out and spent at most a twentieth of the
period later, so in any window of one period, wherever it starts and however many processes serve the
client, it gets at most 10% (plus one request) over the rate.

Any other cache (the embedded demo's local memory) runs the same arithmetic in Python under a lock, without
leases: the budget then holds per process.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
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

# KEYS[1]: the client's TAT, in whole microseconds. ARGV: emission interval, burst allowance (microseconds),
# requests wanted. Returns {requests granted, 0}, or {0, microseconds to wait}: gcra() below.
GCRA_LUA = """
-- Redis's clock, not the callers': processes whose clocks differ still share one timeline.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval, burst, wanted = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
-- No TAT (never seen, or lapsed) is the same as a TAT in the past: the client is due now.
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
if tat - now > burst then
  return {0, tat - now - burst}
end
-- As many as would go on one after another now: each needs the TAT at most `burst` ahead.
local granted = math.min(wanted, math.floor((burst - (tat - now)) / interval) + 1)
tat = tat + granted * interval
-- '%d': tostring() would round the 16-digit TAT to 14 digits. The key lapses once its TAT has passed.
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000))
return {granted, 0}
"""
# Requests one lease may let through: enough that a client at thousands per second costs a round trip a few
# dozen times a second, few enough that tokens a process holds for a client that went quiet hardly matter.
LEASE_MAX = 100
# Clients whose leases this process remembers; beyond it the expired ones go (a forgotten lease only
# leaves its client fewer requests, never more).
LEASES_KEPT = 10_000

_VERDICT = "_anonymous_throttle_wait"  # where a request keeps its verdict, so it is counted once
_script: Script | None = None
# The local path's read-decide-write, and the leases' bookkeeping, must not interleave between threads.
_local_lock = threading.Lock()
_leases_lock = threading.Lock()


@dataclass(slots=True)
class Lease:
    """Requests this process may let one client make without asking Redis (time.monotonic() seconds)."""

    size: int = 0  # requests taken last time
    left: int = 0
    expires: float = 0.0
    refused_until: float = 0.0


_leases: dict[str, Lease] = {}


def forget_leases() -> None:
    """Drop this process's leases (its clients ask Redis next time)."""
    with _leases_lock:
        _leases.clear()


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


def gcra(*, tat: int | None, now: int, interval: int, burst: int, wanted: int = 1) -> tuple[int, int, int]:
    """One GCRA step in whole microseconds: (the client's TAT after asking for `wanted` requests at `now`,
    requests granted, microseconds it must wait when none is). The Lua script above is the same step."""
    tat = max(tat or now, now)
    if tat - now > burst:
        return tat, 0, tat - now - burst
    granted = min(wanted, (burst - (tat - now)) // interval + 1)
    return tat + granted * interval, granted, 0


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
    # The 10% a client may go over the rate in any window of one period: half as the burst Redis allows,
    # half as the time a lease may be spent after Redis handed it out.
    burst = period // 20
    # DRF's ident reads only META and the headers, which Django's request has as well as DRF's.
    key = f"throttle:anon:{throttle.get_ident(request)}"  # type: ignore[arg-type]
    cache = caches["default"]
    try:
        if isinstance(cache, RedisCache):
            wait = _leased_gcra(cache.make_key(key), interval, burst)
        else:
            wait = _local_gcra(cache, key, interval, burst)
    except Exception as exc:  # the cache client's errors vary (ConnectionError, TimeoutError, ResponseError...)
        # Throttling protects the service; refusing every request because Redis is away would defeat it.
        cache_failed("throttle", exc)
        return None
    return wait / MICROSECONDS if wait else None


def _leased_gcra(key: str, interval: int, burst: int) -> int:
    """Microseconds this request must wait (0: it goes on), from this process's lease when it has one."""
    lease_key = f"{key}:{interval}"  # a changed rate starts afresh
    now = time.monotonic()
    with _leases_lock:
        lease = _leases.get(lease_key) or _new_lease(lease_key)
        if now < lease.refused_until:
            return math.ceil((lease.refused_until - now) * MICROSECONDS)
        if lease.left and now < lease.expires:
            lease.left -= 1
            return 0
        # Used up in time: the client is busy here, take twice as many; lapsed: it is not, take fewer.
        most = min(LEASE_MAX, max(1, burst // interval // 8))
        wanted = max(1, min(lease.size * 2, most) if now < lease.expires else lease.size // 2)
    granted, wait = _redis_gcra(key, interval, burst, wanted)
    with _leases_lock:
        if granted:
            # Timed from before the round trip, so never later than half the tolerance after Redis counted them.
            lease.size, lease.left, lease.expires = granted, granted - 1, now + burst / MICROSECONDS
        else:
            lease.size, lease.left, lease.refused_until = 1, 0, now + wait / MICROSECONDS
    return wait


def _new_lease(key: str) -> Lease:
    if len(_leases) >= LEASES_KEPT:
        now = time.monotonic()
        for stale in [k for k, lease in _leases.items() if lease.expires <= now and lease.refused_until <= now]:
            del _leases[stale]
        if len(_leases) >= LEASES_KEPT:
            _leases.clear()
    lease = _leases[key] = Lease()
    return lease


def _redis_gcra(key: str, interval: int, burst: int, wanted: int) -> tuple[int, int]:
    # One round trip: EVALSHA (redis-py loads the script first only when the server does not know it yet).
    client = get_redis_connection("default")
    granted, wait = _gcra_script(client)(keys=[key], args=[interval, burst, wanted], client=client)
    return int(granted), int(wait)


def _gcra_script(client: Redis) -> Script:
    global _script
    if _script is None:
        _script = client.register_script(GCRA_LUA)
    return _script


def _local_gcra(cache: BaseCache, key: str, interval: int, burst: int) -> int:
    with _local_lock:
        now = time.time_ns() // 1000
        tat, granted, wait = gcra(tat=cache.get(key), now=now, interval=interval, burst=burst)
        if granted:
            cache.set(key, tat, timeout=-(-(tat - now) // MICROSECONDS))
        return wait
