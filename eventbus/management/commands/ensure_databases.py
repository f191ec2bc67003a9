"""Create the PostgreSQL database of every context when it is missing (no-op for SQLite)."""

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from psycopg import sql

POSTGRESQL = "django.db.backends.postgresql"
# Keys of a Django OPTIONS dict that are libpq connection parameters.
LIBPQ_OPTIONS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "options", "application_name", "passfile", "service")
MAINTENANCE_DATABASES = ("postgres", "template1")


def server_params(config: dict) -> dict:
    params = {
        "host": config.get("HOST") or None,
        "port": str(config["PORT"]) if config.get("PORT") else None,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
    }
    params.update({key: value for key, value in (config.get("OPTIONS") or {}).items() if key in LIBPQ_OPTIONS})
    return {key: value for key, value in params.items() if value is not None}


def connect_maintenance(params: dict) -> psycopg.Connection:
    """Connect to the server's maintenance database (`postgres`, else `template1`)."""
    error = None
    for dbname in MAINTENANCE_DATABASES:
        try:
            return psycopg.connect(dbname=dbname, autocommit=True, **params)
        except psycopg.OperationalError as exc:
            error = exc
    raise CommandError(f"cannot connect to PostgreSQL at {params.get('host', 'localhost')}:{params.get('port', 5432)}: {error}")


class Command(BaseCommand):
    help = "Create the PostgreSQL database of each alias in settings.DATABASES when it does not exist yet."

    def handle(self, *args, **options):
        verbose = options["verbosity"] >= 1
        targets = [(alias, cfg) for alias, cfg in settings.DATABASES.items() if cfg["ENGINE"] == POSTGRESQL]
        if not targets:
            if verbose:
                self.stdout.write("ensure_databases: no PostgreSQL databases configured (SQLite files are created on first use)")
            return
        for alias, config in targets:
            name = config["NAME"]
            with connect_maintenance(server_params(config)) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
                if exists:
                    if verbose:
                        self.stdout.write(f"ensure_databases: {alias}: database {name} exists")
                    continue
                try:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                except psycopg.errors.DuplicateDatabase:
                    # Another process created it between our check and our CREATE.
                    continue
                self.stdout.write(self.style.SUCCESS(f"ensure_databases: {alias}: created database {name}"))
