"""Django settings for eventflow. Everything comes from the environment (see README)."""

from config.env import (
    BASE_DIR,
    databases,
    data_dir,
    env_bool,
    env_float,
    env_int,
    env_str,
    redis_url,
    redis_url_with_db,
)

SECRET_KEY = env_str("DJANGO_SECRET_KEY", "eventflow-dev-insecure-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", True)
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
    "orders",
    "inventory",
    "payments",
    "dashboard",
    # Extra apps for tests or plugins, e.g. EVENTFLOW_EXTRA_APPS=tests.probe
    *[a for a in env_str("EVENTFLOW_EXTRA_APPS", "").split(",") if a],
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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
DATABASES = databases()
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

LOGIN_URL = "/admin/login/"

# --- Redis: the broker in one database, the channel layer in the next ---------
REDIS_URL = redis_url()
BROKER_URL = redis_url_with_db(REDIS_URL, 0)
CHANNEL_LAYER_URL = redis_url_with_db(REDIS_URL, 1)

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
CELERY_BROKER_URL = BROKER_URL
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
    "retry_on_timeout": True,
    "health_check_interval": 5,
}

# --- The event bus -------------------------------------------------------------
EVENTFLOW_MAX_TRIES = env_int("EVENTFLOW_MAX_TRIES", 5)
EVENTFLOW_RETRY_BACKOFF = env_float("EVENTFLOW_RETRY_BACKOFF", 0.5)  # seconds, doubled each try
EVENTFLOW_SWEEP_INTERVAL = env_float("EVENTFLOW_SWEEP_INTERVAL", 1.0)
# An outbox row not sent this many seconds after commit is the sweep's to send.
EVENTFLOW_SWEEP_GRACE = env_float("EVENTFLOW_SWEEP_GRACE", 2.0)
# A sent event still missing from a subscriber's inbox after this long is sent
# again (a broker that lost its data is noticed at once through its epoch).
EVENTFLOW_REDELIVER_AFTER = env_float("EVENTFLOW_REDELIVER_AFTER", 300.0)

# --- The comparison lab ----------------------------------------------------------
# How long a command-driven order waits for each reply before it gives up.
EVENTFLOW_COMMAND_TIMEOUT = env_float("EVENTFLOW_COMMAND_TIMEOUT", 5.0)
# Orders' pre-payment stock check: "local" (its view) or "remote" (ask inventory);
# the dashboard's switch overrides it at run time (eventbus.flags).
EVENTFLOW_STOCK_CHECK = env_str("EVENTFLOW_STOCK_CHECK", "local")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("EVENTFLOW_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}
