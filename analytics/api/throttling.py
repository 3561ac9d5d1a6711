from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle

from analytics.cache import cache_failed, cache_skipped


class AnonThrottle(AnonRateThrottle):
    """DRF's anonymous throttle as a fixed-window counter, open rather than failing when its cache is down.

    DRF's own keeps every request time of the last window in one cache value, so each request of a busy
    client reads and writes up to `rate` timestamps (6000 at the default): the more a client asks, the
    more each of its requests costs. A counter per client and window costs the same at any rate; a
    client may burst up to twice the rate across a window boundary, which is fine for abuse control.
    Throttling protects the service; refusing every request because Redis is away would defeat it.
    """

    # Set by DRF's __init__ from the rate (the stubs do not declare them).
    num_requests: int
    duration: int
    remaining: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        ident = self.get_cache_key(request, view)
        if ident is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        self.remaining = (window + 1) * self.duration - now
        key = f"{ident}:{window}"
        # A hung Redis would cost every request its socket timeout: skip it while the cache is failing.
        if cache_skipped():
            return True
        try:
            count = self._count(key)
        except Exception as exc:  # the cache client's errors vary (ConnectionInterrupted, RedisError...)
            cache_failed("throttle", exc)
            return True
        return bool(count <= self.num_requests)

    def _count(self, key: str) -> int:
        # One round trip on the usual path: the window's counter already exists.
        try:
            return int(self.cache.incr(key))
        except ValueError:
            self.cache.add(key, 0, timeout=self.duration + 1)
            return int(self.cache.incr(key))

    def wait(self) -> float | None:
        """Seconds until the current window ends (the 429's Retry-After)."""
        return self.remaining
