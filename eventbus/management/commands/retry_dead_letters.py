"""Send dead-lettered deliveries back to their context's queue."""

from django.core.management.base import BaseCommand, CommandError

from eventbus.deadletters import retry_dead_letters


class Command(BaseCommand):
    help = "Retry dead letters of one context (or all), e.g. after fixing a handler."

    def add_arguments(self, parser):
        parser.add_argument("--context", help="only this context")
        parser.add_argument("--id", type=int, dest="ids", action="append", help="only this dead letter id")

    def handle(self, *args, context=None, ids=None, **options):
        try:
            retried = retry_dead_letters(context=context, ids=ids)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"retried {len(retried)} dead letter(s)")
