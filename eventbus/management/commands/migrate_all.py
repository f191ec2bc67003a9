"""Run `migrate` for every database alias: `default` and one per context."""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Apply migrations to every database in settings.DATABASES (non-interactive)."

    def handle(self, *args, **options):
        verbosity = options["verbosity"]
        for alias in settings.DATABASES:
            if verbosity >= 1:
                self.stdout.write(self.style.MIGRATE_HEADING(f"== migrate --database {alias}"))
            call_command("migrate", database=alias, interactive=False, verbosity=verbosity, stdout=self.stdout._out, stderr=self.stderr._out)
