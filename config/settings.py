"""Django settings for eventflow. Everything comes from the environment (see README)."""

import ipaddress
import os
import re

from django.core.exceptions import ImproperlyConfigured

from config.env import (
    BASE_DIR,
    CONTEXTS,
    channels_url,
    databases,
    data_dir,
    env_bool,
    env_float,
    env_int,
    env_str,
    redis_url,
    redis_url_with_db,
)

DEV_SECRET_KEY = "eventflow-dev-insecure-key-change-me"
SECRET_KEY = env_str("DJANGO_SECRET_KEY", DEV_SECRET_KEY)
# Debug pages show settings to anyone who makes a request fail: off unless asked for.
DEBUG = env_bool("DJANGO_DEBUG", False)
# The address `make run` serves on; the secret-key rule below is about it.
EVENTFLOW_BIND = env_str("EVENTFLOW_BIND", "127.0.0.1")


def _loopback_only(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost may resolve anywhere
        return False


if not DEBUG and SECRET_KEY == DEV_SECRET_KEY and not _loopback_only(EVENTFLOW_BIND):
    raise ImproperlyConfigured(
        f"refusing to start: DJANGO_SECRET_KEY is the development default, debug is off and "
        f"EVENTFLOW_BIND={EVENTFLOW_BIND} is not loopback-only. Set DJANGO_SECRET_KEY to a secret "
        f"value, or bind to 127.0.0.1 / ::1 / localhost."
    )

ALLOWED_HOSTS = [h for h in env_str("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",") if h]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "eventbus",
    *CONTEXTS,  # config/env.py: the one list of contexts
    # Extra apps for tests or plugins, e.g. EVENTFLOW_EXTRA_APPS=tests.probe
    *[a for a in env_str("EVENTFLOW_EXTRA_APPS", "").split(",") if a],
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files before anything else looks at the request (sessions, CSRF, auth).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

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

DATA_DIR = data_dir()
DATA_DIR.mkdir(parents=True, exist_ok=True)
# Prometheus multiprocess mode: every process of the stack writes its metrics here and one
# scrape of /metrics sums them (eventbus/telemetry.py). Read by prometheus-client at import.
PROMETHEUS_MULTIPROC_DIR = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(DATA_DIR / "prometheus"))
os.makedirs(PROMETHEUS_MULTIPROC_DIR, exist_ok=True)
# Django's advice for ASGI: no persistent connections in the ASGI process (each thread of
# its executor would keep its own, forever); config/asgi.py sets EVENTFLOW_ASGI before the
# settings load. Workers keep theirs.
DATABASES = databases(persistent=not env_bool("EVENTFLOW_ASGI", False))
DATABASE_ROUTERS = ["config.routers.ContextRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
# whitenoise serves /static/ from Daphne. Debug off: compressed, hashed names from STATIC_ROOT,
# filled by `manage.py collectstatic` (make run and the test suite run it before Daphne starts).
# Debug on: straight from static/ and the apps, re-read on every request.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage" if DEBUG
                    else "config.staticstorage.HashedStaticStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

LOGIN_URL = "/admin/login/"

# --- Bad input and abuse -----------------------------------------------------------
# POST /api/orders/: a larger body is refused with 413 before it is read (an order is a few KB).
EVENTFLOW_MAX_BODY_BYTES = env_int("EVENTFLOW_MAX_BODY_BYTES", 262144)
# Order placement (API and form) per client address: "N/S" = N orders per S seconds, as a
# token bucket (a burst of N, then one every S/N seconds); "0" turns the limit off.
EVENTFLOW_ORDER_RATE_LIMIT = env_str("EVENTFLOW_ORDER_RATE_LIMIT", "60/60")
_rate = EVENTFLOW_ORDER_RATE_LIMIT.strip()
if _rate not in ("0", "off") and not (re.fullmatch(r"[1-9][0-9]*/[0-9]*\.?[0-9]+", _rate) and float(_rate.split("/")[1]) > 0):
    raise ImproperlyConfigured(f"EVENTFLOW_ORDER_RATE_LIMIT={EVENTFLOW_ORDER_RATE_LIMIT!r}: use N/S (N orders per S seconds) or 0")
# The trace page (/orders/<id>/) links an order's OpenTelemetry trace id here, e.g.
# http://localhost:16686/trace/{trace_id} for Jaeger; empty: the id is shown as text only.
EVENTFLOW_TRACE_URL = env_str("EVENTFLOW_TRACE_URL", "").strip()
if EVENTFLOW_TRACE_URL and not (re.match(r"https?://", EVENTFLOW_TRACE_URL) and "{trace_id}" in EVENTFLOW_TRACE_URL):
    raise ImproperlyConfigured(f"EVENTFLOW_TRACE_URL={EVENTFLOW_TRACE_URL!r}: use an http(s) URL with {{trace_id}} in it")
# Seconds an answer of an expensive read (/api/comparison/, /api/contexts/, text search of
# /api/events/) is reused by this process, so a loop of requests does the work once.
EVENTFLOW_READ_CACHE_SECONDS = env_float("EVENTFLOW_READ_CACHE_SECONDS", 2.0)
# Text search of /api/events/ looks at this many newest log entries, no more.
EVENTFLOW_SEARCH_WINDOW = env_int("EVENTFLOW_SEARCH_WINDOW", 20000)

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "default"},
    # dashboard.readcache: per process, which is what it is for (one Daphne answers the reads).
    "reads": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "reads",
              "OPTIONS": {"MAX_ENTRIES": 1000}},
}

