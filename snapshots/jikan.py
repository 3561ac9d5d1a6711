"""Jikan v4 client: the only code that talks HTTP to Jikan. No ORM.

Every request goes through `JikanClient._request()`, which owns the circuit breaker, the shared rate
limiter, tenacity retries, response classification and the Prometheus metrics. The parsing helpers
(`parse_page`, `error_message`, `endpoint_template`) are pure functions over plain data.

Reference for every call here: the Jikan v4 documentation, https://docs.api.jikan.moe/ (rate limits: 3
requests/s and 60/min; errors come as JSON `{status, type, message, error}`; list pages carry
`pagination.last_visible_page` and `has_next_page`).
"""

from __future__ import annotations

import email.utils
import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, TypeVar

import httpx
import orjson
import tenacity
from django.conf import settings
from prometheus_client import Counter, Gauge, Histogram

from snapshots.ratelimit import RateLimiter

logger = logging.getLogger("snapshots.jikan")

T = TypeVar("T")

# Jikan's own outages (UpstreamException 500, BadResponseException 504) and proxies in front of it.
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
CONNECT_TIMEOUT = 5.0

# Metrics. `endpoint` is always a template from endpoint_template(), never a URL with ids.
REQUESTS = Counter(
    "jikan_requests_total",
    "Requests sent to Jikan, by endpoint and HTTP status (or timeout/connection).",
    ["endpoint", "status"],
)
REQUEST_SECONDS = Histogram(
    "jikan_request_seconds",
    "Time from sending a Jikan request to having its whole body (rate-limit waits excluded).",
    ["endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0),
)
RETRIES = Counter("jikan_retries_total", "Jikan requests retried, by endpoint and reason.", ["endpoint", "reason"])
RATE_LIMITED = Counter("jikan_rate_limited_total", "429 answers, by who limited: jikan or mal.", ["origin"])
CIRCUIT_OPEN = Gauge("jikan_circuit_open", "1 while the Jikan circuit breaker fails requests fast, else 0.")


# Errors. Every constructor takes the full text first and only optional keywords, so the exceptions
# survive pickling (Celery serialises task exceptions).
class JikanError(Exception):
    """Base of every error raised by this module."""


class JikanUnavailable(JikanError):
    """Jikan gave no usable answer: 5xx, timeout, connection error or bad payload (after retries)."""

    def __init__(self, text: str, *, status: int | None = None, reason: str = "", retryable: bool = True) -> None:
        super().__init__(text)
        self.status = status
        # The `reason` label of jikan_retries_total: the HTTP status, "timeout", "connection" or "bad_payload".
        self.reason = reason or (str(status) if status else "error")
        self.retryable = retryable


class JikanRateLimited(JikanUnavailable):
    """429. `origin` is "mal" when MyAnimeList rate-limits Jikan itself, else "jikan"."""

    def __init__(self, text: str, *, origin: str = "jikan", retry_after: float | None = None) -> None:
        super().__init__(text, status=429, reason="429")
        self.origin = origin
        self.retry_after = retry_after


class JikanBadPayload(JikanUnavailable):
    """A success status whose body is not JSON or has no `data` (a failed request; retried)."""

    def __init__(self, text: str, *, status: int | None = None) -> None:
        super().__init__(text, status=status, reason="bad_payload")


class JikanClientError(JikanError):
    """A 4xx other than 429: our request is wrong, so retrying cannot help."""

    def __init__(self, text: str, *, status: int = 0, message: str = "", url: str = "") -> None:
        super().__init__(text)
        self.status = status
        self.message = message
        self.url = url


class CircuitOpen(JikanError):
    """The breaker is open: Jikan failed repeatedly, so we fail fast until `until` (UTC)."""

    def __init__(self, text: str, *, until: datetime | None = None, remaining: float = 0.0) -> None:
        super().__init__(text)
        self.until = until
        self.remaining = remaining


@dataclass
class RequestStats:
    """Counts for one ETL run. EtlRun stores all but `failures` (every failed attempt, 429s and 4xx included)."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    failures: int = 0


@dataclass(frozen=True)
class JikanPage:
    url: str
    status: int
    body: str  # the body exactly as received, stored as RawPage
    items: list[dict[str, Any]]  # its `data`
    has_next_page: bool
    last_visible_page: int | None
    current_page: int | None  # None in the early-v4 shape


# Parsing: pure functions.
def parse_page(body: bytes | str, *, url: str, status: int) -> JikanPage:
    """A paged list answer (a body as received, or as stored) as a JikanPage.

    Raises JikanBadPayload when the body is not JSON or has no `data` list. Tolerates the early-v4
    pagination (no `current_page`, no `items`) and a missing pagination (treated as the only page).
    """
    payload = json_decode(body, url=url, status=status)
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise JikanBadPayload(f"Jikan answered {url} without a `data` list", status=status)
    pagination = payload.get("pagination")
    if not isinstance(pagination, dict):
        pagination = {}
    return JikanPage(
        url=url,
        status=status,
        body=body if isinstance(body, str) else body.decode(),
        items=payload["data"],
        has_next_page=pagination.get("has_next_page") is True,
        last_visible_page=_int_or_none(pagination.get("last_visible_page")),
        current_page=_int_or_none(pagination.get("current_page")),
    )


def parse_single(body: bytes | str, *, url: str, status: int) -> dict[str, Any]:
    """A non-paged answer (/genres/anime: a list; /anime/{id}: an object) as the whole body."""
    payload = json_decode(body, url=url, status=status)
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list | dict):
        raise JikanBadPayload(f"Jikan answered {url} without `data`", status=status)
    return payload


def json_decode(body: bytes | str, *, url: str, status: int) -> Any:
    # orjson: the ETL decodes about 130 KB per page, 1.5x faster than the standard library.
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:  # invalid UTF-8 included
        raise JikanBadPayload(f"Jikan answered {url} with a body that is not JSON", status=status) from exc


def error_message(body: object, *, fallback: str) -> str:
    """The human message of a Jikan error body, whatever its shape.

    Real bodies carry `message`; a 400 ValidationException carries `messages` (field -> list of
    problems) instead; some have only `error`. `status` may be a string and `trace` is server
    internals, so neither is used. Anything else (empty body, HTML from a proxy) gives `fallback`.
    """
    if not isinstance(body, dict):
        return fallback
    message = body.get("message")
    if isinstance(message, str) and message.strip():
        return message.strip()
    messages = body.get("messages")
    if isinstance(messages, dict) and messages:
        parts = []
        for field, problems in messages.items():
            texts = problems if isinstance(problems, list) else [problems]
            parts.append(f"{field}: {' '.join(str(text) for text in texts)}")
        return "; ".join(parts)
    error = body.get("error")
    if isinstance(error, str) and error.strip():
        return error.strip()
    return fallback


def response_error_message(response: httpx.Response) -> str:
    """error_message() of a response, falling back to a snippet of a non-JSON body or the reason phrase."""
    text = response.text.strip()
    fallback = (
        text[:200] if text and not text.startswith("<") else (response.reason_phrase or f"HTTP {response.status_code}")
    )
    try:
        body = response.json()
    except ValueError:
        return fallback
    return error_message(body, fallback=fallback)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


_SEASON_PATH = re.compile(r"^/seasons/-?\d+/[^/]+$")
_NUMERIC_SEGMENT = re.compile(r"/-?\d+(?=/|$)")


def endpoint_template(path: str) -> str:
    """A low-cardinality label for a path: "/seasons/2018/winter" -> "/seasons/{year}/{season}"."""
    path = "/" + path.split("?", 1)[0].strip("/")
    if _SEASON_PATH.match(path):
        return "/seasons/{year}/{season}"
    return _NUMERIC_SEGMENT.sub("/{id}", path)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _CircuitBreaker:
    """Closed -> open after `threshold` consecutive failed attempts -> after `cooldown`, half-open.

    Half-open lets exactly one trial request through: success closes the breaker, failure reopens it
    for another cooldown. A 4xx counts as success here: Jikan answered, so it is up. Per process.
    """

    def __init__(self, *, threshold: int, cooldown: float, clock: Callable[[], float]) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self._opened_at is not None

    def before_request(self) -> None:
        with self._lock:
            if self._opened_at is None:
                return
            remaining = self._opened_at + self.cooldown - self._clock()
            if remaining <= 0 and not self._trial_in_flight:
                self._trial_in_flight = True
                logger.info("Jikan circuit breaker half-open: sending one trial request")
                return
            remaining = max(remaining, 0.0)
            until = datetime.now(UTC) + timedelta(seconds=remaining)
            raise CircuitOpen(
                f"Jikan circuit breaker is open after {self._failures} consecutive failed requests; "
                f"not calling Jikan until {until:%Y-%m-%d %H:%M:%S} UTC (in {remaining:.0f} s)",
                until=until,
                remaining=remaining,
            )

    def record_success(self) -> None:
        with self._lock:
            if self._opened_at is not None:
                logger.info("Jikan circuit breaker closed: the trial request succeeded")
                CIRCUIT_OPEN.set(0)
            self._failures = 0
            self._opened_at = None
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            reopen = self._trial_in_flight
            first_open = self._opened_at is None and self.threshold > 0 and self._failures >= self.threshold
            if reopen or first_open:
                self._opened_at = self._clock()
                self._trial_in_flight = False
                CIRCUIT_OPEN.set(1)
                logger.warning(
                    "Jikan circuit breaker opened after %d consecutive failed requests; failing fast for %.0f s",
                    self._failures,
                    self.cooldown,
                    extra={"failures": self._failures, "cooldown": self.cooldown},
                )

    def release(self) -> None:
        """Forget a trial that ended without an answer either way (e.g. interrupted)."""
        with self._lock:
            self._trial_in_flight = False


class JikanClient:
    """Jikan v4 over one httpx.Client, with rate limiting, retries and a circuit breaker.

    `sleep` and `clock` (monotonic) drive the retry waits and the breaker, so tests can fake them.
    """

    def __init__(
        self,
        *,
        base_url: str,
        timeout: float,
        limiter: RateLimiter,
        max_attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self.max_attempts = max_attempts
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._backoff = tenacity.wait_exponential_jitter(multiplier=backoff_base, max=backoff_max, jitter=backoff_base)
        self._breaker = _CircuitBreaker(threshold=breaker_threshold, cooldown=breaker_cooldown, clock=clock)
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT),
            # A self-hosted Jikan behind a proxy may redirect (http -> https).
            follow_redirects=True,
            headers={"Accept": "application/json", "User-Agent": "AnimeDash (MAL ranking history; ETL)"},
        )

    def get_page(
        self,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        page: int | None = None,
        stats: RequestStats | None = None,
    ) -> JikanPage:
        """One page of a paged list endpoint such as /top/anime."""
        query = dict(params or {})
        if page is not None:
            query["page"] = page
        return self._request(path, params=query, stats=stats, parse=parse_page)

    def get_json(self, path: str, *, stats: RequestStats | None = None) -> dict[str, Any]:
        """The whole body of a non-paged endpoint (/genres/anime, /anime/{id})."""
        return self._request(path, params={}, stats=stats, parse=parse_single)

    def close(self) -> None:
        self._http.close()

    def _request(
        self,
        path: str,
        *,
        params: Mapping[str, str | int],
        stats: RequestStats | None,
        parse: Callable[..., T],
    ) -> T:
        """Breaker check -> limiter -> send -> classify, retried by tenacity. Raises the last error."""
        stats = stats if stats is not None else RequestStats()
        endpoint = endpoint_template(path)
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda exc: isinstance(exc, JikanUnavailable) and exc.retryable),
            stop=self._should_stop,
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=functools.partial(self._before_retry, endpoint=endpoint, stats=stats),
            reraise=True,
        )
        return retrying(self._attempt, path, params=params, endpoint=endpoint, stats=stats, parse=parse)

    def _attempt(
        self, path: str, *, params: Mapping[str, str | int], endpoint: str, stats: RequestStats, parse: Callable[..., T]
    ) -> T:
        self._breaker.before_request()
        try:
            response = self._send(path, params=params, endpoint=endpoint, stats=stats)
            result = self._classify(response, parse=parse)
        except JikanUnavailable as exc:
            stats.failures += 1
            if isinstance(exc, JikanRateLimited):
                stats.rate_limited += 1
                RATE_LIMITED.labels(origin=exc.origin).inc()
            self._breaker.record_failure()
            raise
        except JikanClientError:
            stats.failures += 1
            self._breaker.record_success()
            raise
        except BaseException:
            self._breaker.release()
            raise
        self._breaker.record_success()
        return result

    def _send(
        self, path: str, *, params: Mapping[str, str | int], endpoint: str, stats: RequestStats
    ) -> httpx.Response:
        self.limiter.acquire()
        stats.requests += 1
        started = time.perf_counter()
        status = "connection"
        try:
            # Reference: Jikan v4 OpenAPI (jikan/README.md): GET <base>/<path>?page=N&...; JSON bodies.
            response = self._http.get(path, params=params)
            status = str(response.status_code)
            return response
        except httpx.TimeoutException as exc:
            status = "timeout"
            raise JikanUnavailable(
                f"Jikan did not answer {self.base_url}{path} in time ({exc.__class__.__name__})", reason="timeout"
            ) from exc
        except httpx.RequestError as exc:
            raise JikanUnavailable(
                f"Could not talk to Jikan at {self.base_url}{path}: {exc.__class__.__name__}: {exc}",
                reason="connection",
            ) from exc
        finally:
            # The one place requests are counted and timed.
            REQUESTS.labels(endpoint=endpoint, status=status).inc()
            REQUEST_SECONDS.labels(endpoint=endpoint).observe(time.perf_counter() - started)

    def _classify(self, response: httpx.Response, *, parse: Callable[..., T]) -> T:
        status = response.status_code
        url = str(response.url)
        if 200 <= status < 300:
            return parse(response.content, url=url, status=status)
        message = response_error_message(response)
        if status == 429:
            # "Jikan is being rate limited by MyAnimeList": MAL throttles Jikan, not us.
            origin = "mal" if "myanimelist" in message.lower() else "jikan"
            raise JikanRateLimited(
                f"Jikan rate-limited {url} ({origin}): {message}",
                origin=origin,
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        if status >= 500:
            raise JikanUnavailable(
                f"Jikan answered {status} for {url}: {message}", status=status, retryable=status in RETRYABLE_STATUSES
            )
        raise JikanClientError(f"Jikan answered {status} for {url}: {message}", status=status, message=message, url=url)

    def _wait(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, JikanRateLimited) and exc.retry_after is not None:
            return exc.retry_after
        return self._backoff(retry_state)

    def _should_stop(self, retry_state: tenacity.RetryCallState) -> bool:
        if retry_state.attempt_number >= self.max_attempts:
            return True
        # The breaker opened on this failure: the next attempt would only raise CircuitOpen, so
        # surface the real error now instead.
        if self._breaker.is_open:
            return True
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        # A Retry-After longer than we would ever back off: give up rather than hold a worker that
        # long; the run fails and the next scheduled one tries again.
        return isinstance(exc, JikanRateLimited) and exc.retry_after is not None and exc.retry_after > self.backoff_max

    def _before_retry(self, retry_state: tenacity.RetryCallState, *, endpoint: str, stats: RequestStats) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        reason = exc.reason if isinstance(exc, JikanUnavailable) else "error"
        status = exc.status if isinstance(exc, JikanUnavailable) else None
        stats.retries += 1
        RETRIES.labels(endpoint=endpoint, reason=reason).inc()
        logger.warning(
            "Jikan request failed (%s); retry %d of %d in %.2f s: %s",
            reason,
            retry_state.attempt_number,
            self.max_attempts - 1,
            wait,
            exc,
            extra={"endpoint": endpoint, "status": status, "reason": reason, "wait": round(wait, 3)},
        )


class _ClientConfig(NamedTuple):
    base_url: str
    timeout: float
    per_second: float
    per_minute: int
    redis_url: str
    backoff_base: float
    backoff_max: float
    max_attempts: int
    breaker_threshold: int
    breaker_cooldown: float


def _client_config() -> _ClientConfig:
    return _ClientConfig(
        base_url=settings.JIKAN_BASE_URL,
        timeout=settings.JIKAN_TIMEOUT,
        per_second=settings.JIKAN_RATE_PER_SECOND,
        per_minute=settings.JIKAN_RATE_PER_MINUTE,
        redis_url=settings.REDIS_URL or "",
        backoff_base=settings.JIKAN_BACKOFF_BASE,
        backoff_max=settings.JIKAN_BACKOFF_MAX,
        max_attempts=settings.JIKAN_MAX_ATTEMPTS,
        breaker_threshold=settings.JIKAN_BREAKER_THRESHOLD,
        breaker_cooldown=settings.JIKAN_BREAKER_COOLDOWN,
    )


@functools.lru_cache(maxsize=1)
def _client_for(config: _ClientConfig) -> JikanClient:
    limiter = RateLimiter(per_second=config.per_second, per_minute=config.per_minute, redis_url=config.redis_url)
    return JikanClient(
        base_url=config.base_url,
        timeout=config.timeout,
        limiter=limiter,
        max_attempts=config.max_attempts,
        backoff_base=config.backoff_base,
        backoff_max=config.backoff_max,
        breaker_threshold=config.breaker_threshold,
        breaker_cooldown=config.breaker_cooldown,
    )


def get_client() -> JikanClient:
    """The process's client, built from settings; rebuilt when they change (tests override them)."""
    return _client_for(_client_config())
