"""manage.py asyncapi: print the bus's AsyncAPI 3.0 document (the same as GET /api/asyncapi.json)."""

import json

from django.core.management.base import BaseCommand

from eventbus.asyncapi import document


class Command(BaseCommand):
    help = "Print the AsyncAPI 3.0 document generated from contracts/ and the subscriptions (JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", help="write it to this file instead of standard output")

    def handle(self, *args, output=None, **options):
        text = json.dumps(document(), indent=2) + "\n"
        if output:
            with open(output, "w", encoding="utf-8") as f:
                f.write(text)
        else:
            self.stdout.write(text, ending="")
