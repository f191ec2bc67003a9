"""Route each app to its context's database.

An app names its database with a `database` attribute on its AppConfig; apps
without one (Django's contrib apps) live in `default`. `eventbus` has tables in
every context database (outbox, inbox, dead letters), so it migrates everywhere
and is read through an explicit `using=`.
"""

from functools import cache

from django.apps import apps

SHARED_APPS = {"eventbus"}


def context_names() -> list[str]:
    """The bounded contexts: the database each installed app declares, in install order
    (config/env.py CONTEXTS); a plugin app that lives in a context's database adds none."""
    return list(_declared_databases())


@cache  # the installed apps do not change once loaded
def _declared_databases() -> tuple[str, ...]:
    names = [getattr(config, "database", None) for config in apps.get_app_configs()]
    return tuple(dict.fromkeys(name for name in names if name))


def database_of(app_label: str) -> str:
    try:
        config = apps.get_app_config(app_label)
    except LookupError:
        return "default"
    return getattr(config, "database", "default")


class ContextRouter:
    def db_for_read(self, model, **hints):
        if model._meta.app_label in SHARED_APPS:
            return None
        return database_of(model._meta.app_label)

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        return obj1._state.db == obj2._state.db

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label in SHARED_APPS:
            return db != "default"
        return database_of(app_label) == db
