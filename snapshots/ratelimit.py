"""A rate limiter for Jikan shared by every worker process through Redis.

Two limits hold at once: requests are spaced at least `1 / per_second` apart (so never more than
`per_second` start in any 1 s window), and never more than `per_minute` start in any 60 s window.
Even spacing rather than bursts, because Jikan answers 429 to bursts well below its published
3/s (jikan/README.md: "one at about the 26th request with 1.1 s spacing").

The state is a Redis sorted set of grant times, checked and updated by one Lua script, so workers
on any host agree. Without Redis (embedded mode, or Redis down) the same algorithm runs in process:
the limits then hold per process, which is the best that can be done and is logged once.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Collection

import redis

logger = logging.getLogger("snapshots.ratelimit")

MINUTE = 60.0
# After a Redis error, use the in-process limiter for this long before trying Redis again, so an
# unreachable Redis costs one failed connection per half-minute rather than one per request.
REDIS_RETRY_AFTER = 30.0

# KEYS[1] = sorted set of grant times. ARGV = now, interval, per_minute, a unique member.
# Returns "0" when the request is granted (and recorded), else the seconds to wait, as a string
# because Redis truncates Lua numbers to integers.
_ACQUIRE_LUA = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local per_minute = tonumber(ARGV[3])
local horizon = math.max(60, interval)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - horizon)
local wait = 0
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
if last[2] then
  wait = math.max(wait, tonumber(last[2]) + interval - now)
end
if per_minute > 0 then
  local in_window = redis.call('ZCOUNT', key, '(' .. (now - 60), '+inf')
  if in_window >= per_minute then
    local index = redis.call('ZCARD', key) - per_minute
    local oldest = redis.call('ZRANGE', key, index, index, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + 60 - now)
  end
end
if wait > 0 then
  return tostring(wait)
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, math.ceil(horizon * 1000) + 1000)
return '0'
"""


def wait_needed(grants: Collection[float], *, now: float, interval: float, per_minute: int) -> float:
    """Seconds to wait before a request may start, given earlier grant times (ascending).

    The in-process twin of the Lua script above; 0 means "go now".
    """
    recent = [at for at in grants if at > now - MINUTE]
    wait = 0.0
    last = max(grants, default=None)
    if last is not None:
        wait = max(wait, last + interval - now)
    if per_minute > 0 and len(recent) >= per_minute:
        wait = max(wait, recent[len(recent) - per_minute] + MINUTE - now)
    return wait


class _LocalLimiter:
    """The same two limits for the threads of one process."""

    def __init__(self, *, interval: float, per_minute: int) -> None:
        self.interval = interval
        self.per_minute = per_minute
        self._lock = threading.Lock()
        self._grants: deque[float] = deque()

    def try_acquire(self, now: float) -> float:
        with self._lock:
            wait = wait_needed(self._grants, now=now, interval=self.interval, per_minute=self.per_minute)
            if wait <= 0:
                self._record(now)
            return wait

    def record(self, now: float) -> None:
        """Remember a grant made elsewhere (by Redis), so a fallback starts from real history."""
        with self._lock:
            self._record(now)

    def _record(self, now: float) -> None:
        self._grants.append(now)
        horizon = max(MINUTE, self.interval)
        while self._grants and self._grants[0] <= now - horizon:
            self._grants.popleft()


class RateLimiter:
    """Blocks callers so Jikan sees at most `per_second` and `per_minute` requests, across processes.

    `per_second <= 0` disables limiting (benchmarks against the fake Jikan); `per_minute <= 0`
    disables only the per-minute window. `clock` must be wall-clock time shared by the workers
    (time.time), since grant times from several processes are compared in Redis.
    """

    def __init__(
        self,
        *,
        per_second: float,
        per_minute: int,
        redis_url: str = "",
        key: str = "jikan",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.per_second = per_second
        self.per_minute = per_minute
        self.key = f"ratelimit:{key}"
        self._sleep = sleep
        self._clock = clock
        interval = 1.0 / per_second if per_second > 0 else 0.0
        self._interval = interval
        self._local = _LocalLimiter(interval=interval, per_minute=per_minute)
        self._script: redis.commands.core.Script | None = None
        if redis_url:
            # Short timeouts: a hung Redis must not stall the ETL; the local limiter takes over.
            client = redis.Redis.from_url(redis_url, socket_connect_timeout=1.0, socket_timeout=1.0)
            self._script = client.register_script(_ACQUIRE_LUA)
        self._redis_retry_at = 0.0
        self._fallback_logged = False
        self._log_lock = threading.Lock()

    def acquire(self) -> float:
        """Block until a request may be sent; return the seconds waited."""
        if self.per_second <= 0:
            return 0.0
        waited = 0.0
        while True:
            wait = self._try_acquire()
            if wait <= 0:
                return waited
            self._sleep(wait)
            waited += wait

    def _try_acquire(self) -> float:
        now = self._clock()
        if self._script is not None and now >= self._redis_retry_at:
            try:
                wait = float(
                    self._script(keys=[self.key], args=[repr(now), repr(self._interval), self.per_minute, _member()])
                )
            except redis.RedisError as exc:
                self._redis_retry_at = now + REDIS_RETRY_AFTER
                self._log_fallback(f"Redis error: {exc.__class__.__name__}: {exc}", level=logging.WARNING)
            else:
                if self._fallback_logged:
                    self._log_recovery()
                if wait <= 0:
                    self._local.record(now)
                return wait
        elif self._script is None:
            # Embedded mode: expected, so not a warning.
            self._log_fallback("no REDIS_URL", level=logging.INFO)
        return self._local.try_acquire(now)

    def _log_recovery(self) -> None:
        with self._log_lock:
            if not self._fallback_logged:
                return
            self._fallback_logged = False
        logger.info("Jikan rate limiter is shared through Redis again", extra={"key": self.key})

    def _log_fallback(self, reason: str, *, level: int) -> None:
        with self._log_lock:
            if self._fallback_logged:
                return
            self._fallback_logged = True
        # Without Redis each process keeps its own count, so N workers may together reach N times the limit.
        logger.log(
            level,
            "Jikan rate limiter falls back to an in-process limiter (%s); limits now hold per process",
            reason,
            extra={"key": self.key},
        )


def _member() -> str:
    # Members of a sorted set must be unique, or two grants at the same instant would count once.
    return uuid.uuid4().hex