# --- Redis: the broker; the channel layer on its own bounded server (make run) ---
# or, with only REDIS_URL set, in the broker server's next database.
REDIS_URL = redis_url()
BROKER_URL = redis_url_with_db(REDIS_URL, 0)
CHANNEL_LAYER_URL = channels_url(REDIS_URL)

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # channels-redis blocks 5 s per read; redis-py 8's default 5 s socket
            # timeout would cut idle sockets at that moment (code 1011).
            "hosts": [{"address": CHANNEL_LAYER_URL, "socket_timeout": 15}],
            # Bursts of events go to every dashboard socket; the default of 100
            # per channel drops messages silently, clients recover gaps by seq.
            "capacity": 5000,
            "expiry": 30,
        },
    }
}

# --- Celery (read by config/celery.py with namespace CELERY) -----------------
# The Celery broker: this Redis (BROKER_URL), or RabbitMQ with CELERY_BROKER_URL=amqp://….
# BROKER_URL's Redis keeps the bus's own state either way (epoch, sent marks, command
# replies, switches, poison counts) and the channel layer stays on Redis.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "") or BROKER_URL
BROKER_IS_AMQP = CELERY_BROKER_URL.split("://", 1)[0] in ("amqp", "amqps", "pyamqp")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "dashboard"
CELERY_TASK_CREATE_MISSING_QUEUES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's consumer, except that a lost broker connection cannot kill the worker in
# kombu's clean-up of unacked messages (see eventbus/batching.py Consumer).
CELERY_WORKER_CONSUMER = "eventbus.batching:Consumer"
# Celery's Django fix-up closes every database connection around every task (a new
# SQLite connection and its PRAGMAs each time); keep them for this many tasks instead.
# eventbus.tasks closes one a failed task left unusable.
CELERY_DB_REUSE_MAX = 1000
# A message whose worker died unacknowledged comes back after this many seconds;
# it must stay above the longest handler.
EVENTFLOW_VISIBILITY_TIMEOUT = env_int("EVENTFLOW_VISIBILITY_TIMEOUT", 60)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": EVENTFLOW_VISIBILITY_TIMEOUT,
    # Look for messages abandoned by a dead worker every 2 s (kombu's default is
    # about every 100 s), so recovery takes visibility_timeout plus a little.
    "unacked_restore_interval": 2,
    "unacked_restore_throttle": 1,
    "socket_timeout": 5,
    "socket_connect_timeout": 5,
    # No retry_on_timeout (nor any retry in redis-py): kombu sets its pub/sub client's
    # connection itself, so redis-py's retry would reconnect it after a broker restart
    # without subscribing again, and the worker's loop would wait on it forever
    # (tests/integration/test_broker_reconnect.py). Unretried, the error reaches Celery,
    # which reconnects the whole consumer; the relay resends a send that failed.
    "health_check_interval": 5,
}
if BROKER_IS_AMQP:
    # RabbitMQ: durable queues, persistent messages (Celery's defaults), and publisher
    # confirms: a send returns once the broker has the message, so the relay marks a row
    # sent only when it is safe. An unacknowledged message returns as soon as its worker's
    # connection drops (no visibility timeout).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True, "max_retries": 1}
    CELERY_BROKER_HEARTBEAT = 10

