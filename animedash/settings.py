"""AnimeDash settings: one module, read from the environment only.

With no environment at all (bar `DEBUG=1`) the project runs embedded: a SQLite file, a local-memory
cache and Celery tasks run in the calling process. `DATABASE_URL`, `REDIS_URL` and
`CELERY_BROKER_URL` switch each part to the real deployment. Every variable is listed in README.md.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
import dj_email_url
import orjson

from animedash.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_required,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", default=False)
if DEBUG:
    SECRET_KEY = env_str("SECRET_KEY") or "dev-only-insecure-key-do-not-use-in-production"
else:
    SECRET_KEY = env_required("SECRET_KEY", why="set it to a long random string, or set DEBUG=1 for local use")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_prometheus",
    "csp",
    "axes",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "animedash",
    "snapshots",
    "analytics",
    "tracking",
    "alerts",
]
# Developer tools (fake Jikan, demo seed, benchmarks, load test): on with DEBUG and under pytest, off
# in production; the Docker image does not even ship the folder.
DEVTOOLS = env_bool("DEVTOOLS", default=DEBUG or "pytest" in sys.modules)
if DEVTOOLS:
    INSTALLED_APPS.append("devtools")

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "animedash.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.gzip.GZipMiddleware",
    # The short path: a kept answer to an anonymous GET leaves here, before sessions, CSRF and the view.
    "analytics.wire.WireCacheMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "animedash.csp.CSPMiddleware",
    "animedash.middleware.DatabaseUnavailableMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes requires: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "animedash.urls"
WSGI_APPLICATION = "animedash.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database
# Unset DATABASE_URL means the embedded SQLite file. django-prometheus wraps the engines so query
# counts and latencies reach the metrics.
_DB_ENGINES = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}
DATABASE_URL = env_url("DATABASE_URL", schemes=("postgres", "postgresql", "sqlite"))
_database = dj_database_url.parse(
    DATABASE_URL or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
    conn_max_age=env_int("DATABASE_CONN_MAX_AGE", default=60, minimum=0),
    conn_health_checks=True,
)
_database["ENGINE"] = _DB_ENGINES.get(_database["ENGINE"], _database["ENGINE"])
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The top-100 indexes' covering column (INCLUDE) is PostgreSQL's; on the embedded SQLite the same indexes
# work without it, which is all its small histories need.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# Cache
REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss", "unix"))
CACHE_TTL = env_int("CACHE_TTL", default=6 * 3600, minimum=1)
# Analytics answers are cached under the data version; off only for benchmarks and debugging.
ANALYTICS_CACHE_ENABLED = env_bool("ANALYTICS_CACHE_ENABLED", default=True)
# Each process keeps its hottest answers (their bytes on the wire) in memory too, within these bounds.
WIRE_MEMORY_ENTRIES = env_int("WIRE_MEMORY_ENTRIES", default=2000, minimum=1)
WIRE_MEMORY_BYTES = env_int("WIRE_MEMORY_MB", default=64, minimum=1) * 2**20
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "TIMEOUT": CACHE_TTL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "animedash"),
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                # Short timeouts: when Redis is down the API must fall back to the database quickly.
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django_prometheus.cache.backends.locmem.LocMemCache",
            "LOCATION": "animedash",
            "TIMEOUT": CACHE_TTL,
        }
    }

# Authentication
# django-axes checks every login (the admin's and the site's) first: 5 failures from one client lock it out
# for 15 min. allauth's backend lets people sign in with their username or e-mail address.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "tracking:my-list"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env_choice(
    "ACCOUNT_EMAIL_VERIFICATION", choices=("none", "optional", "mandatory"), default="optional"
)
ACCOUNT_LOGOUT_REDIRECT_URL = "analytics:dashboard"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_PRESERVE_USERNAME_CASING = False
# Optional two-factor authentication: TOTP apps and recovery codes.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "AnimeDash"

# E-mail
# EMAIL_URL, e.g. submission://user:password@smtp.example.com (SMTP with STARTTLS on 587). Unset: the demo
# prints every mail to the console; production uses SMTP on localhost:25, Django's own default.
_email = dj_email_url.parse(
    env_url("EMAIL_URL", schemes=("smtp", "submission", "console", "file", "memory", "dummy"))
    or ("console://" if DEBUG else "smtp://localhost:25")
)
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
EMAIL_PORT = _email["EMAIL_PORT"] or 25
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
EMAIL_USE_TLS = _email["EMAIL_USE_TLS"]
EMAIL_USE_SSL = _email["EMAIL_USE_SSL"]
EMAIL_TIMEOUT = _email["EMAIL_TIMEOUT"] or 10
EMAIL_FILE_PATH = _email["EMAIL_FILE_PATH"]
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "AnimeDash <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Where people reach this site: the links in alert e-mails and webhook bodies start with it.
SITE_URL = env_url("SITE_URL", schemes=("http", "https")) or "http://localhost:8000"

# Alerts
# Webhooks go only to public addresses unless this is on (a LAN install, the tests): see alerts/delivery.py.
ALERTS_ALLOW_PRIVATE_WEBHOOKS = env_bool("ALERTS_ALLOW_PRIVATE_WEBHOOKS", default=False)

# Exports
# `manage.py export` and the nightly task write the open data dumps here, keeping the newest EXPORT_KEEP.
EXPORT_DIR = Path(env_str("EXPORT_DIR") or BASE_DIR / "exports")
EXPORT_KEEP = env_int("EXPORT_KEEP", default=7, minimum=1)

# Password validation
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# Snapshot days are UTC dates.
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static files
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT") or BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Security
# Production (DEBUG off) is HTTPS-only; a TLS-terminating proxy must send X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Probes come over plain HTTP from inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
X_FRAME_OPTIONS = "DENY"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_ENGINE = "animedash.sessions"
# Every page's code is a static file (no inline script, no on*= handler), so the policy allows only our own
# origin, plus MyAnimeList's image CDN for cover art. The Swagger UI relaxes style-src on its own view.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "https://cdn.myanimelist.net"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "object-src": ["'none'"],
    }
}

# Login throttling (django-axes)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", default=5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", default=15, minimum=1))
# "database" keeps attempts in PostgreSQL (visible in the admin); "cache" keeps them in Redis.
AXES_HANDLER = {
    "database": "axes.handlers.database.AxesDatabaseHandler",
    "cache": "axes.handlers.cache.AxesCacheHandler",
}[env_choice("AXES_HANDLER", choices=("database", "cache"), default="database")]
# Locked out per client address. Behind the TLS proxy, set AXES_PROXY_COUNT=1 so the address comes from
# X-Forwarded-For as the proxy wrote it (unset, every client would share the proxy's address).
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_IPWARE_PROXY_COUNT = env_int("AXES_PROXY_COUNT", default=0, minimum=0) or None
if AXES_IPWARE_PROXY_COUNT:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
AXES_RESET_ON_SUCCESS = True
# Its start-up banner would be one more line on every manage.py command's output.
AXES_VERBOSE = False

# REST framework
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": [
        "drf_orjson_renderer.renderers.ORJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # Staff act through their admin session; no HTTP Basic (it would put passwords on every request).
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # An unknown ?format= is a 400 naming the formats, not DRF's 404; every error is JSON.
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "analytics.api.renderers.FormatNegotiation",
    "EXCEPTION_HANDLER": "analytics.api.renderers.exception_handler",
    # A score is a number in every answer, as in the schema.
    "COERCE_DECIMAL_TO_STRING": False,
    # Errors of a list field are keyed by the item's index, an int, as the standard library's json allows.
    "ORJSON_RENDERER_OPTIONS": (orjson.OPT_NON_STR_KEYS,),
    "DEFAULT_THROTTLE_CLASSES": ["analytics.api.throttling.AnonThrottle"],
    "DEFAULT_THROTTLE_RATES": {"anon": env_str("API_ANON_RATE", "6000/min")},
    # Proxies in front of the app (1 behind one TLS proxy). 0 trusts no X-Forwarded-For: a client could
    # otherwise dodge the throttle by sending its own.
    "NUM_PROXIES": env_int("API_NUM_PROXIES", default=0, minimum=0, maximum=5),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AnimeDash API",
    "DESCRIPTION": "Daily MyAnimeList ranking history and the trends computed from it.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Enums named after their field: "status" (the ETL run's, a list entry's) and "kind" (a suggestion's, a rule's).
    "ENUM_NAME_OVERRIDES": {
        "ListStatusEnum": "tracking.models.ListStatus",
        "AlertKindEnum": "alerts.models.AlertRule.Kind",
    },
}

# Metrics
# Prometheus metrics are served on a port of their own, never by the public app (0: off). The web
# process serves its own from animedash/wsgi.py; the Celery worker has CELERY_METRICS_PORT below.
WEB_METRICS_PORT = env_int("WEB_METRICS_PORT", default=0, minimum=0, maximum=65535)
WEB_METRICS_ADDR = env_str("WEB_METRICS_ADDR", "0.0.0.0")

# Celery
# Unset CELERY_BROKER_URL: tasks run in the calling process (the embedded demo needs no broker).
CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", schemes=("redis", "rediss", "amqp", "memory"))
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 60 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 55 * 60
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Keep our JSON log configuration in the worker and beat (with run id, feed and task id on each line).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# The worker serves its own Prometheus metrics on this port (0: off).
CELERY_METRICS_PORT = env_int("CELERY_METRICS_PORT", default=0, minimum=0, maximum=65535)
CELERY_METRICS_ADDR = env_str("CELERY_METRICS_ADDR", "0.0.0.0")

# Jikan
JIKAN_BASE_URL = env_url("JIKAN_BASE_URL", schemes=("http", "https")) or "https://api.jikan.moe/v4"
JIKAN_RATE_PER_SECOND = env_float("JIKAN_RATE_PER_SECOND", default=1.0)
JIKAN_RATE_PER_MINUTE = env_int("JIKAN_RATE_PER_MINUTE", default=60, minimum=0)
JIKAN_TIMEOUT = env_float("JIKAN_TIMEOUT", default=20.0, minimum=0.1)
JIKAN_MAX_ATTEMPTS = env_int("JIKAN_MAX_ATTEMPTS", default=5, minimum=1, maximum=10)
# Exponential backoff between retries, with jitter: base and cap in seconds.
JIKAN_BACKOFF_BASE = env_float("JIKAN_BACKOFF_BASE", default=1.0)
JIKAN_BACKOFF_MAX = env_float("JIKAN_BACKOFF_MAX", default=60.0)
# Circuit breaker: after this many consecutive failed requests, fail fast for the cooldown.
JIKAN_BREAKER_THRESHOLD = env_int("JIKAN_BREAKER_THRESHOLD", default=5, minimum=1)
JIKAN_BREAKER_COOLDOWN = env_float("JIKAN_BREAKER_COOLDOWN", default=60.0)
RAW_RETENTION_DAYS = env_int("RAW_RETENTION_DAYS", default=90, minimum=1)
LOG_RETENTION_DAYS = env_int("LOG_RETENTION_DAYS", default=365, minimum=1)

# ETL
# FEED_PAGES_<FEED> sizes each feed's page budget (e.g. FEED_PAGES_TOP=4); unset keeps the default.
FEED_PAGES = {
    name: env_int(f"FEED_PAGES_{name.upper()}", default=0, minimum=1, maximum=2000)
    for name in ("top", "airing", "upcoming", "popular", "movies", "season")
    if env_str(f"FEED_PAGES_{name.upper()}")
}
# A run holds its feed's lock at most this long, so a killed worker cannot block the feed forever.
ETL_LOCK_TTL = env_int("ETL_LOCK_TTL", default=2 * 3600, minimum=10)
# A task whose worker died is redelivered by the Redis broker after this long: only once the dead run's
# lock has expired, so the redelivered run is not skipped.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": ETL_LOCK_TTL + 600}

# Analytics
# Seasonal trends hide seasons with fewer titles than this: the mean of one or two titles is no trend.
SEASON_MIN_VOLUME = env_int("SEASON_MIN_VOLUME", default=3, minimum=1)

# Logging
# One JSON object per line; every line of a request carries its request id.
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "animedash.logging.ContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["context"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Replace Django's own plain-text handlers so its errors are JSON lines too.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.db.backends": {"level": "INFO"},
        # Request lines are logged by our middleware with the request id; avoid twice the noise.
        "django.server": {"level": "WARNING"},
        # One line per Jikan request is already logged by our client, with its outcome.
        "httpx": {"level": "WARNING"},
    },
}
