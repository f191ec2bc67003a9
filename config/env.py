"""Configuration read from the environment, with defaults for the embedded run."""

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
# The bounded contexts, the one list: each is a Django app of that name whose AppConfig
# declares its own `database` alias. Settings install the apps and build their databases
# from it, devstack starts one worker per context; everything else asks the installed apps
# (config.routers.context_names). Adding a context changes this line.
CONTEXTS = ("orders", "inventory", "payments", "shipping", "dashboard")


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def data_dir() -> Path:
    return Path(env_str("EVENTFLOW_DATA_DIR", str(BASE_DIR / "data"))).resolve()


def redis_url() -> str:
    """REDIS_URL; else the private Redis of a running `make run` (it leaves its URL in the
    data folder), so `manage.py shell` beside the stack talks to the same broker."""
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    running = data_dir() / ".run" / "redis-url"
    if running.exists():
        return running.read_text().strip()
    return "redis://127.0.0.1:6379/0"


def channels_url(broker_url: str) -> str:
    """EVENTFLOW_CHANNELS_URL; else the channel-layer Redis of a running `make run` (a server
    of its own, memory-bounded); else the next database of the broker's server."""
    if os.environ.get("EVENTFLOW_CHANNELS_URL"):
        return os.environ["EVENTFLOW_CHANNELS_URL"]
    running = data_dir() / ".run" / "channels-url"
    if not os.environ.get("REDIS_URL") and running.exists():
        return running.read_text().strip()
    return redis_url_with_db(broker_url, 1)


def redis_url_with_db(url: str, offset: int) -> str:
    """The same Redis server with the database index moved by `offset` (broker 0, channels 1)."""
    parts = urlsplit(url)
    path = parts.path.strip("/")
    base = int(path) if path.isdigit() else 0
    return urlunsplit((parts.scheme, parts.netloc, f"/{base + offset}", parts.query, ""))


def databases(*, persistent: bool = True) -> dict:
    """One database per context (plus `default` for Django's own apps).

    Embedded: one SQLite file per alias under the data folder. With DATABASE_URL
    pointing at PostgreSQL: database `<name>_<alias>` on that server, with persistent
    connections unless `persistent` is False (the ASGI process).
    """
    aliases = ("default", *CONTEXTS)
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        import dj_database_url

        # Workers run many short tasks: keep connections (checked before reuse)
        # instead of opening one per task.
        base = dj_database_url.parse(url, conn_max_age=600 if persistent else 0, conn_health_checks=persistent)
        if base["ENGINE"] != "django.db.backends.postgresql":
            raise RuntimeError(f"DATABASE_URL must be a postgres:// URL, got engine {base['ENGINE']}")
        stem = base["NAME"] or "eventflow"
        result = {}
        for alias in aliases:
            cfg = dict(base)
            cfg["NAME"] = f"{stem}_{alias}"
            cfg["TEST"] = {"NAME": f"{stem}_{alias}"}
            result[alias] = cfg
        return result
    folder = data_dir()
    result = {}
    for alias in aliases:
        path = str(folder / f"{alias}.sqlite3")
        result[alias] = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path,
            # Several worker processes write each file: WAL lets readers go on, the
            # busy timeout waits instead of failing, IMMEDIATE takes the write lock
            # up front so two writers never deadlock upgrading their locks.
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "TEST": {"NAME": path},
        }
    return result