# --- The event bus -------------------------------------------------------------
# Worker processes per context queue (devstack starts them; a deployment sets it to its
# total per context): the consumer status waits for that many replies per context.
EVENTFLOW_WORKERS = max(1, env_int("EVENTFLOW_WORKERS", 1))
EVENTFLOW_MAX_TRIES = env_int("EVENTFLOW_MAX_TRIES", 5)
EVENTFLOW_RETRY_BACKOFF = env_float("EVENTFLOW_RETRY_BACKOFF", 0.5)  # seconds, doubled each try
# Tries for a transient database error ("database is locked") before the event is parked;
# their backoff stops doubling at the longest delay of the EVENTFLOW_MAX_TRIES chain.
EVENTFLOW_TRANSIENT_TRIES = env_int("EVENTFLOW_TRANSIENT_TRIES", 20)
# A message a worker took this many times without finishing (it kills its worker) is dead-lettered.
EVENTFLOW_MAX_DELIVERIES = env_int("EVENTFLOW_MAX_DELIVERIES", 3)
EVENTFLOW_SWEEP_INTERVAL = env_float("EVENTFLOW_SWEEP_INTERVAL", 1.0)
# An outbox row not sent this many seconds after commit is the sweep's to send.
EVENTFLOW_SWEEP_GRACE = env_float("EVENTFLOW_SWEEP_GRACE", 2.0)
# A sent event still missing from a subscriber's inbox after this long is sent
# again (a broker that lost its data is noticed at once through its epoch).
EVENTFLOW_REDELIVER_AFTER = env_float("EVENTFLOW_REDELIVER_AFTER", 300.0)

# --- The comparison lab ----------------------------------------------------------
# How long a command-driven order waits for each reply before it gives up.
EVENTFLOW_COMMAND_TIMEOUT = env_float("EVENTFLOW_COMMAND_TIMEOUT", 5.0)
# A command-driven order still PENDING this long after every command it may send
# timed out (its sender died) is rejected by the sweep.
EVENTFLOW_COMMAND_MARGIN = env_float("EVENTFLOW_COMMAND_MARGIN", 10.0)
# Orders' pre-payment stock check: "local" (its view) or "remote" (ask inventory);
# the dashboard's switch overrides it at run time (eventbus.flags).
EVENTFLOW_STOCK_CHECK = env_str("EVENTFLOW_STOCK_CHECK", "local")

# --- Retention (eventbus/retention.py, dashboard/retention.py; README "Retention") ----
DAY = 86400.0
# How often the relay sweep process applies the policy.
EVENTFLOW_RETENTION_INTERVAL = env_float("EVENTFLOW_RETENTION_INTERVAL", 60.0)
# Confirmed outbox rows (every subscriber has the event) are kept this long for replays.
EVENTFLOW_RETENTION_OUTBOX = env_float("EVENTFLOW_RETENTION_OUTBOX", 7 * DAY)
# Inbox rows (and rejection markers) must outlive every redelivery (checked below).
EVENTFLOW_RETENTION_INBOX = env_float("EVENTFLOW_RETENTION_INBOX", 7 * DAY)
# Dead letters stay until handled (retried), then this long.
EVENTFLOW_RETENTION_DEAD_LETTERS = env_float("EVENTFLOW_RETENTION_DEAD_LETTERS", 30 * DAY)
# The dashboard log (and control actions): by age, and by count.
EVENTFLOW_RETENTION_DASHBOARD = env_float("EVENTFLOW_RETENTION_DASHBOARD", 7 * DAY)
EVENTFLOW_RETENTION_DASHBOARD_ROWS = env_int("EVENTFLOW_RETENTION_DASHBOARD_ROWS", 200_000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("EVENTFLOW_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        # Celery's "Task ... received" line per message: 111 ms a second of the dashboard
        # worker's main process at 470 messages a second (bench/README.md, the 01:22 profile).
        "celery.worker.strategy": {"level": "WARNING"},
    },
}

# Settings that must agree with each other: refuse to start, saying which rule broke.
from config.consistency import settings_problems  # noqa: E402

if _problems := settings_problems(globals()):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("inconsistent eventflow settings:\n- " + "\n- ".join(_problems))
