"""manage.py rebuild_view <context>: discard a context's local view and rebuild it from the log."""

from django.core.management.base import BaseCommand, CommandError

from eventbus import rebuild


class Command(BaseCommand):
    help = ("Discard a context's local view (its copy of other contexts' data) and rebuild it by replaying "
            "the retained events that feed it (the dashboard's view cache: its view history); reads see the old "
            "view until the swap.")

    def add_arguments(self, parser):
        parser.add_argument("context")
        parser.add_argument("--force", action="store_true",
                            help="swap in the rebuilt view even if it differs from the old one")

    def handle(self, *args, context, force=False, **options):
        try:
            result = rebuild.rebuild(context, force=force, progress=self.stdout.write)
        except (ValueError, rebuild.RebuildDiffers) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"rebuilt {context}: {result['replayed']} {result['unit']} replayed, {result['rows']} rows, "
                          f"{'equal to' if result['equal'] else 'different from'} the view it replaced")
